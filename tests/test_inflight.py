"""The in-flight ledger and its sweeper: a message the broker lost is found and sent again,
and a message that is only waiting its turn is left alone."""

import time

import pytest

from worker import inflight, keys
from worker.inflight import Entry, lost, sweep

GRACE = 60.0


def started(client, stage: str, priority: int, sent: float) -> None:
    """Some other job's message of that queue started: the queue's high-water mark moves."""
    pipe = client.pipeline()
    inflight.mark_started(pipe, f"other-{sent}", stage, priority, sent)
    pipe.execute()


def waiting(job: str, sent: float, stage: str = "parse", priority: int = 0) -> Entry:
    return Entry(job, stage, priority, sent, None)


def test_entries_round_trip_through_their_text_form():
    for entry in (waiting("j", 1700000000.25), Entry("j", "store", 6, 1.5, 2.75)):
        assert Entry.parse("j", entry.dump()) == entry
    assert Entry.parse("j", "garbage") is None


def test_priority_steps_match_the_brokers_lists():
    assert [inflight.step(p) for p in (0, 1, 3, 5, 6, 9, 12)] == [0, 0, 3, 3, 6, 9, 9]
    assert inflight.broker_list("fetch", 0) == "fetch"
    assert inflight.broker_list("fetch", 6) == "fetch:6"


def test_a_young_entry_is_never_lost(fresh_redis):
    now = time.time()
    started(fresh_redis, "parse", 0, now)  # newer messages started, and the queue is empty...
    assert lost([waiting("j", now - GRACE + 5)], fresh_redis, grace=GRACE, now=now) == []  # ...but it is young


def test_an_old_message_overtaken_in_its_queue_was_lost(fresh_redis):
    now = time.time()
    fresh_redis.lpush("parse", "a message still queued")  # the queue is not empty
    old = waiting("j", now - 2 * GRACE)
    started(fresh_redis, "parse", 0, old.sent + 1)  # within clock slack: not evidence
    assert lost([old], fresh_redis, grace=GRACE, now=now) == []
    started(fresh_redis, "parse", 0, old.sent + 30)  # a message sent 30 s later has started
    assert lost([old], fresh_redis, grace=GRACE, now=now) == [old]


def test_a_message_waiting_behind_older_ones_is_not_lost(fresh_redis):
    now = time.time()
    fresh_redis.lpush("parse", "older messages ahead of it")
    entry = waiting("j", now - 10 * GRACE)
    started(fresh_redis, "parse", 0, entry.sent - 100)  # the queue is still working on older sends
    assert lost([entry], fresh_redis, grace=GRACE, now=now) == []
    # Another priority's list moving on says nothing about this one.
    started(fresh_redis, "parse", 6, now - 1)
    assert lost([entry], fresh_redis, grace=GRACE, now=now) == []


def test_an_old_message_whose_queue_is_empty_was_lost(fresh_redis):
    now = time.time()
    entry = waiting("j", now - 2 * GRACE, stage="store", priority=6)
    fresh_redis.lpush("store", "a manual message: another list")
    assert lost([entry], fresh_redis, grace=GRACE, now=now) == [entry]


def test_a_start_that_never_moved_on_was_lost(fresh_redis):
    now = time.time()
    stuck = Entry("j", "dedupe", 0, now - 3 * GRACE, now - GRACE - 1)
    busy = Entry("k", "dedupe", 0, now - 3 * GRACE, now - 5)
    fresh_redis.lpush("dedupe", "queued work")
    assert lost([stuck, busy], fresh_redis, grace=GRACE, now=now) == [stuck]


def test_the_sweep_sends_lost_jobs_to_the_stage_they_were_lost_at(fresh_redis):
    now = time.time()
    pipe = fresh_redis.pipeline()
    inflight.mark_sent(pipe, "lost-1", "summarize", 0, now - 2 * GRACE)
    inflight.mark_sent(pipe, "young", "summarize", 0, now - 1)
    for n in range(2500):  # more than one HSCAN batch
        inflight.mark_sent(pipe, f"queued-{n}", "fetch", 6, now - 2 * GRACE)
    pipe.execute()
    fresh_redis.lpush("fetch:6", "the crawl's backlog")
    started(fresh_redis, "fetch", 6, now - 3 * GRACE)
    sent = []
    assert sweep(fresh_redis, lambda *a: sent.append(a), grace=GRACE, now=now, batch=500) == ["lost-1"]
    assert sent == [("summarize", "lost-1", 0)]
    # 2,500 waiting + the lost one + the young one + the other job whose start moved the mark
    assert inflight.resent_total(fresh_redis) == 1 and inflight.unfinished(fresh_redis) == 2503


def test_only_one_worker_sweeps_in_an_interval(fresh_redis):
    sent = []
    assert inflight.sweep_once(fresh_redis, lambda *a: sent.append(a), grace=GRACE, interval=30) == []
    assert inflight.sweep_once(fresh_redis, lambda *a: sent.append(a), grace=GRACE, interval=30) is None
    assert fresh_redis.pttl(keys.sweep_lock()) > 25_000


@pytest.fixture
def rt(redis_url):
    from worker.pipeline import PIPELINE
    from worker.runtime import get_runtime

    runtime = get_runtime()
    runtime.redis.delete(*PIPELINE.names())
    yield runtime
    runtime.redis.delete(*PIPELINE.names())


def ledger(rt, job: str) -> Entry | None:
    raw = rt.redis.hget(keys.inflight(), job)
    return None if raw is None else Entry.parse(job, raw.decode())


def test_the_runner_keeps_the_ledger(rt, site):
    from worker.celery_tasks import STAGE_TASKS
    from worker.submit import submit

    fetch, parse = STAGE_TASKS["fetch"], STAGE_TASKS["parse"]

    url = site.page("/ledger.html", "<html><head><title>Ledger</title></head><body><article>"
                    "<p>The harbour office counted every crate twice before the tide turned.</p>"
                    "</article></body></html>")
    before = time.time()
    [job] = submit(rt.storage, [url], "test")
    entry = ledger(rt, job)
    assert (entry.stage, entry.started) == ("fetch", None) and entry.sent >= before
    fetch.apply(args=[job], kwargs={"sent": entry.sent})
    entry = ledger(rt, job)
    assert (entry.stage, entry.started) == ("parse", None)  # handed on: written at the send
    assert rt.redis.zscore(keys.consumed(), "fetch:0") >= before  # the fetch queue's mark moved

    rt.storage.fail_job(job, reason="stopped by the test", stage="parse")
    parse.apply(args=[job])  # a redelivery to a finished job strikes it off
    assert ledger(rt, job) is None


def test_a_dead_letter_strikes_the_job_off(rt, site):
    from worker.celery_tasks import STAGE_TASKS
    from worker.submit import submit

    fetch = STAGE_TASKS["fetch"]

    [job] = submit(rt.storage, [site.url("/missing.html")], "test")
    assert ledger(rt, job) is not None
    fetch.apply(args=[job])
    assert rt.storage.get_job(job)["state"] == "failed"
    assert ledger(rt, job) is None


def test_a_late_copys_failure_does_not_overturn_a_finished_job(rt):
    [job] = rt.storage.create_jobs(["http://127.0.0.1/x"], "test")
    rt.storage.finish_job(job, record_id="r", duplicate_of=None)
    assert rt.storage.fail_job(job, reason="page expired", stage="parse") is False
    assert rt.storage.get_job(job)["state"] == "done"
