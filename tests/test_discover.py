import gzip

from tasks.discovery.run import parse_feed, parse_sitemap


def test_sitemap_and_index_and_gzip():
    urlset = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <url><loc> https://a.test/1 </loc><lastmod>2026-01-01</lastmod></url><url><loc>https://a.test/2</loc></url></urlset>"""
    assert parse_sitemap(urlset) == (["https://a.test/1", "https://a.test/2"], [])
    assert parse_sitemap(gzip.compress(urlset))[0] == ["https://a.test/1", "https://a.test/2"]
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>https://a.test/s1.xml.gz</loc></sitemap></sitemapindex>"""
    assert parse_sitemap(index) == ([], ["https://a.test/s1.xml.gz"])


def test_rss_and_atom_links():
    rss = b"""<rss version="2.0"><channel><item><title>A</title><link>https://a.test/a</link></item>
    <item><link>https://a.test/b</link></item><item><link>https://a.test/a</link></item></channel></rss>"""
    assert parse_feed(rss) == ["https://a.test/a", "https://a.test/b"]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="self" href="https://a.test/self"/>
    <link href="https://a.test/post"/></entry></feed>"""
    assert parse_feed(atom) == ["https://a.test/post"]


def test_entities_are_not_expanded():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>
    <urlset><url><loc>https://a.test/&b;</loc></url></urlset>"""
    pages, _ = parse_sitemap(bomb)
    assert all("aaaaa" not in p for p in pages)


# --- parsing details (tasks.discovery.run owns feeds, sitemaps and listings) --------------------------

import threading  # noqa: E402
import zlib  # noqa: E402

import pytest  # noqa: E402
import redis  # noqa: E402

from tasks.discovery.run import (  # noqa: E402
    DISCOVERY_PRIORITY,
    discover_source,
    parse_listing,
    poll_due,
    run_source,
    sitemap_entries,
)
from worker import keys  # noqa: E402
from worker.errors import TooLargeError  # noqa: E402
from worker.models import Article, Draft  # noqa: E402
from worker.pagestore import PageStore  # noqa: E402
from worker.runtime import Runtime  # noqa: E402
from worker.registry import Registry  # noqa: E402
from worker.settings import get_settings  # noqa: E402
from worker.similar import SimilarIndex  # noqa: E402
from worker.sources import Source  # noqa: E402
from worker.storage import Storage  # noqa: E402


def test_feed_links_resolve_relative_and_fall_back_to_guid():
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><link>https://a.test/</link>
    <item><link>/news/1</link></item>
    <item><guid>https://a.test/news/2</guid></item>
    <item><guid isPermaLink="false">tag:a.test,2026:3</guid></item>
    </channel></rss>"""
    assert parse_feed(rss, "https://a.test/feeds/rss.xml") == ["https://a.test/news/1", "https://a.test/news/2"]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://b.test/blog/">
    <entry><link rel="enclosure" href="x.mp3"/><link type="application/pdf" href="p.pdf"/>
    <link type="text/html" href="post-1"/></entry>
    <entry><link href="https://c.test/elsewhere"/></entry></feed>"""
    assert parse_feed(atom, "https://b.test/atom.xml") == ["https://b.test/blog/post-1", "https://c.test/elsewhere"]
    rdf = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
    <item rdf:about="https://d.test/1"><link>https://d.test/1</link></item></rdf:RDF>"""
    assert parse_feed(rdf) == ["https://d.test/1"]


def test_news_sitemap_and_index_lastmod():
    news = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
      xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc>https://a.test/n1</loc>
      <news:news><news:title>One</news:title></news:news></url></urlset>"""
    assert sitemap_entries(news).pages == ["https://a.test/n1"]
    index = b"""\n\n<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>https://a.test/old.xml</loc><lastmod>2020-01-01</lastmod></sitemap>
    <sitemap><loc>https://a.test/new.xml</loc><lastmod>2026-05-01</lastmod></sitemap></sitemapindex>"""
    assert sitemap_entries(index).children == [("https://a.test/old.xml", "2020-01-01"),
                                               ("https://a.test/new.xml", "2026-05-01")]


def test_gzip_is_inflated_only_up_to_the_cap():
    from tasks.discovery import run as discover

    big = b"<urlset>" + b" " * (3 * 1024 * 1024) + b"</urlset>"
    compressed = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressed.compress(big) + compressed.flush()
    assert len(bomb) < 10_000
    with pytest.raises(TooLargeError):
        discover._root(bomb, limit=1024 * 1024)
    assert discover._root(bomb).tag == "urlset"


def test_listing_links_by_selector():
    html = b"""<html><head><base href="https://a.test/news/"></head><body>
    <nav><a class="headline" href="/about">About</a></nav>
    <a class="headline" href="story-1.html">One</a>
    <h2 class="headline"><a href="https://a.test/story-2.html">Two</a></h2>
    <a href="/story-3.html"><span class="headline">Three</span></a>
    <a class="headline" href="javascript:void(0)">No</a><a class="headline" href="#top">No</a>
    <a class="headline" href="story-1.html#comments">One again</a>
    </body></html>"""
    assert parse_listing(html, "https://a.test/", "main a.headline") == []
    assert parse_listing(html, "https://a.test/", ".headline") == [
        "https://a.test/about", "https://a.test/news/story-1.html", "https://a.test/story-2.html",
        "https://a.test/story-3.html", "https://a.test/news/story-1.html#comments"]


# --- a discovery run over HTTP on 127.0.0.1 -------------------------------------------------------

DB = 8  # a database of the session's redis-server that nothing else uses
FAST = {"rate": 0, "concurrency": 0}  # no per-host pacing: these tests are about what is found


@pytest.fixture
def rt(redis_url, tmp_path, monkeypatch):
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    client.flushdb()
    storage = Storage(f"sqlite:///{tmp_path / 'discover.db'}")
    sent: list[tuple[str, int]] = []
    # The jobs are real rows; only the broker message is caught, so no worker elsewhere sees it.
    monkeypatch.setattr("worker.submit.send_many",
                        lambda queue, job_ids, priority: sent.extend((job_id, priority) for job_id in job_ids))
    runtime = Runtime(settings=get_settings(), storage=storage, redis=client, pages=PageStore(client, 60),
                      similar=SimilarIndex(storage.engine))
    runtime.sent = sent  # type: ignore[attr-defined]
    yield runtime
    client.flushdb()
    client.close()
    storage.close()


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


def test_a_run_queues_each_new_url_once_and_asks_changed_since(rt, site):
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

    first = discover_source(source, rt)
    assert first.errors == []
    assert (first.found, first.new, first.not_modified) == (4, 4, 0)  # /a/2 and /a/1 are listed twice
    queued = _queued(rt)
    assert set(queued) == {site.url("/a/1"), site.url("/a/2"), site.url("/a/3"), site.url("/a/4?utm_source=x")}
    assert set(queued.values()) == {("harbor", 6)}
    assert len(rt.sent) == 4 and {p for _, p in rt.sent} == {6}

    second = discover_source(source, rt)
    assert (second.new, second.not_modified) == (0, 2)  # the feed and the gzipped child answered 304
    assert site.hits["/sitemap.xml"] == 2  # an index is always read: its children change under it
    assert len(_queued(rt)) == 4

    feed["body"] = _rss(site, ["/a/5", "/a/1", "/a/2"])
    third = discover_source(source, rt)
    assert third.new == 1 and set(_queued(rt)) - set(queued) == {site.url("/a/5")}


def test_stored_and_seen_urls_are_not_queued(rt, site):
    from tasks.discovery.seen import SeenURLs
    from tasks.urlnorm import canonicalize_url

    stored = site.url("/a/stored")
    rt.storage.upsert_record(Draft(job_id="j", category_id="x", url=stored, canonical_url=canonicalize_url(stored),
                                   content_hash="h1", article=Article(title="t", body=["b"])))
    SeenURLs(rt.redis).mark(site.url("/a/seen"))
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"},
                               _rss(site, ["/a/stored", "/a/seen", "/a/new"]))
    report = discover_source(Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST), rt)
    assert (report.found, report.new) == (3, 1) and set(_queued(rt)) == {site.url("/a/new")}


def test_two_runs_at_once_queue_each_url_once(rt, site):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"},
                               _rss(site, [f"/a/{n}" for n in range(50)]))
    source = Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(discover_source(source, rt))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.new for r in reports) == 50 and len(_queued(rt)) == 50


def test_failures_are_reported_per_start_point(rt, site):
    port = site.base_url.rsplit(":", 1)[1]
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    site.page("/not-a-feed.xml", "<html><body><p>Moved</p></body></html>")
    site.routes["/ok.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/ok"]))
    source = Source(key="x", feeds=[site.url("/missing.xml"), site.url("/not-a-feed.xml"), site.url("/private/rss"),
                                    f"http://127.0.0.2:{port}/rss.xml", site.url("/ok.xml")], politeness=FAST)
    report = discover_source(source, rt)
    assert report.errors == [
        f"feed {site.url('/missing.xml')}: HTTP 404",
        f"feed {site.url('/not-a-feed.xml')}: not a feed or sitemap (its root element is <html>)",
        f"feed {site.url('/private/rss')}: robots.txt of {site.base_url} disallows it to GleanerBot",
        f"feed http://127.0.0.2:{port}/rss.xml: refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address "
        "(allow it with GLEANER_ALLOW_PRIVATE_URLS)",
    ]
    assert report.new == 1  # the good start point still counts
    assert "/private/rss" not in site.hits


def test_discovery_fetches_take_turns_by_the_source_politeness(rt, site):
    from tasks.fetching.hostlimit import host_key

    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1"]))
    host = keys.host_state(host_key(site.base_url))
    assert discover_source(Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST), rt).errors == []
    assert not rt.redis.exists(host)  # no limits for this source: the limiter kept no turns
    source = Source(key="y", feeds=[site.url("/rss.xml?2"), site.url("/rss.xml?3")], politeness={"rate": 2})
    assert discover_source(source, rt).errors == []
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


def test_run_source_skips_paused_removed_duplicate_and_overlapping_runs(rt, site):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1"]))
    registry = Registry(rt.redis)
    registry.add(Source(key="a", feeds=[site.url("/rss.xml")], every=60, politeness=FAST))
    assert run_source("a", 1000, rt).new == 1
    assert run_source("a", 1000, rt) is None  # the same slot twice
    rt.redis.set(keys.source_running("a"), "someone")  # another run holds the lock
    assert run_source("a", 2000, rt) is None  # a run is still going
    rt.redis.delete(keys.source_running("a"))
    registry.pause("a")
    assert run_source("a", 3000, rt) is None
    assert run_source("gone", 1, rt) is None
    (status,) = registry.statuses()
    assert (status.runs, status.found, status.new, status.last_error) == (1, 1, 1, None)
    assert site.hits["/rss.xml"] == 1


def test_urls_that_could_not_be_queued_are_found_again(rt, site, monkeypatch):
    site.routes["/rss.xml"] = (200, {"Content-Type": "application/rss+xml"}, _rss(site, ["/a/1", "/a/2"]))
    source = Source(key="x", feeds=[site.url("/rss.xml")], politeness=FAST)

    def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr("tasks.discovery.run.submit", broken)
    with pytest.raises(ConnectionError):
        discover_source(source, rt)
    monkeypatch.undo()
    monkeypatch.setattr("worker.submit.send_many", lambda *a, **k: None)
    assert discover_source(source, rt).new == 2
