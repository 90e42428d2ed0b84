"""fetch_job in-process against real Redis and SQLite: robots, host limits, the retry tally, 304s."""

from __future__ import annotations

import time

import pytest
import redis

from tasks.attempts import FetchAttempts, countdown_cap, retry_delay
from tasks.fetch import HostPolicy, fetch, fetch_job, fetcher_for, reset_fetchers
from tasks.fetching.hostlimit import host_key
from tests import badserver
from tests.badserver import shared_site, site  # noqa: F401 - fixtures
from worker import keys
from worker.delayed import DelayedJobs
from worker.errors import (
    AttemptsExhaustedError,
    HostBusyError,
    NetworkError,
    RobotsDisallowedError,
    ServerError,
)
from worker.models import Article, Draft
from worker.queues import Queue
from worker.runtime import get_runtime

PAGE = b"<html><head><title>Garden</title></head><body><p>The garden opened on Saturday.</p></body></html>"


@pytest.fixture
def rt(redis_url, monkeypatch):
    runtime = get_runtime()
    client = redis.Redis.from_url(redis_url)
    for pattern in (keys.robots("*"), keys.host_state("*"), keys.host_slots("*"), keys.host_tickets("*")):
        for key in client.scan_iter(pattern):
            client.delete(key)
    reset_fetchers()
    # No waiting unless a test asks for it.
    for name, value in {"host_rate": 0.0, "host_concurrency": 0, "host_wait_inline": 0.0, "fetch_retries": 2,
                        "retry_backoff_base": 1.0, "robots_obey": True}.items():
        monkeypatch.setattr(runtime.settings, name, value)
    yield runtime
    client.delete(*(q for q in Queue.names()), keys.delayed())  # what these tests sent onwards or delayed
    client.close()


def job_for(rt, url: str, category: str = "test") -> dict:
    return rt.storage.get_job(rt.storage.create_jobs([url], category)[0])


def html(body: bytes = PAGE, **headers: str):
    return (200, {"Content-Type": "text/html; charset=utf-8", **headers}, body)


def tally(rt, job) -> dict[bytes, bytes]:
    return rt.redis.hgetall(keys.fetch_attempts(job["id"]))


# --- the retry arithmetic -----------------------------------------------------------------------

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


def test_countdowns_stay_well_inside_the_visibility_timeout(rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "retry_backoff_max", 10_000)
    monkeypatch.setattr(rt.settings, "visibility_timeout", 3600)
    assert countdown_cap(rt.settings) == 900


# --- robots -------------------------------------------------------------------------------------

def test_a_path_robots_disallows_is_never_fetched(rt, site):
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    site.routes["/private/a.html"] = html()
    with pytest.raises(RobotsDisallowedError, match=r"robots.txt of http://127.0.0.1:\d+ disallows /private/a.html"):
        fetch_job(job_for(rt, site.url("/private/a.html")), rt)
    assert "/private/a.html" not in site.hits


def test_robots_can_be_switched_off(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "robots_obey", False)
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /\n")
    site.routes["/a.html"] = html()
    job = job_for(rt, site.url("/a.html"))
    fetch_job(job, rt)
    assert rt.pages.get_page(job["id"])[1] == PAGE and "/robots.txt" not in site.hits


def test_crawl_delay_spaces_fetches_of_one_host(rt, site):
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 30\n")
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    fetch_job(job_for(rt, site.url("/a.html")), rt)
    with pytest.raises(HostBusyError, match=r"next turn is in (29|30)\.\ds"):
        fetch_job(job_for(rt, site.url("/b.html")), rt)
    assert "/b.html" not in site.hits


# --- busy hosts and failed attempts are counted apart ---------------------------------------------

def test_a_busy_host_delays_without_spending_attempts(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "host_rate", 0.01)  # one fetch per 100 s
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    fetch_job(job_for(rt, site.url("/a.html")), rt)
    job = job_for(rt, site.url("/b.html"))
    for _ in range(5):  # more busy re-queues than fetch_retries allows failures
        with pytest.raises(HostBusyError) as info:
            fetch_job(job, rt)
        assert 0 < info.value.retry_after <= rt.settings.host_busy_max_wait
    assert b"failed" not in tally(rt, job)


def test_a_host_busy_for_too_long_ends_the_url(rt, site, monkeypatch):
    monkeypatch.setattr(rt.settings, "host_rate", 0.01)
    site.routes["/a.html"] = site.routes["/b.html"] = html()
    fetch_job(job_for(rt, site.url("/a.html")), rt)
    job = job_for(rt, site.url("/b.html"))
    with pytest.raises(HostBusyError):
        fetch_job(job, rt)
    rt.redis.hset(keys.fetch_attempts(job["id"]), "busy_since", time.time() - rt.settings.host_busy_timeout - 5)
    with pytest.raises(AttemptsExhaustedError, match=r"is busy: .* \(still busy after waiting \d+s\)"):
        fetch_job(job, rt)


def test_retryable_failures_are_counted_then_exhausted(rt, site):
    site.routes["/down.html"] = (503, {"Content-Type": "text/html"}, b"down")
    job = job_for(rt, site.url("/down.html"))
    for attempt in (1, 2):
        with pytest.raises(ServerError) as info:
            fetch_job(job, rt)
        assert 2 ** (attempt - 1) / 2 <= info.value.retry_after <= 2 ** (attempt - 1)  # base 1 s
        assert tally(rt, job)[b"failed"] == str(attempt).encode()
    with pytest.raises(AttemptsExhaustedError, match=r"^HTTP 503 Service Unavailable \(gave up after 3 attempts\)$") as info:
        fetch_job(job, rt)
    assert info.value.status == 503
    assert tally(rt, job) == {}  # a retry from the dead-letter store starts afresh


def test_a_fresh_delivery_starts_a_new_tally(rt, site):
    site.routes["/down.html"] = badserver.reset_mid_body()
    job = job_for(rt, site.url("/down.html"))
    rt.redis.hset(keys.fetch_attempts(job["id"]), "failed", 99)
    with pytest.raises(NetworkError):
        fetch_job(job, rt, first_attempt=True)
    assert tally(rt, job)[b"failed"] == b"1"


def test_429_with_retry_after_pauses_the_whole_host(rt, site):
    site.routes["/limited.html"] = (429, {"Retry-After": "20"}, b"")
    with pytest.raises(ServerError) as info:
        fetch_job(job_for(rt, site.url("/limited.html")), rt)
    assert 20 <= info.value.retry_after <= 21
    limiter = fetcher_for(rt).limiter
    admitted, wait, _ = limiter.try_acquire(host_key(site.base_url), "other", HostPolicy(rate=100), 0)
    assert not admitted and 19 < wait <= 20


def test_a_per_source_policy_overrides_the_global_one(rt, site):
    site.routes["/a.html"] = site.routes["/b.html"] = site.routes["/c.html"] = html()
    slow = {"slow-source": HostPolicy(rate=0.01, concurrency=1)}
    fetch_job(job_for(rt, site.url("/a.html"), "slow-source"), rt, overrides=slow)
    with pytest.raises(HostBusyError):
        fetch_job(job_for(rt, site.url("/b.html"), "slow-source"), rt, overrides=slow)
    fetch_job(job_for(rt, site.url("/c.html"), "other"), rt, overrides=slow)  # global: no limit
    assert site.hits.get("/b.html") is None and site.hits["/c.html"] == 1


# --- conditional requests -----------------------------------------------------------------------

def store_record(rt, url: str, title: str = "Garden") -> str:
    draft = Draft(job_id="seed", category_id="test", url=url, canonical_url=url, content_hash=f"hash-{url}",
                  article=Article(title=title, body=["The garden opened on Saturday."]))
    return rt.storage.upsert_record(draft)[0]


def test_a_304_ends_the_job_at_the_existing_record(rt, site):
    seen = []

    def route(h):
        seen.append(h.headers.get("If-None-Match"))
        if h.headers.get("If-None-Match") == '"v1"':
            return (304, {"ETag": '"v1"'}, b"")
        return html(ETag='"v1"')

    site.routes["/cond.html"] = route
    url = site.url("/cond.html")
    first = job_for(rt, url)
    fetch_job(first, rt)  # no record yet: an ordinary fetch, validators remembered
    assert seen == [None]
    record_id = store_record(rt, url)
    before = rt.storage.get_record(record_id)

    again = job_for(rt, url)
    fetch_job(again, rt)
    assert seen == [None, '"v1"']
    row = rt.storage.get_job(again["id"])
    assert (row["state"], row["record_id"]) == ("done", record_id)
    assert not rt.redis.exists(keys.page(again["id"]))  # nothing went on to parse
    assert rt.storage.get_record(record_id).updated_at == before.updated_at


def test_no_conditional_request_without_a_record_to_point_at(rt, site):
    seen = []
    site.routes["/lost.html"] = lambda h: seen.append(h.headers.get("If-None-Match")) or html(ETag='"v9"')
    url = site.url("/lost.html")
    fetch_job(job_for(rt, url), rt)
    fetch_job(job_for(rt, url), rt)  # validators known, but no record was ever stored
    assert seen == [None, None]


# --- through the Celery task (eagerly) ------------------------------------------------------------

def test_503_twice_then_200_goes_on_to_parse(rt, site):
    unavailable = (503, {"Content-Type": "text/html"}, b"down")
    site.routes["/flaky.html"] = badserver.Sequence(unavailable, unavailable, html())
    job = job_for(rt, site.url("/flaky.html"))
    fetch.apply(args=[job["id"]])
    delayed, sent = DelayedJobs(rt.redis), []
    for _ in range(2):  # each retry waits in the delayed set, then comes back with its retry count
        assert delayed.release_due(lambda *entry: sent.append(entry), now=time.time() + 3600) == 1
        fetch.apply(args=[job["id"]], retries=sent[-1][3])
    assert [entry[3] for entry in sent] == [1, 2]
    assert site.hits["/flaky.html"] == 3
    assert rt.pages.get_page(job["id"])[1] == PAGE
    assert rt.storage.get_job(job["id"])["state"] == "queued"  # on its way to parse
