"""Putting URLs into the pipeline (and failed jobs back into it), and waiting for their outcomes.

Every way in goes through here: the CLI, the web UI and API, discovery (through the enqueue
function its Celery task hands it) and the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tasks.urlnorm import check_url
from worker import dispatch, runner
from worker.errors import InvalidURLError
from worker.job import Job, Message
from worker.pipeline import get_pipeline
from worker.queues import Priority
from worker.storage import TERMINAL_STATES, Storage

SendFn = Callable[[Sequence[Message]], None]


@dataclass
class Outcome:
    url: str
    job_id: str
    state: str  # queued, done, duplicate, failed
    record_id: str | None = None
    duplicate_of: str | None = None
    reason: str | None = None

    def line(self) -> str:
        if self.state == "done":
            return f"{self.url}\t{self.record_id}"
        if self.state == "duplicate":
            return f"{self.url}\tduplicate of {self.duplicate_of}"
        if self.state == "failed":
            return f"{self.url}\tfailed: {self.reason}"
        return f"{self.url}\tpending: still {self.state}"


def submit(storage: Storage, urls: Sequence[str], category_id: str,
           priority: Priority = Priority.MANUAL, progress: Callable[[int], None] | None = None, *,
           send: SendFn = dispatch.send) -> list[str]:
    """Record a job per URL, then queue the valid ones; a malformed URL is dead-lettered at once.

    A round trip's worth of URLs at a time: their job rows are written, then their messages sent,
    so that workers start on the first URLs of a long list while the rest are still being
    recorded. The job row is written before its message is sent, so a URL whose message never
    reached the broker is still visible as queued rather than lost. ``progress`` gets the number
    handled.
    """
    first = get_pipeline().first.name
    job_ids: list[str] = []
    for start in range(0, len(urls), runner.SEND_BATCH):
        batch = list(urls[start : start + runner.SEND_BATCH])
        ids = storage.create_jobs(batch, category_id, int(priority))
        job_ids.extend(ids)
        messages = []
        for job_id, url in zip(ids, batch):
            try:
                check_url(url)
            except InvalidURLError as exc:
                storage.fail_job(job_id, reason=exc.reason, stage="enqueue", attempts=0)
            else:
                messages.append(Job(id=job_id, category_id=category_id, priority=int(priority), url=url).to(first))
        send(messages)
        if progress:
            progress(len(batch))
    return job_ids


def retry(storage: Storage, job_id: str, *, send: SendFn = dispatch.send) -> bool:
    """Send a failed job through the pipeline again, from its first stage and with a fresh tally;
    False (and nothing sent) if it is unknown or did not fail."""
    row = storage.get_job(job_id)
    if row is None or row["state"] != "failed":
        return False
    storage.requeue_job(job_id)
    send([Job.from_row(row).to(get_pipeline().first.name)])
    return True


def outcomes(storage: Storage, job_ids: Sequence[str]) -> list[Outcome]:
    jobs = storage.get_jobs(job_ids)
    return [
        Outcome(url=j["url"], job_id=j["id"], state=j["state"], record_id=j["record_id"],
                duplicate_of=j["duplicate_of"], reason=j["reason"])
        for j in (jobs[i] for i in job_ids)
    ]


def wait(storage: Storage, job_ids: Sequence[str], *, timeout: float,
         progress: Callable[[int], None] | None = None, poll: float = 0.2,
         give_up: Callable[[], bool] | None = None) -> list[Outcome]:
    """Poll until every job is finished, the timeout passes or give_up() says so; progress gets
    the number of jobs newly finished."""
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while True:
        pending = [j for j in job_ids if j not in done]
        finished = [jid for jid, j in storage.get_jobs(pending).items() if j["state"] in TERMINAL_STATES]
        done.update(finished)
        if progress and finished:
            progress(len(finished))
        if len(done) == len(job_ids) or time.monotonic() > deadline or (give_up and give_up()):
            return outcomes(storage, job_ids)
        time.sleep(poll)
