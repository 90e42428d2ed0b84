"""The fetch stage against real Redis and SQLite: robots, host limits, 304s, and its retries
through the runner's one attempt counter (the stage's Celery task applied in-process)."""

from __future__ import annotations

import time
import zlib

import pytest
import redis
from isal import isal_zlib

from tasks.fetch import fetch
from tasks.fetching.hostlimit import HostPolicy, host_key
from tests import badserver
from tests.badserver import shared_site, site  # noqa: F401 - fixtures
from worker import keys
from worker.backoff import retry_delay
from worker.celery_tasks import STAGE_TASKS
from worker.delayed import DelayedJobs
from worker.errors import HostBusyError, RobotsDisallowedError, ServerError
from worker.job import Job
from worker.models import Article, Draft
from tasks.archive import record_at
from worker.payloads import PAGE as PAGE_CODEC, FetchedPage
from worker.pipeline import PIPELINE
from worker.runtime import get_runtime
from worker.sources import Source
from worker.stage import Ended, HandOn, StageContext

PAGE = b"<html><head><title>Garden</title></head><body><p>The garden opened on Saturday.</p></body></html>"


@pytest.fixture
def rt(redis_url, monkeypatch):
    runtime = get_runtime()
    client = redis.Redis.from_url(redis_url)
    for pattern in (keys.robots("*"), keys.host_state("*"), keys.host_slots("*"), keys.host_tickets("*")):
        for key in client.scan_iter(pattern):
            client.delete(key)
    # No waiting unless a test asks for it.
    for name, value in {"host_rate": 0.0, "host_concurrency": 0, "host_wait_inline": 0.0, "fetch_retries": 2,
                        "retry_backoff_base": 1.0, "robots_obey": True}.items():
        monkeypatch.setattr(runtime.settings, name, value)
    runtime.forget_fetcher()  # built again from these settings
    yield runtime
    runtime.forget_fetcher()
    client.delete(*PIPELINE.names(), keys.delayed())  # what these tests sent onwards or delayed
    client.close()


def job_for(rt, url: str, category: str = "test") -> Job:
    return Job.from_row(rt.storage.get_job(rt.storage.create_jobs([url], category)[0]))


def run_fetch(rt, job: Job, source: Source | None = None) -> HandOn[FetchedPage] | Ended:
    return fetch(StageContext(job=job, input=None, source=source, rt=rt))


def html(body: bytes = PAGE, **headers: str):
    return (200, {"Content-Type": "text/html; charset=utf-8", **headers}, body)


# --- the retry arithmetic (worker/backoff.py) ---------------------------------------------------

def test_backoff_grows_with_jitter_and_stays_under_its_cap():
    for attempt in range(1, 12):
        for _ in range(50):
            delay = retry_delay(attempt, None, base=2, cap=100)
            ceiling = 2 * 2 ** (attempt - 1)
            assert min(ceiling / 2, 100) <= delay <= min(ceiling, 100)


def test_retry_after_is_honoured_never_early_and_capped():
    for _ in range(50):
        assert 7 <= retry_delay(1, 7, base=2, cap=100) <= 7.7
    assert retry_delay(1, 3600, base=2, cap=100) == 100


# --- robots -------------------------------------------------------------------------------------

def test_a_path_robots_disallows_is_never_fetched(rt, site):
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    site.routes["/private/a.html"] = html()
    with pytest.raises(RobotsDisallowedError, match=r"robots.txt of http://127.0.0.1:\d+ disallows /private/a.html"):
        run_fetch(rt, job_for(rt, site.url("/private/a.html")))
    assert "/private/a.html" not in site.hits


def test_robots_can_be_switched_off(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "robots_obey", False)
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /\n")
    site.routes["/a.html"] = html()
    out = run_fetch(rt, job_for(rt, site.url("/a.html")))
    assert out.payload.body == PAGE and "/robots.txt" not in site.hits


def test_crawl_delay_spaces_fetches_of_one_host(rt, site):
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 30\n")
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    run_fetch(rt, job_for(rt, site.url("/a.html")))
    with pytest.raises(HostBusyError, match=r"next turn is in (29|30)\.\ds"):
        run_fetch(rt, job_for(rt, site.url("/b.html")))
    assert "/b.html" not in site.hits


def test_429_with_retry_after_pauses_the_whole_host(rt, site):
    site.routes["/limited.html"] = (429, {"Retry-After": "20"}, b"")
    with pytest.raises(ServerError) as info:
        run_fetch(rt, job_for(rt, site.url("/limited.html")))
    assert info.value.retry_after == 20
    admitted, wait, _ = rt.fetcher.limiter.try_acquire(host_key(site.base_url), "other", HostPolicy(rate=100), 0)
    assert not admitted and 19 < wait <= 20


def test_a_sources_politeness_overrides_the_global_limits(rt, site):
    site.routes["/a.html"] = site.routes["/b.html"] = site.routes["/c.html"] = html()
    slow = Source(key="slow-source", feeds=["https://example.org/rss"], politeness={"rate": 0.01, "concurrency": 1})
    run_fetch(rt, job_for(rt, site.url("/a.html"), "slow-source"), slow)
    with pytest.raises(HostBusyError):
        run_fetch(rt, job_for(rt, site.url("/b.html"), "slow-source"), slow)
    run_fetch(rt, job_for(rt, site.url("/c.html"), "other"))  # no source: the global limits, none here
    assert site.hits.get("/b.html") is None and site.hits["/c.html"] == 1


# --- conditional requests -----------------------------------------------------------------------

def store_record(rt, url: str, title: str = "Garden") -> str:
    draft = Draft(job_id="seed", category_id="test", url=url, canonical_url=url, content_hash=f"hash-{url}",
                  article=Article(title=title, body=["The garden opened on Saturday."]))
    return rt.storage.upsert_record(draft)[0]


def remember_validators(rt, out: HandOn) -> None:
    pipe = rt.redis.pipeline()
    for write in out.writes:
        write(pipe)
    pipe.execute()


def test_a_304_ends_the_job_at_the_existing_record(rt, site):
    seen = []

    def route(h):
        seen.append(h.headers.get("If-None-Match"))
        if h.headers.get("If-None-Match") == '"v1"':
            return (304, {"ETag": '"v1"'}, b"")
        return html(ETag='"v1"')

    site.routes["/cond.html"] = route
    url = site.url("/cond.html")
    out = run_fetch(rt, job_for(rt, url))  # no record yet: an ordinary fetch
    assert seen == [None] and isinstance(out, HandOn)
    remember_validators(rt, out)  # what the runner writes with the page
    record_id = store_record(rt, url)
    before = rt.storage.get_record(record_id)

    again = job_for(rt, url)
    assert run_fetch(rt, again) == Ended("unchanged")
    assert seen == [None, '"v1"']
    row = rt.storage.get_job(again.id)
    assert (row["state"], row["record_id"]) == ("done", record_id)
    assert rt.storage.get_record(record_id).updated_at == before.updated_at


def test_no_conditional_request_without_a_record_to_point_at(rt, site):
    seen = []
    site.routes["/lost.html"] = lambda h: seen.append(h.headers.get("If-None-Match")) or html(ETag='"v9"')
    url = site.url("/lost.html")
    remember_validators(rt, run_fetch(rt, job_for(rt, url)))
    run_fetch(rt, job_for(rt, url))  # validators known, but no record was ever stored
    assert seen == [None, None]


def test_no_page_no_validators(rt, site):
    """The validators ride with the page in the runner's end round trip: a fetch whose page is
    never handed on leaves none behind."""
    site.routes["/v.html"] = html(ETag='"v2"')
    out = run_fetch(rt, job_for(rt, site.url("/v.html")))
    assert rt.fetcher.validators.get(site.url("/v.html")) is None
    remember_validators(rt, out)
    assert rt.fetcher.validators.get(site.url("/v.html")).etag == '"v2"'


def test_the_page_is_compressed_once_for_its_archive_record_and_its_payload(rt, site, monkeypatch):
    """The archive's record and the payload parse reads are framed around one deflate of the page."""
    body = b"<html><body>" + b"".join(b"<p>%d harbour %d</p>" % (n, n * n) for n in range(5000)) + b"</body></html>"
    site.routes["/long.html"] = html(body)
    job = job_for(rt, site.url("/long.html"))
    fed: list[int] = []  # bytes handed to a compressor, any of zlib's or ISA-L's (worker/deflated.py)

    class Counted:
        def __init__(self, packer):
            self.packer = packer

        def compress(self, data):
            fed.append(len(data))
            return self.packer.compress(data)

        def flush(self, *mode):
            return self.packer.flush(*mode)

    compressobj, compress, isal_compressobj = zlib.compressobj, zlib.compress, isal_zlib.compressobj
    with monkeypatch.context() as patch:
        patch.setattr(zlib, "compressobj", lambda *a, **k: Counted(compressobj(*a, **k)))
        patch.setattr(isal_zlib, "compressobj", lambda *a, **k: Counted(isal_compressobj(*a, **k)))
        patch.setattr(zlib, "compress", lambda data, *a, **k: fed.append(len(data)) or compress(data, *a, **k))
        out = run_fetch(rt, job)
        pipe = rt.redis.pipeline(transaction=False)
        PAGE_CODEC.write(pipe, keys.payload(job.id, "fetch"), out.payload, 60)
        pipe.execute()
    assert len(body) <= sum(fed) < len(body) + 4096  # the page once, and the records' headers

    archived = out.payload.page.archived
    assert record_at(rt.archive.directory / archived.file, archived.offset).content == body
    pipe = rt.redis.pipeline(transaction=False)
    PAGE_CODEC.read(pipe, keys.payload(job.id, "fetch"))
    assert PAGE_CODEC.decode(pipe.execute()[0]).body == body
    rt.redis.delete(keys.payload(job.id, "fetch"))


# --- retries through the runner: one attempt counter, carried by the job ---------------------------

def release(rt) -> list:
    sent: list = []
    DelayedJobs(rt.redis).release_due(sent.append, now=time.time() + 3600)
    return sent


def test_503_twice_then_200_goes_on_to_parse(rt, site):
    unavailable = (503, {"Content-Type": "text/html"}, b"down")
    site.routes["/flaky.html"] = badserver.Sequence(unavailable, unavailable, html())
    job = job_for(rt, site.url("/flaky.html"))
    task = STAGE_TASKS["fetch"]
    task.apply(args=[job.id])
    attempts = []
    for _ in range(2):  # each retry waits in the delayed set, then comes back carrying its tally
        [message] = release(rt)
        attempts.append(message.fields["attempts"])
        task.apply(args=[message.job_id], kwargs=message.fields)
    assert attempts == [1, 2]
    assert site.hits["/flaky.html"] == 3
    assert rt.storage.get_job(job.id)["state"] == "queued"  # on its way to parse
    assert rt.redis.exists(keys.payload(job.id, "fetch"))


def test_retryable_failures_are_counted_then_exhausted(rt, site):
    site.routes["/down.html"] = (503, {"Content-Type": "text/html"}, b"down")
    job = job_for(rt, site.url("/down.html"))
    task = STAGE_TASKS["fetch"]
    fields: dict = {}
    for attempt in (1, 2):
        before = time.time()
        task.apply(args=[job.id], kwargs=fields)
        [(_, due)] = rt.redis.zrange(keys.delayed(), 0, -1, withscores=True)
        ceiling = 2 ** (attempt - 1)  # retry_backoff_base 1 s: waits in the upper half of 1 s, then 2 s
        assert ceiling / 2 <= due - before <= ceiling + 1
        [message] = release(rt)
        assert message.fields["attempts"] == attempt
        fields = message.fields
    task.apply(args=[job.id], kwargs=fields)
    assert release(rt) == []
    row = rt.storage.get_job(job.id)
    assert (row["state"], row["stage"], row["http_status"], row["attempts"]) == ("failed", "fetch", 503, 3)
    assert row["reason"] == "HTTP 503 Service Unavailable (gave up after 3 attempts)"


def test_a_busy_host_delays_without_spending_attempts(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "host_rate", 0.01)  # one fetch per 100 s
    rt.forget_fetcher()
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    task = STAGE_TASKS["fetch"]
    task.apply(args=[job_for(rt, site.url("/a.html")).id])
    job = job_for(rt, site.url("/b.html"))
    release(rt)
    task.apply(args=[job.id])
    for _ in range(5):  # more busy re-queues than fetch_retries allows failures
        [message] = release(rt)
        assert "attempts" not in message.fields and message.fields["waiting_since"] <= time.time()
        task.apply(args=[message.job_id], kwargs=message.fields)
    assert rt.storage.get_job(job.id)["state"] == "queued" and "/b.html" not in site.hits


def test_a_host_busy_for_too_long_ends_the_url(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "host_rate", 0.01)
    rt.forget_fetcher()
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    task = STAGE_TASKS["fetch"]
    task.apply(args=[job_for(rt, site.url("/a.html")).id])
    job = job_for(rt, site.url("/b.html"))
    task.apply(args=[job.id], kwargs={"waiting_since": time.time() - rt.settings.host_busy_timeout - 5})
    row = rt.storage.get_job(job.id)
    assert row["state"] == "failed"
    assert row["reason"].startswith(f"host {host_key(site.base_url)} is busy: ")
    assert row["reason"].endswith("s)") and "(still busy after waiting " in row["reason"]


def test_a_retry_from_the_dead_letter_store_starts_a_fresh_tally(rt, site):
    from worker.submit import retry

    site.routes["/once.html"] = (503, {"Content-Type": "text/html"}, b"down")
    job = job_for(rt, site.url("/once.html"))
    STAGE_TASKS["fetch"].apply(args=[job.id], kwargs={"attempts": 2})  # the last attempt fails
    assert rt.storage.get_job(job.id)["state"] == "failed"
    sent: list = []
    assert retry(rt.storage, job.id, send=sent.extend)
    [message] = sent
    assert message.stage == "fetch" and "attempts" not in message.fields
    assert rt.storage.get_job(job.id)["state"] == "queued"
