"""Putting URLs in: a long list starts flowing before it is all recorded, and nothing is sent
before its job row exists."""

from __future__ import annotations

from worker import runner
from worker.storage import Storage
from worker.submit import submit


def test_a_long_list_is_recorded_and_sent_a_batch_at_a_time(tmp_path):
    storage = Storage(f"sqlite:///{tmp_path / 'g.db'}")
    urls = [f"http://127.0.0.1:9/a/{n}" for n in range(runner.SEND_BATCH * 2 + 7)] + ["not a url"]
    sends: list[tuple[int, int]] = []  # (messages in this send, job rows recorded by then)

    def send(messages):
        sends.append((len(messages), sum(storage.count_jobs().values())))
        for message in messages:  # every message's job row is there before it goes out
            assert storage.get_job(message.job_id)["state"] == "queued"

    handled: list[int] = []
    job_ids = submit(storage, urls, "test", send=send, progress=handled.append)

    batch = runner.SEND_BATCH
    # The first messages go out when one batch is recorded, not the whole list.
    assert sends == [(batch, batch), (batch, 2 * batch), (7, 2 * batch + 8)]
    assert handled == [batch, batch, 8] and len(job_ids) == len(urls)
    assert storage.get_job(job_ids[-1])["state"] == "failed"  # the malformed one, dead-lettered at once
