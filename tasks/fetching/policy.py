"""The one fetch policy: robots.txt, the crawl delay, the host's turn and slot, the download, and
what its status means. The fetch stage (article pages) and discovery (feeds, sitemaps, listing
pages) both fetch through ``FetchPolicy.get``, so they obey the same rules and fail alike.

The policy holds this process's HTTP client (one connection pool, opened through the
private-address guard) and the Redis-backed state every worker shares: robots.txt, the per-host
limits and the validators for conditional requests.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
import redis

from tasks.fetching.download import Download, FetchLimits, ResponseCheck, download, parse_retry_after
from tasks.fetching.hostlimit import HostLimiter, HostPolicy, host_key
from tasks.fetching.netguard import AddressGuard, GuardedTransport
from tasks.fetching.robots import RobotsCache, origin_of
from tasks.fetching.validators import Validators, ValidatorStore
from tasks.urlnorm import check_url
from worker.errors import HostBusyError, HTTPStatusError, IngestError, RobotsDisallowedError, ServerError
from worker.settings import Settings
from worker.sources import Politeness

# 408/425/429 and server errors may pass; 501 and 505 say the server will never do it.
RETRYABLE_4XX = frozenset({408, 425, 429})
PERMANENT_5XX = frozenset({501, 505})
PAUSE_STATUSES = (429, 503)  # with a Retry-After, the whole host asked for a break
LAST_SECOND = 1.0  # seconds: with less of a deadline left, a fetch is not started


def status_error(got: Download) -> IngestError:
    """What a final status other than 2xx (or an unasked 304) means: retryable or permanent."""
    text = f"HTTP {got.status} {httpx.codes.get_reason_phrase(got.status)}".strip()
    if got.status in RETRYABLE_4XX or (got.status >= 500 and got.status not in PERMANENT_5XX):
        return ServerError(text, status=got.status, retry_after=parse_retry_after(got.headers.get("retry-after")))
    return HTTPStatusError(text, status=got.status)


def raise_for_status(got: Download) -> None:
    if not 200 <= got.status < 300:
        raise status_error(got)


def host_policy(settings: Settings, politeness: Politeness | None) -> HostPolicy:
    """A source's politeness overrides on top of the global host limits."""
    p = politeness or Politeness()
    return HostPolicy(rate=settings.host_rate if p.rate is None else p.rate,
                      concurrency=settings.host_concurrency if p.concurrency is None else p.concurrency)


def guarded_client(allow: Iterable[str]) -> httpx.Client:
    """An HTTP client whose every connection passes the private-address guard; redirects are
    followed by ``download``, hop by hop, so each hop is checked too."""
    return httpx.Client(transport=GuardedTransport(AddressGuard(list(allow))), follow_redirects=False)


class FetchPolicy:
    """robots.txt → crawl delay → the host's turn and slot → download → status. One per process."""

    def __init__(self, client: redis.Redis, settings: Settings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http or guarded_client(settings.allow_private_urls)
        self.limits = FetchLimits.from_settings(settings)
        self.robots = RobotsCache(client, self.http, self.limits, ttl=settings.robots_ttl,
                                  max_bytes=settings.robots_max_bytes)
        # A slot covers robots.txt plus the page; a worker that dies holding it frees it after this.
        self.limiter = HostLimiter(client, lease=2 * self.limits.total_timeout + 30,
                                   wait_inline=settings.host_wait_inline,
                                   busy_max_wait=min(settings.host_busy_max_wait, settings.retry_backoff_max))
        self.validators = ValidatorStore(client, settings.validators_ttl)

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, *, accept: str, politeness: Politeness | None = None, token: str | None = None,
            validators: Validators | None = None, check: ResponseCheck | None = None,
            max_bytes: int | None = None, deadline: float | None = None) -> Download | None:
        """GET ``url`` as the policy allows: the 2xx response, or None if ``validators`` were sent
        and the site answered 304 (unchanged).

        ``token`` names the caller across re-queues (the job id), so its turn at the host is kept.
        Without a ``deadline`` a host whose turn is far raises HostBusyError (come back later);
        with one (``time.monotonic()`` seconds), the caller waits for its turn until then and each
        fetch ends by it. Raises RobotsDisallowedError, the status's error (``status_error``:
        a 429 or 503 with Retry-After also pauses the whole host), or download's errors.
        """
        s = self.settings
        url = check_url(url)
        rules = self.robots.rules_for(url) if s.robots_obey else None
        if rules is not None and not rules.allowed(url):
            path = urlsplit(url).path or "/"
            raise RobotsDisallowedError(f"robots.txt of {origin_of(url)} disallows {path} to {rules.agent}")
        policy = host_policy(s, politeness)
        interval = policy.interval(rules.crawl_delay if rules else None, s.max_crawl_delay)
        headers = {"Accept": accept, **(validators.headers() if validators else {})}
        host, token = host_key(url), token or uuid.uuid4().hex
        while True:
            limits = self.limits
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining < LAST_SECOND:
                    raise IngestError(f"not fetched: its time ran out ({url})")
                limits = dataclasses.replace(limits, total_timeout=min(limits.total_timeout, remaining))
            try:
                with self.limiter.slot(host, policy, interval=interval, token=token):
                    got = download(url, self.http, limits, headers=headers, check=check, max_bytes=max_bytes)
                break
            except HostBusyError as exc:
                wait = exc.retry_after or LAST_SECOND
                if deadline is None or time.monotonic() + wait > deadline:
                    raise
                time.sleep(wait)
        if got.status == 304 and validators is not None:
            return None
        if not 200 <= got.status < 300:
            error = status_error(got)
            if got.status in PAUSE_STATUSES and isinstance(error, ServerError) and error.retry_after:
                self.limiter.pause(host, min(error.retry_after, s.retry_backoff_max))
            raise error
        return got
