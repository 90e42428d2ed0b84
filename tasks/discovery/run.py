"""Discovery runs: a source's start points fetched through the fetch policy (robots.txt, host
limits, conditional requests: tasks/fetching/policy.py), and the new article URLs handed to the
caller's ``enqueue`` at scheduled priority; and beat's tick, which claims the due sources.

The Celery tasks around these (``gleaner.poll_sources``, ``gleaner.discover``) are in
worker/celery_tasks.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from sqlalchemy import select

from tasks.discovery.feeds import MAX_XML_BYTES, parse_listing, xml_links
from tasks.discovery.seen import SeenURLs
from tasks.discovery.warcdir import read_folder
from tasks.fetching.download import media_type
from tasks.fetching.pages import ACCEPT_HTML
from tasks.urlnorm import canonicalize_url
from worker import keys
from worker.errors import IngestError, InvalidURLError
from worker.feed import Feeder
from worker.models import Page
from worker.queues import Priority
from worker.registry import Claim, Registry, RunReport
from worker.runtime import Runtime
from worker.settings import Settings
from worker.sources import Source
from worker.storage import Storage, records

log = logging.getLogger("gleaner.discover")

__all__ = ["DISCOVERY_PRIORITY", "Enqueue", "discover_source", "poll_due", "run_source", "select_new"]

MAX_URLS_PER_RUN = 10_000  # article URLs taken from one run of one source; the rest wait for the next
MAX_CHILD_SITEMAPS = 20  # child sitemaps of an index read per run, the most recently modified first
MAX_SITEMAP_DEPTH = 2  # an index of indexes at most (the protocol allows none; some sites nest one)
# Between manual (0) and scheduled (6) work: a crawl backlog must not hold back the polls that feed it.
DISCOVERY_PRIORITY = 3
RUN_MARGIN = 10.0  # seconds of a run's time limit kept for queueing the URLs it found
ACCEPT_XML = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"

# Queues article URLs for ingestion: (urls, the source's key, priority) -> anything.
Enqueue = Callable[[Sequence[str], str, Priority], Any]


class _Run:
    """One discovery run of one source: the fetch policy, the source's politeness, and a deadline."""

    def __init__(self, source: Source, rt: Runtime, budget: float) -> None:
        self.source, self.policy = source, rt.fetcher
        self.deadline = time.monotonic() + budget
        self.budget = budget
        self.fresh: list[tuple[str, Page]] = []  # validators to keep once the URLs are queued
        self.not_modified = 0

    def get(self, url: str, accept: str, *, conditional: bool = True) -> bytes | None:
        """The body at ``url``, or None if it is unchanged since the last run (304). Waits for the
        host's turn within the run's deadline, so the whole run ends inside the task's time limit."""
        known = self.policy.validators.get(url) if conditional else None
        got = self.policy.get(url, accept=accept, politeness=self.source.politeness, validators=known,
                              max_bytes=MAX_XML_BYTES, deadline=self.deadline)
        if got is None:
            self.not_modified += 1
            return None
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
        pages, children = xml_links(body, url)
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

    def listing(self, url: str, selector: str | None) -> list[str]:
        body = self.get(url, ACCEPT_HTML)
        return [] if body is None else parse_listing(body, url, selector or "a[href]")


# How a run reads each kind of start point a Source lists (``Source.start_points``): a new kind of
# source is a field on Source (worker/sources.py) and its reader here.
READERS: dict[str, Callable[[_Run, str, str | None], list[str]]] = {
    "feed": lambda run, url, _selector: run.xml(url),
    "sitemap": lambda run, url, _selector: run.xml(url),
    "listing": lambda run, url, selector: run.listing(url, selector),
}


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


def discover_source(source: Source, rt: Runtime, enqueue: Enqueue) -> RunReport:
    """Poll every start point of ``source`` and ``enqueue`` the new article URLs; a RunReport says
    what happened. A start point that fails is reported and skipped; the others still count."""
    s = rt.settings
    started = time.time()
    run = _Run(source, rt, budget=run_budget(s))
    report = RunReport(started=started, finished=started)
    found: list[str] = []
    for kind, url, selector in source.start_points():
        if time.monotonic() > run.deadline:
            report.errors.append(f"{kind} {url}: not polled, the run's {run.budget:g}s budget ran out")
            continue
        try:
            found.extend(READERS[kind](run, url, selector))
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
            enqueue(new, source.key, Priority.SCHEDULED)
        except Exception:
            # Unclaim them, or the seen-URL window would keep them out of every later run.
            seen = SeenURLs(rt.redis, rt.settings.seen_url_window)
            for url in new:
                seen.forget(url)
            raise
    # Only now: had queueing failed, the next run must see these start points as changed.
    for url, page in run.fresh:
        run.policy.validators.put(url, page)
    report.found, report.new, report.not_modified = len(unique), len(new), run.not_modified
    report.finished = time.time()
    return report


# --- beat's tick and one run -------------------------------------------------------------------------

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


def run_source(key: str, slot: int | None, rt: Runtime, enqueue: Enqueue,
               make_feeder: Callable[[], Feeder] | None = None) -> RunReport | None:
    """Run one claimed slot of a source, unless it is gone, paused, already run, or still running.
    A feed, sitemap or listing source hands the new URLs to ``enqueue``; a warc source (its folder's
    new records) feeds its pages into parse through a ``make_feeder()``."""
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
        if entry.source.warc is None:
            report = discover_source(entry.source, rt, enqueue)
        elif make_feeder is None:
            raise RuntimeError("a warc source needs a feeder, and this caller gave none")
        else:
            report = read_folder(entry.source, rt, make_feeder(), time.monotonic() + run_budget(rt.settings))
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
    tally = (f"{report.found} records read, {report.new} pages fed, {sum(report.skipped.values())} skipped"
             if entry.source.warc is not None else f"{report.found} URLs listed, {report.new} new")
    log.info("source %s: %s%s", key, tally, f"; errors: {'; '.join(report.errors)}" if report.errors else "")
    return report
