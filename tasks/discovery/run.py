"""Discovery: article URLs from a source's feeds, sitemaps and listing pages, and the tasks that poll sources.

``gleaner.poll_sources`` is beat's one periodic task: it syncs the sources file if it changed and
claims the sources that are due (``worker.registry``), sending one ``gleaner.discover`` per
claimed run. ``gleaner.discover`` fetches the source's start points through the fetch stage's
guarded client (robots.txt, per-host limits, conditional requests), and queues at scheduled
priority only the URLs not seen before.

Feeds and sitemaps are parsed with lxml, not feedparser: only item links are needed (the article
page itself is fetched and extracted), lxml is already here, and its parser is set up to expand no
entities and read nothing from the network, and to recover from broken markup.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import redis
from bs4 import BeautifulSoup
from lxml import etree
from sqlalchemy import select

from tasks.fetching.download import Download, download, media_type
from tasks.fetch import Fetcher, fetcher_for
from tasks.fetching.hostlimit import HostPolicy, host_key
from tasks.fetching.robots import origin_of
from tasks.discovery.seen import SeenURLs
from tasks.urlnorm import canonicalize_url
from worker import keys
from worker.errors import (
    HostBusyError,
    HTTPStatusError,
    IngestError,
    InvalidURLError,
    RobotsDisallowedError,
    ServerError,
    TooLargeError,
)
from worker.app import app
from worker.models import Page
from worker.queues import Priority
from worker.runtime import Runtime, get_runtime
from worker.registry import Claim, Registry, RunReport, host_policy
from worker.settings import Settings
from worker.sources import Source
from worker.storage import Storage, records
from worker.submit import submit

log = logging.getLogger("gleaner.discover")

__all__ = ["discover", "discover_source", "parse_feed", "parse_listing", "parse_sitemap", "poll_sources",
           "select_new", "sitemap_entries"]

MAX_URLS_PER_RUN = 10_000  # article URLs taken from one run of one source; the rest wait for the next
MAX_CHILD_SITEMAPS = 20  # child sitemaps of an index read per run, the most recently modified first
MAX_SITEMAP_DEPTH = 2  # an index of indexes at most (the protocol allows none; some sites nest one)
MAX_XML_BYTES = 50 * 1024 * 1024  # a gzipped sitemap is inflated no further (the protocol's own cap)
# Between manual (0) and scheduled (6) work: a crawl backlog must not hold back the polls that feed it.
DISCOVERY_PRIORITY = 3
RUN_MARGIN = 10.0  # seconds of a run's time limit kept for queueing the URLs it found
ACCEPT_XML = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "#")


# --- parsing ----------------------------------------------------------------------------------------

def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _gunzip(data: bytes, limit: int) -> bytes:
    # Bounded: a small .gz can inflate to gigabytes.
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = z.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt gzip data: {exc}") from None
    if len(out) > limit or z.unconsumed_tail:
        raise TooLargeError(f"gzipped sitemap inflates past {limit} bytes")
    return out


def _root(data: bytes, base_url: str | None = None, limit: int = MAX_XML_BYTES):
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, limit)
    # A stray newline before "<?xml" makes the declaration illegal; servers send one often enough.
    if data[:1].isspace():
        data = data.lstrip()
    try:
        root = etree.fromstring(data, parser=_PARSER, base_url=base_url)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root is None:
        raise ValueError("not an XML document")
    return root


def _text(node) -> str:
    return (node.text or "").strip()


@dataclass
class Sitemap:
    pages: list[str] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)  # (URL, lastmod or "")


def _sitemap_of(root) -> Sitemap:
    out = Sitemap()
    for node in root:
        kind = _local(node.tag)
        loc = lastmod = ""
        for child in node:
            name = _local(child.tag)
            if name == "loc":
                loc = _text(child)
            elif name == "lastmod":
                lastmod = _text(child)
        if not loc:
            continue
        if kind == "sitemap":
            out.children.append((loc, lastmod))
        elif kind == "url":
            out.pages.append(loc)
    return out


def sitemap_entries(data: bytes) -> Sitemap:
    """Page URLs and child sitemaps (with their lastmod) of a urlset, news sitemap or index, plain or gzip."""
    return _sitemap_of(_root(data))


def parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index."""
    found = sitemap_entries(data)
    return found.pages, [url for url, _ in found.children]


def _feed_links(root, base_url: str | None) -> list[str]:
    links: list[str] = []
    for node in root.iter():
        kind = _local(node.tag)
        if kind not in ("item", "entry"):
            continue
        href = _entry_link(node)
        if href:
            # xml:base on the entry or its parents, else the feed's own URL, resolves relative links.
            base = node.base or base_url
            links.append(urljoin(base, href) if base else href)
    return list(dict.fromkeys(links))


def _entry_link(node) -> str | None:
    fallback = None
    for child in node:
        name = _local(child.tag)
        if name == "link":
            href = (child.get("href") or _text(child)).strip()
            rel = child.get("rel", "alternate")
            if href and rel == "alternate":
                if child.get("type", "text/html") in ("text/html", "application/xhtml+xml"):
                    return href
                fallback = fallback or href
        elif name == "guid" and fallback is None:
            # RSS 2.0: a guid is the item's permalink unless it says isPermaLink="false".
            if child.get("isPermaLink", "true").lower() != "false" and _text(child).startswith(("http://", "https://")):
                fallback = _text(child)
    return fallback


def parse_feed(data: bytes, base_url: str | None = None) -> list[str]:
    """Item links of an RSS 0.9x/1.0/2.0 or Atom feed, in feed order, relative ones resolved."""
    return _feed_links(_root(data, base_url), base_url)


def parse_listing(html: bytes | str, base_url: str, selector: str) -> list[str]:
    """Links a CSS selector picks on a listing page: an <a href> it matches, or the link inside
    (or around) an element it matches, resolved against the page's <base> or its URL."""
    soup = BeautifulSoup(html, "lxml")
    base_tag = soup.find("base", href=True)
    base = urljoin(base_url, base_tag["href"]) if base_tag else base_url
    links: list[str] = []
    for element in soup.select(selector):
        anchor = element if element.name == "a" and element.get("href") else (
            element.find("a", href=True) or element.find_parent("a", href=True))
        if anchor is None:
            continue
        href = str(anchor["href"]).strip()
        if href and not href.lower().startswith(_SKIP_SCHEMES):
            links.append(urljoin(base, href))
    return list(dict.fromkeys(links))


def _xml_links(body: bytes, url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(article URLs, child sitemaps) of whatever XML a start point serves: search engines accept a
    feed as a sitemap, and sites mix the two up, so the document's root decides, not the config."""
    root = _root(body, url)
    kind = _local(root.tag)
    if kind in ("urlset", "sitemapindex"):
        found = _sitemap_of(root)
        return [urljoin(url, p) for p in found.pages], [(urljoin(url, c), m) for c, m in found.children]
    if kind in ("rss", "rdf", "feed", "channel"):
        return _feed_links(root, url), []
    raise ValueError(f"not a feed or sitemap (its root element is <{kind or '?'}>)")


# --- fetching ---------------------------------------------------------------------------------------

def _status_error(got: Download) -> IngestError:
    if got.status == 429 or got.status >= 500:
        return ServerError(f"HTTP {got.status}", status=got.status)
    return HTTPStatusError(f"HTTP {got.status}", status=got.status)


class _Run:
    """One discovery run of one source: the fetcher, the source's host policy, and a deadline."""

    def __init__(self, source: Source, rt: Runtime, fetcher: Fetcher, policy: HostPolicy, budget: float) -> None:
        self.source, self.rt, self.f, self.policy = source, rt, fetcher, policy
        self.deadline = time.monotonic() + budget
        self.budget = budget
        self.fresh: list[tuple[str, Page]] = []  # validators to keep once the URLs are queued
        self.not_modified = 0

    def get(self, url: str, accept: str, *, conditional: bool = True) -> bytes | None:
        """The body at ``url``, or None if it is unchanged since the last run (304)."""
        s = self.rt.settings
        rules = self.f.robots.rules_for(url) if s.robots_obey else None
        if rules is not None and not rules.allowed(url):
            raise RobotsDisallowedError(f"robots.txt of {origin_of(url)} disallows it to {rules.agent}")
        interval = self.policy.interval(rules.crawl_delay if rules else None, s.max_crawl_delay)
        known = self.f.validators.get(url) if conditional else None
        headers = {"Accept": accept, **(known.headers() if known else {})}
        token = uuid.uuid4().hex
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining < 1.0:
                raise IngestError(f"not fetched: the run's {self.budget:g}s budget ran out")
            # Each fetch ends by the run's deadline, so the whole run ends inside the task's time limit.
            limits = dataclasses.replace(self.f.limits, total_timeout=min(self.f.limits.total_timeout, remaining))
            try:
                with self.f.limiter.slot(host_key(url), self.policy, interval=interval, token=token):
                    got = download(url, self.f.client, limits, headers=headers, max_bytes=MAX_XML_BYTES)
                break
            except HostBusyError as exc:
                wait = exc.retry_after or 1.0
                if time.monotonic() + wait > self.deadline:
                    raise
                time.sleep(wait)
        if got.status == 304 and known is not None:
            self.not_modified += 1
            return None
        if not 200 <= got.status < 300:
            raise _status_error(got)
        if conditional and (got.headers.get("etag") or got.headers.get("last-modified")):
            media, _ = media_type(got.headers)
            self.fresh.append((url, Page(url=url, final_url=got.final_url, status=got.status,
                                         content_type=media or "application/octet-stream",
                                         etag=got.headers.get("etag"),
                                         last_modified=got.headers.get("last-modified"))))
        return got.body

    def xml(self, url: str, depth: int = 0, visited: set[str] | None = None) -> list[str]:
        visited = visited if visited is not None else set()
        visited.add(url)
        mark = len(self.fresh)
        body = self.get(url, ACCEPT_XML)
        if body is None:
            return []
        pages, children = _xml_links(body, url)
        if children:
            # An index is read in full every run: its children change without it changing, and
            # they, not it, are asked "changed since?".
            del self.fresh[mark:]
            if depth >= MAX_SITEMAP_DEPTH:
                raise ValueError(f"sitemap indexes nested deeper than {MAX_SITEMAP_DEPTH}")
            newest = sorted(children, key=lambda c: c[1], reverse=True)[:MAX_CHILD_SITEMAPS]
            for child, _ in newest:
                if child in visited or time.monotonic() > self.deadline:
                    continue
                pages.extend(self.xml(child, depth + 1, visited))
        return pages

    def listing(self, url: str, selector: str) -> list[str]:
        body = self.get(url, ACCEPT_HTML)
        return [] if body is None else parse_listing(body, url, selector)


def _stored(storage: Storage, canonical_urls: list[str]) -> set[str]:
    """Which of these canonical URLs already have a record."""
    found: set[str] = set()
    with storage.engine.connect() as conn:
        for i in range(0, len(canonical_urls), 500):
            chunk = canonical_urls[i:i + 500]
            found.update(conn.execute(select(records.c.canonical_url)
                                      .where(records.c.canonical_url.in_(chunk))).scalars())
    return found


def select_new(urls: Iterable[str], redis_client: redis.Redis, storage: Storage,
               window: int | None = None) -> list[str]:
    """The URLs to queue: valid, not seen in the seen-URL window (claimed now, atomically, so two
    runs never both queue one), and not already stored (a page ingested long ago stays out)."""
    seen = SeenURLs(redis_client) if window is None else SeenURLs(redis_client, window)
    by_canonical: dict[str, str] = {}
    for url in urls:
        try:
            by_canonical.setdefault(canonicalize_url(url), url)
        except InvalidURLError:
            continue
    claimed = {c: u for c, u in by_canonical.items() if seen.claim(u)}
    stored = _stored(storage, list(claimed))
    return [u for c, u in claimed.items() if c not in stored]


def run_budget(s: Settings) -> float:
    """Seconds one run may spend fetching: the task's soft time limit (3/4 of the visibility
    timeout) less a margin for queueing what it found."""
    return max(5.0, s.visibility_timeout * 0.75 - RUN_MARGIN)


def discover_source(source: Source, rt: Runtime, fetcher: Fetcher | None = None) -> RunReport:
    """Poll every start point of ``source`` and queue the new article URLs; a RunReport says what
    happened. A start point that fails is reported and skipped; the others still count."""
    s = rt.settings
    started = time.time()
    run = _Run(source, rt, fetcher or fetcher_for(rt), host_policy(s, source.politeness), budget=run_budget(s))
    report = RunReport(started=started, finished=started)
    found: list[str] = []
    for kind, url, selector in source.start_points():
        if time.monotonic() > run.deadline:
            report.errors.append(f"{kind} {url}: not polled, the run's {run.budget:g}s budget ran out")
            continue
        try:
            found.extend(run.listing(url, selector or "a[href]") if kind == "listing" else run.xml(url))
        except IngestError as exc:
            report.errors.append(f"{kind} {url}: {exc.reason}")
        except ValueError as exc:
            report.errors.append(f"{kind} {url}: {exc}")
    unique = list(dict.fromkeys(found))
    if len(unique) > MAX_URLS_PER_RUN:
        report.errors.append(f"{len(unique)} URLs listed; only the first {MAX_URLS_PER_RUN} taken this run")
        unique = unique[:MAX_URLS_PER_RUN]
    new = select_new(unique, rt.redis, rt.storage, rt.settings.seen_url_window)
    if new:
        try:
            submit(rt.storage, new, source.key, Priority.SCHEDULED)
        except Exception:
            # Unclaim them, or the seen-URL window would keep them out of every later run.
            seen = SeenURLs(rt.redis, rt.settings.seen_url_window)
            for url in new:
                seen.forget(url)
            raise
    # Only now: had queueing failed, the next run must see these start points as changed.
    for url, page in run.fresh:
        run.f.validators.put(url, page)
    report.found, report.new, report.not_modified = len(unique), len(new), run.not_modified
    report.finished = time.time()
    return report


# --- the tasks ----------------------------------------------------------------------------------------

def poll_due(rt: Runtime, send: Callable[..., Any]) -> list[Claim]:
    """One beat tick: sync the sources file if it changed, claim the due sources, send their runs."""
    registry = Registry(rt.redis)
    if rt.settings.sources is not None:
        registry.sync_file(rt.settings.sources)
    claims = registry.claim_due()
    for claim in claims:
        # A run message older than the source's interval is superseded by the next slot's.
        every = max(60.0, (claim.next_run - claim.slot) / 1000)
        send("gleaner.discover", args=[claim.key], kwargs={"slot": claim.slot},
             priority=DISCOVERY_PRIORITY, expires=every)
    return claims


def run_source(key: str, slot: int | None, rt: Runtime) -> RunReport | None:
    """Run one claimed slot of a source, unless it is gone, paused, already run, or still running."""
    registry = Registry(rt.redis)
    entry = registry.get(key)
    if entry is None:
        log.info("source %s was removed; its run is dropped", key)
        return None
    if key in registry.paused():
        log.info("source %s was paused; its run is dropped", key)
        return None
    if slot is not None and not registry.begin_run(key, slot):
        log.warning("source %s: slot %s already ran; duplicate run dropped", key, slot)
        return None
    # Past the visibility timeout the message itself would be redelivered: hold no longer than that.
    running = rt.redis.lock(keys.source_running(key), timeout=rt.settings.visibility_timeout, blocking=False)
    if not running.acquire():
        registry.record_skip(key, f"slot {slot} skipped: the previous run was still going")
        log.warning("source %s: previous run still going; this one skipped", key)
        return None
    try:
        report = discover_source(entry.source, rt)
    except Exception as exc:  # noqa: BLE001 - a crash must end up in the source's last_error
        log.exception("source %s: discovery crashed", key)
        now = time.time()
        report = RunReport(started=now, finished=now, errors=[f"internal error: {type(exc).__name__}: {exc}"])
    finally:
        try:
            running.release()
        except redis.exceptions.LockError:
            log.warning("source %s: the run outlived its %ss hold", key, rt.settings.visibility_timeout)
    registry.record_run(key, report)
    log.info("source %s: %d URLs listed, %d new%s", key, report.found, report.new,
             f"; errors: {'; '.join(report.errors)}" if report.errors else "")
    return report


@app.task(name="gleaner.poll_sources", ignore_result=True)
def poll_sources(**_: Any) -> int:
    # **_ lets a newer beat add arguments without breaking older workers mid-deploy.
    return len(poll_due(get_runtime(), app.send_task))


@app.task(name="gleaner.discover", ignore_result=True)
def discover(key: str, slot: int | None = None, **_: Any) -> None:
    run_source(key, slot, get_runtime())
