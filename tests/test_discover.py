"""Discovery runs over HTTP on 127.0.0.1 through the fetch policy (tasks/discovery/run.py)."""

import gzip
import threading
import zlib

import pytest
import redis

from tasks.discovery.run import DISCOVERY_PRIORITY, discover_source, poll_due, run_source
from worker import keys
from worker.models import Article, Draft
from worker.registry import Registry
from worker.runtime import Runtime
from worker.settings import get_settings
from worker.sources import Source
from worker.storage import Storage
from worker.submit import submit


# --- a discovery run over HTTP on 127.0.0.1 -------------------------------------------------------

DB = 8  # a database of the session's redis-server that nothing else uses
FAST = {"rate": 0, "concurrency": 0}  # no per-host pacing: these tests are about what is found


@pytest.fixture
def rt(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    client.flushdb()
    storage = Storage(f"sqlite:///{tmp_path / 'discover.db'}")
    runtime = Runtime(settings=get_settings(), storage=storage, redis=client)
    yield runtime
    client.flushdb()
    runtime.close()


class Enqueue:
    """What the discovery task hands a run: queue through ``submit``. The jobs are real rows; only
    the broker messages are caught, so no worker elsewhere sees them."""

    def __init__(self, rt) -> None:
        self.rt, self.sent = rt, []

    def __call__(self, urls, category, priority):
        return submit(self.rt.storage, urls, category, priority, send=self.sent.extend)


@pytest.fixture
def enqueue(rt):
    return Enqueue(rt)


def _queued(rt) -> dict[str, tuple[str, int]]:
    from sqlalchemy import select

    from worker.storage import jobs

    with rt.storage.engine.connect() as conn:
        return {r.url: (r.category_id, r.priority) for r in conn.execute(select(jobs))}


def _rss(site, paths) -> bytes:
    items = "".join(f"<item><link>{site.url(p)}</link></item>" for p in paths)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def _conditional(body_ref: dict, content_type: str = "application/rss+xml"):
    """A route answering 304 to a request that names the current ETag."""
    def handler(request):
        etag = f'"v{zlib.crc32(body_ref["body"])}"'
        if request.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"Content-Type": content_type, "ETag": etag}, body_ref["body"]
    return handler


def test_a_run_queues_each_new_url_once_and_asks_changed_since(rt, site, enqueue):
    feed = {"body": _rss(site, ["/a/1", "/a/2"])}
    site.routes["/rss.xml"] = _conditional(feed)
    child = gzip.compress(b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">"""
                          + f"<url><loc>{site.url('/a/2')}</loc></url><url><loc>{site.url('/a/3')}</loc></url>".encode()
                          + b"</urlset>")
    site.routes["/sitemap-1.xml.gz"] = _conditional({"body": child}, "application/x-gzip")
    site.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml", "ETag": '"idx"'}, (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url('/sitemap-1.xml.gz')}</loc></sitemap></sitemapindex>").encode())
    site.page("/latest/", '<ul><li><a class="h" href="/a/4?utm_source=x">4</a></li>'
                          '<li><a class="h" href="/a/1">1 again</a></li></ul>')
    source = Source(key="harbor", feeds=[site.url("/rss.xml")], sitemaps=[site.url("/sitemap.xml")],
                    listings=[{"url": site.url("/latest/"), "links": "a.h"}], every=60, politeness=FAST)

    first = discover_source(source, rt, enqueue)
    assert first.errors == []
    assert (first.found, first.new, first.not_modified) == (4, 4, 0)  # /a/2 and /a/1 are listed twice
    queued = _queued(rt)
    assert set(queued) == {site.url("/a/1"), site.url("/a/2"), site.url("/a/3"), site.url("/a/4?utm_source=x")}
    assert set(queued.values()) == {("harbor", 6)}
    assert len(enqueue.sent) == 4 and {m.priority for m in enqueue.sent} == {6}

    second = discover_source(source, rt, enqueue)
    assert (second.new, second.not_modified) == (0, 2)  # the feed and the gzipped child answered 304
    assert site.hits["/sitemap.xml"] == 2  # an index is always read: its children change under it
    assert len(_queued(rt)) == 4

    feed["body"] = _rss(site, ["/a/5", "/a/1", "/a/2"])
    third = discover_source(source, rt, enqueue)
    assert third.new == 1 and set(_queued(rt)) - set(queued) == {site.url("/a/5")}


def test_stored_and_seen_urls_are_not_queued(rt, site, enqueue):
    from tasks.discovery.seen import SeenURLs
    from tasks.urlnorm import canonicalize_url

    stored = site.url("/a/stored")
    rt.storage.upsert_record(Draft(job_id="j", category_id="x", url=stored, canonical_url=canonicalize_url(stored),
                                   content_hash="h1", article=Article(title="t", body=["b"])))
    SeenURLs(rt.redis).mark(site.url("/a/seen"))
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"},
                               _rss(site, ["/a/stored", "/a/seen", "/a/new"]))
    report = discover_source(Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST), rt, enqueue)
    assert (report.found, report.new) == (3, 1) and set(_queued(rt)) == {site.url("/a/new")}


def test_two_runs_at_once_queue_each_url_once(rt, site, enqueue):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"},
                               _rss(site, [f"/a/{n}" for n in range(50)]))
    source = Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(discover_source(source, rt, enqueue))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.new for r in reports) == 50 and len(_queued(rt)) == 50


def test_failures_are_reported_per_start_point(rt, site, enqueue):
    port = site.base_url.rsplit(":", 1)[1]
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    site.page("/not-a-feed.xml", "<html><body><p>Moved</p></body></html>")
    site.routes["/ok.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/ok"]))
    source = Source(key="x", feeds=[site.url("/missing.xml"), site.url("/not-a-feed.xml"), site.url("/private/rss"),
                                    f"http://127.0.0.2:{port}/rss.xml", site.url("/ok.xml")], politeness=FAST)
    report = discover_source(source, rt, enqueue)
    assert report.errors == [
        f"feed {site.url('/missing.xml')}: HTTP 404 Not Found",
        f"feed {site.url('/not-a-feed.xml')}: not a feed or sitemap (its root element is <html>)",
        f"feed {site.url('/private/rss')}: robots.txt of {site.base_url} disallows /private/rss to GleanerBot",
        f"feed http://127.0.0.2:{port}/rss.xml: refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address "
        "(allow it with GLEANER_ALLOW_PRIVATE_URLS)",
    ]
    assert report.new == 1  # the good start point still counts
    assert "/private/rss" not in site.hits


def test_discovery_fetches_take_turns_by_the_source_politeness(rt, site, enqueue):
    from tasks.fetching.hostlimit import host_key

    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1"]))
    host = keys.host_state(host_key(site.base_url))
    assert discover_source(Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST), rt, enqueue).errors == []
    assert not rt.redis.exists(host)  # no limits for this source: the limiter kept no turns
    source = Source(key="y", feeds=[site.url("/rss.xml?2"), site.url("/rss.xml?3")], politeness={"rate": 2})
    assert discover_source(source, rt, enqueue).errors == []
    # Two fetches at two per second: the host's next free turn is half a second after the second.
    now_ms = Registry(rt.redis).now_ms()
    assert now_ms < int(rt.redis.hget(host, "next")) <= now_ms + 500


def test_poll_due_claims_and_sends_runs(rt):
    registry = Registry(rt.redis)
    registry.add(Source(key="a", feeds=["https://a.example/rss"], every=120))
    registry.add(Source(key="b", feeds=["https://b.example/rss"], every=30))
    registry.pause("b")
    sent = []
    claims = poll_due(rt, lambda name, **kw: sent.append((name, kw)))
    assert [c.key for c in claims] == ["a"]
    ((name, kw),) = sent
    assert name == "gleaner.discover" and kw["args"] == ["a"] and kw["kwargs"] == {"slot": claims[0].slot}
    assert kw["priority"] == DISCOVERY_PRIORITY and kw["expires"] == 120
    assert poll_due(rt, lambda *a, **k: pytest.fail("nothing is due")) == []


def test_run_source_skips_paused_removed_duplicate_and_overlapping_runs(rt, site, enqueue):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1"]))
    registry = Registry(rt.redis)
    registry.add(Source(key="a", feeds=[site.url("/rss.xml")], every=60, politeness=FAST))
    assert run_source("a", 1000, rt, enqueue).new == 1
    assert run_source("a", 1000, rt, enqueue) is None  # the same slot twice
    rt.redis.set(keys.source_running("a"), "someone")  # another run holds the lock
    assert run_source("a", 2000, rt, enqueue) is None  # a run is still going
    rt.redis.delete(keys.source_running("a"))
    registry.pause("a")
    assert run_source("a", 3000, rt, enqueue) is None
    assert run_source("gone", 1, rt, enqueue) is None
    (status,) = registry.statuses()
    assert (status.runs, status.found, status.new, status.last_error) == (1, 1, 1, None)
    assert site.hits["/rss.xml"] == 1


def test_urls_that_could_not_be_queued_are_found_again(rt, site, enqueue):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1", "/a/2"]))
    source = Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST)

    def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    with pytest.raises(ConnectionError):
        discover_source(source, rt, broken)
    assert discover_source(source, rt, enqueue).new == 2
