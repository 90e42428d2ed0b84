"""The stage wrapper run in-process (Celery's apply) against real Redis and SQLite."""

import time

import pytest
import redis

from tasks.fetch import fetch
from tasks.parse import parse
from worker import keys
from worker.delayed import DelayedJobs
from worker.pipeline import MAX_DELIVERIES, backoff_seconds
from worker.queues import Queue, broker_keys
from worker.runtime import get_runtime


@pytest.fixture
def rt(redis_url):
    runtime = get_runtime()
    yield runtime
    redis.Redis.from_url(redis_url).delete(*Queue.names())  # drop messages sent to the next stage


def job_for(rt, url: str) -> str:
    return rt.storage.create_jobs([url], "test")[0]


def test_backoff_is_bounded_and_honours_retry_after():
    assert all(0 <= backoff_seconds(n, None, 30) <= min(30, 2 ** (n + 1)) for n in range(10) for _ in range(20))
    assert backoff_seconds(0, 7.5, 30) == 7.5
    assert backoff_seconds(0, 3600, 30) == 30


def test_permanent_error_goes_to_the_dead_letter_store(rt, site):
    job = job_for(rt, site.url("/gone.html"))
    fetch.apply(args=[job])
    row = rt.storage.get_job(job)
    assert (row["state"], row["stage"], row["reason"], row["http_status"]) == ("failed", "fetch", "HTTP 404 Not Found", 404)


def test_retryable_error_waits_outside_the_broker_then_dead_letters(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "fetch_retries", 2)
    site.routes["/busy.html"] = (503, {"Content-Type": "text/html"}, b"busy")
    job = job_for(rt, site.url("/busy.html"))
    delayed = DelayedJobs(rt.redis)
    sent: list[tuple] = []
    fetch.apply(args=[job])
    for _ in range(2):
        assert rt.storage.get_job(job)["state"] == "queued"
        assert delayed.release_due(lambda *entry: sent.append(entry), now=time.time() + 3600) == 1
        stage, job_id, priority, retries = sent[-1]
        assert (stage, job_id) == ("fetch", job)
        fetch.apply(args=[job], retries=retries)
    assert delayed.release_due(lambda *entry: sent.append(entry), now=time.time() + 3600) == 0
    assert [s[3] for s in sent] == [1, 2]
    row = rt.storage.get_job(job)
    assert row["state"] == "failed" and row["attempts"] == 3 and row["http_status"] == 503
    assert row["reason"] == "HTTP 503 Service Unavailable (gave up after 3 attempts)"
    assert site.hits["/busy.html"] == 3


def test_finished_jobs_are_not_run_again(rt, site):
    url = site.page("/done.html", "<html><body><p>x</p></body></html>")
    job = job_for(rt, url)
    rt.storage.finish_job(job, record_id="r", duplicate_of=None)
    fetch.apply(args=[job])
    assert "/done.html" not in site.hits
    assert rt.storage.get_job(job)["state"] == "done"


def test_a_crash_ends_as_an_internal_error(rt, site, monkeypatch):
    url = site.page("/crash.html", "<html><head><title>T</title></head><body><p>Some words here.</p></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])
    assert rt.redis.exists(keys.page(job))

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("tasks.parse.parse_page", boom)
    parse.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "failed" and row["stage"] == "parse"
    assert row["reason"] == "internal error in parse: ZeroDivisionError: division by zero"
    assert not rt.redis.exists(keys.page(job))  # the dead letter drops the in-flight page


def test_a_page_that_keeps_killing_workers_is_dead_lettered(rt, site):
    job = job_for(rt, site.page("/poison.html", "<p>x</p>"))
    rt.redis.set(keys.deliveries(job, "fetch"), MAX_DELIVERIES)  # three earlier starts never finished
    fetch.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "failed"
    assert row["reason"] == f"fetch stage started {MAX_DELIVERIES} times without finishing (a crash or kill each time)"
    assert "/poison.html" not in site.hits


def test_delayed_jobs_are_leased_not_lost(rt):
    delayed = DelayedJobs(rt.redis)
    delayed.add("parse", "job-1", priority=0, retries=1, delay=0)

    def dies(*entry):
        raise ConnectionError("worker died while sending")

    with pytest.raises(ConnectionError):
        delayed.release_due(dies)
    assert delayed.pending() == 1  # still there, leased a minute ahead
    assert delayed.release_due(lambda *e: None) == 0
    sent = []
    assert delayed.release_due(lambda *e: sent.append(e), now=time.time() + 61) == 1
    assert sent == [("parse", "job-1", 0, 1)] and delayed.pending() == 0


def test_a_job_added_again_while_its_entry_is_being_sent_is_kept(rt):
    delayed = DelayedJobs(rt.redis)
    rt.redis.delete("gleaner:delayed")
    delayed.add("store", "job-2", priority=0, retries=0, delay=0)

    def send_and_fail_again(stage, job_id, priority, retries):
        # The sent task runs at once and hits the same outage: it queues the same job again.
        delayed.add(stage, job_id, priority=priority, retries=retries, delay=5)

    assert delayed.release_due(send_and_fail_again) == 1
    assert delayed.pending() == 1


def test_a_canonical_that_is_never_stored_leaves_the_near_duplicate_index(rt, site, monkeypatch):
    from tasks.dedupe import dedupe, near_duplicate_index
    from tasks.store import store

    words = " ".join(f"word{i}" for i in range(60))
    url = site.page("/never-stored.html", f"<html><head><title>T</title></head><body><article><h1>T</h1>"
                                          f"<p>{words}.</p><p>More {words}.</p></article></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])
    parse.apply(args=[job])
    dedupe.apply(args=[job])
    record_id = str(rt.pages.get_draft(job, "dedupe").record_id)
    index = near_duplicate_index(rt)
    assert index.contains(record_id)

    def broken(*args, **kwargs):
        raise ValueError("disk on fire")

    monkeypatch.setattr(rt.storage, "upsert_record", broken)
    store.apply(args=[job])
    assert rt.storage.get_job(job)["state"] == "failed"
    assert not index.contains(record_id)


def test_the_middle_stages_take_the_job_from_the_message_not_the_database(rt, site):
    from sqlalchemy import event

    from tasks.dedupe import dedupe

    url = site.page("/carried.html", "<html><head><title>Carried</title></head><body><article>"
                    "<p>The ferry timetable changed twice this spring, and the islanders kept both copies.</p>"
                    "</article></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(rt.storage.engine, "before_cursor_execute", count)
    try:
        parse.apply(args=[job], kwargs={"category": "test", "priority": 0})
        dedupe.apply(args=[job], kwargs={"category": "test", "priority": 0})
    finally:
        event.remove(rt.storage.engine, "before_cursor_execute", count)
    assert [s for s in statements if "jobs" in s] == []  # no job lookups
    assert rt.storage.get_job(job)["state"] == "queued"
    assert rt.redis.hget(keys.inflight(), job).decode().startswith("summarize|0|")


def test_run_inline_takes_a_url_through_every_stage_without_the_broker(rt, site):
    from worker.pipeline import run_inline

    url = site.page("/inline.html", "<html><head><title>Inline</title></head><body><article><h1>Inline</h1>"
                    "<p>The harbour master counted forty boats on Tuesday, twelve more than last year.</p>"
                    "<p>Most of them came in before the storm warning was lifted at noon.</p></article></body></html>")
    job = job_for(rt, url)
    assert run_inline({"id": job, "url": url, "category_id": "test", "priority": 6}, rt) is None
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    record = rt.storage.get_record(row["record_id"])
    assert record.title == "Inline" and record.word_count > 20
    assert not rt.redis.exists(keys.page(job), *(keys.draft(job, s) for s in keys.DRAFT_STAGES))  # cleared
    assert not any(rt.redis.llen(q) for q in Queue.names())  # nothing went through the broker

    missing = job_for(rt, site.url("/missing.html"))
    assert run_inline({"id": missing, "url": site.url("/missing.html"), "category_id": "test", "priority": 6}, rt) == "fetch"


def test_a_stages_payload_ledger_and_message_go_out_in_its_end_of_stage_round_trip(rt, site, monkeypatch):
    """Inside a stage, put_page/put_draft wait for the wrapper's one pipeline at the end, which
    writes them, then the in-flight ledger's entry, then the next stage's message: one round
    trip, in that order, and nothing published on its own."""
    url = site.page("/deferred.html", "<html><head><title>Deferred</title></head><body><article>"
                    "<p>The lighthouse keeper logged three ships before dawn and none after.</p></article></body></html>")
    job = job_for(rt, url)
    real_put = rt.pages.put_page

    def put_page(job_id, page, body):
        real_put(job_id, page, body)
        assert not rt.redis.exists(keys.page(job_id))  # held back, not yet written

    monkeypatch.setattr(rt.pages, "put_page", put_page)
    round_trips: list[list[tuple[str, str]]] = []
    real_pipeline = rt.redis.pipeline

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*eargs, **ekwargs):
            round_trips.append([(str(c[0][0]), str(c[0][1]) if len(c[0]) > 1 else "") for c in pipe.command_stack])
            return real_execute(*eargs, **ekwargs)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(rt.redis, "pipeline", pipeline)
    fetch.apply(args=[job])
    with_push = [trip for trip in round_trips if any(name == "LPUSH" for name, _ in trip)]
    assert len(with_push) == 1
    order = [key if name == "HSET" else name for name, key in with_push[0]
             if key in (keys.page(job), keys.inflight()) and name == "HSET" or name == "LPUSH"]
    assert order == [keys.page(job), keys.inflight(), "LPUSH"]
    assert sum(rt.redis.llen(k) for k in broker_keys(Queue.PARSE.value)) == 1  # and it did go out
    # Outside a stage it writes at once.
    page, body = rt.pages.get_page(job)
    rt.pages.discard(job)
    real_put(job, page, body)
    assert rt.redis.exists(keys.page(job))


def test_a_late_copy_of_an_earlier_stage_cannot_hand_on_an_undeduplicated_draft(rt, site):
    """After a broker outage a spare copy of parse may run once dedupe has already finished. Its
    draft must not replace dedupe's: the store would then write a second record with no
    canonical URL (seen once in the Redis restart fault test before drafts were kept per stage)."""
    from tasks.dedupe import dedupe
    from tasks.store import store
    from tasks.summarize import summarize

    url = site.page("/late-copy.html", "<html><head><title>Late copy</title></head><body><article>"
                    "<p>The ferry left at nine with forty passengers and a crate of oranges aboard.</p>"
                    "<p>It reached the island at noon, an hour late because of the fog.</p></article></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])
    parse.apply(args=[job])
    dedupe.apply(args=[job])
    parse.apply(args=[job])  # the late spare copy
    summarize.apply(args=[job])
    store.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    record = rt.storage.get_record(row["record_id"])
    assert record.url == url and rt.storage.find_record_by_url(url).id == record.id
    from sqlalchemy import text

    with rt.storage.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM records WHERE canonical_url = ''")).scalar() == 0


def test_each_stage_reads_its_input_in_its_start_round_trip_and_clears_it_at_its_end(rt, site, monkeypatch):
    """Parse, dedupe, summarize and store get their page or draft from the pipeline that records
    the stage's start, not from a read of their own; the store's clearing of the job's payloads
    goes out with its end-of-stage bookkeeping."""
    from tasks.dedupe import dedupe
    from tasks.store import store
    from tasks.summarize import summarize

    url = site.page("/prefetch.html", "<html><head><title>Prefetch</title></head><body><article>"
                    "<p>The night bus to the coast now leaves at eleven and stops at every village.</p>"
                    "<p>Drivers asked for the change after a winter of late arrivals.</p></article></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])

    def own_round_trip(*args, **kwargs):
        raise AssertionError("the stage read its input in a round trip of its own")

    monkeypatch.setattr(rt.pages.client, "hmget", own_round_trip)
    monkeypatch.setattr(rt.pages.client, "get", own_round_trip)
    monkeypatch.setattr(rt.pages.client, "delete", own_round_trip)
    for stage in (parse, dedupe, summarize, store):
        stage.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    assert rt.storage.get_record(row["record_id"]).title == "Prefetch"
    assert not rt.redis.exists(keys.page(job), *(keys.draft(job, s) for s in keys.DRAFT_STAGES))
    monkeypatch.undo()
    # Outside a stage, reads and the clearing go to Redis at once.
    rt.pages.put_draft(_draft_for(job), "summarize")
    assert rt.pages.get_draft(job, "summarize").job_id == job
    rt.pages.discard(job)
    assert not rt.redis.exists(keys.draft(job, "summarize"))


def _draft_for(job_id: str):
    from worker.models import Article, Draft

    return Draft(job_id=job_id, category_id="test", url="https://example.test/x", article=Article(title="T", body=["b"]))


def test_a_sent_message_carries_the_arguments_flower_shows(rt, site):
    """``send`` hands Celery the argument reprs itself (cheaper than Celery's saferepr); the
    message must still say what a dashboard user expects to read."""
    import base64
    import json

    from worker.queues import broker_keys

    url = site.page("/reprs.html", "<html><head><title>Reprs</title></head><body><article>"
                    "<p>The tram line reopened on Monday after two weeks of track repairs.</p></article></body></html>")
    job = job_for(rt, url)
    fetch.apply(args=[job])
    raw = [m for key in broker_keys(Queue.PARSE.value) for m in rt.redis.lrange(key, 0, -1)]
    assert len(raw) == 1
    message = json.loads(raw[0])
    headers = message["headers"]
    assert headers["task"] == "gleaner.parse"
    assert headers["argsrepr"] == repr([job])
    shown = headers["kwargsrepr"]
    assert shown.startswith("{'sent': ") and "'category': 'test'" in shown and "'priority': " in shown
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [job] and kwargs["category"] == "test" and shown == repr(kwargs)


def test_fetch_and_parse_read_their_sources_entry_in_the_start_round_trip(rt, site, monkeypatch, request):
    from tasks.parse import parse as parse_task
    from worker.registry import Registry, _read_ahead
    from worker.sources import parse_sources

    source = parse_sources(f'[sources.ahead]\nfeeds = ["{site.url("/rss.xml")}"]\nevery = "1h"\n\n'
                           '[sources.ahead.rules]\ntitle = "h2.real-title"\n', "sources.toml")[0]
    registry = Registry(rt.redis)
    registry.add(source)
    request.addfinalizer(lambda: registry.remove("ahead"))  # later tests expect no sources
    url = site.page("/ahead.html", "<html><head><title>Wrong title</title></head><body><article>"
                    "<h2 class='real-title'>Read ahead</h2><p>The ferry left at nine and the harbour "
                    "master wrote down every car that boarded it.</p></article></body></html>")
    job = rt.storage.create_jobs([url], "ahead")[0]
    lookups: list[str] = []
    real_hget = rt.redis.hget

    def hget(name, key):
        if name == keys.sources():
            lookups.append(key)
        return real_hget(name, key)

    monkeypatch.setattr(rt.redis, "hget", hget)
    fetch.apply(args=[job])
    parse_task.apply(args=[job], kwargs={"category": "ahead", "priority": 6})
    assert lookups == []  # both answered from the start round trip
    assert rt.pages.get_draft(job, Queue.PARSE.value).article.title == "Read ahead"  # the rules applied
    assert getattr(_read_ahead, "entry", None) is None  # nothing left over for a later caller
