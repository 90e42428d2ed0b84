"""Fetch stage: download one article page politely and within hard limits, and keep it in Redis for parse.

``fetch_page`` is the pure part: one URL, one guarded client, limits in, a Page and its body out
(or an error from worker/errors.py). ``fetch_job`` adds what spans workers and attempts: robots.txt,
the per-host rate and concurrency limit, conditional requests, and the retry tally.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
from celery import current_task

from tasks.attempts import FetchAttempts, countdown_cap, retry_delay
from tasks.fetching.download import FetchLimits, check_url, download, media_type, parse_retry_after, user_agent
from tasks.fetching.hostlimit import HostLimiter, HostPolicy, host_key
from tasks.fetching.netguard import AddressGuard, GuardedTransport
from tasks.fetching.robots import RobotsCache, origin_of
from tasks.urlnorm import canonicalize_url
from tasks.fetching.validators import Validators, ValidatorStore
from worker.errors import (
    AttemptsExhaustedError,
    ContentTypeError,
    HostBusyError,
    HTTPStatusError,
    PermanentError,
    RetryableError,
    RobotsDisallowedError,
    ServerError,
)
from worker.models import Page
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime
from worker.registry import host_policy_for
from worker.settings import Settings

__all__ = ["FetchLimits", "HostPolicy", "check_url", "fetch", "fetch_job", "fetch_page"]

HTML_TYPES = ("text/html", "application/xhtml+xml")
# 408/425/429 and server errors may pass; 501 and 505 say the server will never do it.
RETRYABLE_4XX = {408, 425, 429}
PERMANENT_5XX = {501, 505}
# The wrapper's own retry limit must never end a fetch: fetch_job keeps the real tally.
WRAPPER_RETRY_CEILING = 100_000
# A body that is plainly not a page, whatever its Content-Type says (or when it says nothing).
_MAGIC = ((b"%PDF-", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip file"))


def _refuse_non_html(response: httpx.Response) -> None:
    media, _ = media_type(response.headers)
    if media and media not in HTML_TYPES:
        raise ContentTypeError(f"not an HTML page: {media}")


def _sniff(body: bytes) -> None:
    head = body[:16].lstrip()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise ContentTypeError(f"not an HTML page: the body is {kind}")
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        raise ContentTypeError("not an HTML page: the body is a WebP image")


def _status_error(status: int, reason: str, headers: httpx.Headers) -> Exception:
    text = f"HTTP {status} {reason}".strip()
    if status in RETRYABLE_4XX or (status >= 500 and status not in PERMANENT_5XX):
        return ServerError(text, status=status, retry_after=parse_retry_after(headers.get("retry-after")))
    return HTTPStatusError(text, status=status)


def fetch_page(url: str, client: httpx.Client, limits: FetchLimits, *,
               validators: Validators | None = None) -> tuple[Page, bytes]:
    """Fetch an HTML page; with ``validators``, a Page of status 304 and no body if it is unchanged."""
    headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
    if validators is not None:
        headers.update(validators.headers())
    got = download(url, client, limits, headers=headers, check=_refuse_non_html)
    if got.status == 304 and validators is not None:
        return _page(got, None), b""
    if not 200 <= got.status < 300:
        raise _status_error(got.status, httpx.codes.get_reason_phrase(got.status), got.headers)
    _sniff(got.body)
    _, charset = media_type(got.headers)
    return _page(got, charset), got.body


def _page(got: Any, charset: str | None) -> Page:
    media, _ = media_type(got.headers)
    return Page(url=got.url, final_url=got.final_url, status=got.status, content_type=media or "text/html",
                charset=charset, redirects=got.redirects, etag=got.headers.get("etag"),
                last_modified=got.headers.get("last-modified"))


# --- per-process resources ----------------------------------------------------------------------

@functools.cache
def _client_for(pid: int, allow: tuple[str, ...]) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(AddressGuard(allow)), follow_redirects=False)


def client_for(settings: Settings) -> httpx.Client:
    # One client (and connection pool) per process, opened on first use after the fork.
    return _client_for(os.getpid(), tuple(settings.allow_private_urls))


@dataclass(frozen=True)
class Fetcher:
    """What fetch_job needs besides the job: the client and the Redis-backed politeness state."""

    client: httpx.Client
    limits: FetchLimits
    robots: RobotsCache
    limiter: HostLimiter
    validators: ValidatorStore


@functools.cache
def _fetcher_for(pid: int, client: redis.Redis, http: httpx.Client, limits: FetchLimits, robots_ttl: int,
                 robots_max_bytes: int, wait_inline: float, busy_max_wait: float, validators_ttl: int) -> Fetcher:
    return Fetcher(
        client=http,
        limits=limits,
        robots=RobotsCache(client, http, limits, ttl=robots_ttl, max_bytes=robots_max_bytes),
        # A slot covers robots.txt plus the page; a worker that dies holding it frees it after this.
        limiter=HostLimiter(client, lease=2 * limits.total_timeout + 30, wait_inline=wait_inline,
                            busy_max_wait=busy_max_wait),
        validators=ValidatorStore(client, validators_ttl),
    )


def fetcher_for(rt: Runtime) -> Fetcher:
    s = rt.settings
    return _fetcher_for(os.getpid(), rt.redis, client_for(s), FetchLimits.from_settings(s), s.robots_ttl,
                        s.robots_max_bytes, s.host_wait_inline, min(s.host_busy_max_wait, countdown_cap(s)),
                        s.validators_ttl)


def reset_fetchers() -> None:
    """Forget this process's fetchers and their robots.txt memory (after settings change, in tests)."""
    _fetcher_for.cache_clear()


def policy_for(s: Settings, source: str | None, overrides: Mapping[str, HostPolicy] | None) -> HostPolicy:
    """The source's own host policy if it has one (from the sources file), else the global one."""
    if overrides and source in overrides:
        return overrides[source]
    return HostPolicy(rate=s.host_rate, concurrency=s.host_concurrency)


# --- the stage ------------------------------------------------------------------------------------

def fetch_job(job: dict[str, Any], rt: Runtime, *, first_attempt: bool = False,
              overrides: Mapping[str, HostPolicy] | None = None) -> None:
    """Fetch one job's URL and hand it to parse, or end it at once on a 304.

    Raises HostBusyError (a delay), another RetryableError with ``retry_after`` set to the backoff
    (a failed attempt), or a PermanentError (AttemptsExhaustedError once the attempts are spent).
    """
    s = rt.settings
    f = fetcher_for(rt)
    url = check_url(job["url"])
    attempts = FetchAttempts(rt.redis, job["id"], ttl=s.page_ttl)
    # A URL sent again from the dead-letter store starts a fresh tally. Only a failure reads the
    # tally, so it is cleared there (and with the page on success), not in a round trip of its own.
    stale_tally = first_attempt
    host = host_key(url)
    cap = countdown_cap(s)
    try:
        rules = f.robots.rules_for(url) if s.robots_obey else None
        if rules is not None and not rules.allowed(url):
            path = urlsplit(url).path or "/"
            raise RobotsDisallowedError(f"robots.txt of {origin_of(url)} disallows {path} to {rules.agent}")
        policy = policy_for(s, job.get("category_id"), overrides)
        interval = policy.interval(rules.crawl_delay if rules else None, s.max_crawl_delay)
        known = f.validators.get(url)
        # Ask "changed since?" only if the record that answer would point at is still there.
        record = rt.storage.find_record_by_url(known.final_url, canonicalize_url(known.final_url)) if known else None
        with f.limiter.slot(host, policy, interval=interval, token=job["id"]):
            page, body = fetch_page(url, f.client, f.limits, validators=known if record else None)
    except HostBusyError as exc:
        if stale_tally:
            attempts.clear()
        waited = attempts.waited_for_host()
        if waited > s.host_busy_timeout:
            attempts.clear()
            raise AttemptsExhaustedError(f"{exc.reason} (still busy after waiting {waited:.0f}s)") from exc
        raise
    except RetryableError as exc:
        if exc.status in (429, 503) and exc.retry_after:
            f.limiter.pause(host, min(exc.retry_after, cap))  # the whole host asked for a break
        if stale_tally:
            attempts.clear()
        failed = attempts.failed()
        if failed > s.fetch_retries:
            attempts.clear()
            raise AttemptsExhaustedError(f"{exc.reason} (gave up after {failed} attempts)", status=exc.status) from exc
        exc.retry_after = retry_delay(failed, exc.retry_after, base=s.retry_backoff_base, cap=cap)
        raise
    except PermanentError:
        attempts.clear()
        raise
    if page.status == 304 and record is not None:
        attempts.clear()
        rt.storage.finish_job(job["id"], record_id=str(record.id),
                              duplicate_of=str(record.duplicate_of) if record.duplicate_of else None)
        return

    def remember(pipe: redis.client.Pipeline) -> None:
        attempts.clear(pipe)
        f.validators.put(url, page, pipe)

    rt.pages.defer(remember)  # with the page, in the stage's last round trip
    rt.pages.put_page(job["id"], page, body)
    send(Queue.PARSE, job)


@stage_task(Queue.FETCH, max_retries=WRAPPER_RETRY_CEILING, reads_source=True)
def fetch(job: dict[str, Any], rt: Runtime) -> None:
    request = current_task.request if current_task else None
    # A source's own politeness (sources.toml) overrides the global per-host limits for its URLs.
    policy = host_policy_for(rt.redis, rt.settings, job["category_id"])
    fetch_job(job, rt, first_attempt=bool(request) and not request.retries,
              overrides={job["category_id"]: policy} if policy else None)
