"""Fetch stage: download one article page within hard limits and keep it in Redis for parse."""

from __future__ import annotations

import email.utils
import functools
import os
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tasks.netguard import AddressGuard, GuardedTransport
from worker.errors import (
    ContentTypeError,
    HTTPStatusError,
    InvalidURLError,
    NetworkError,
    RedirectError,
    ServerError,
    TooLargeError,
)
from worker.models import Page, Redirect
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime
from worker.settings import Settings

HTML_TYPES = ("text/html", "application/xhtml+xml")
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 20.0  # seconds between two bytes
    total_timeout: float = 60.0  # seconds for the whole fetch
    max_bytes: int = 10 * 1024 * 1024  # raw and decompressed, each
    max_redirects: int = 10
    user_agent: str = "GleanerBot/0.1"

    @classmethod
    def from_settings(cls, s: Settings) -> FetchLimits:
        return cls(s.connect_timeout, s.read_timeout, s.total_timeout, s.max_body_bytes, s.max_redirects, s.user_agent)


def check_url(url: str) -> str:
    """Return the URL stripped, or raise InvalidURLError saying what is wrong with it."""
    url = url.strip()
    if not url:
        raise InvalidURLError("malformed URL: empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(f"malformed URL: longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidURLError(f"malformed URL {url!r}: contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {url!r}: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise InvalidURLError(f"refused scheme {shown!r} in {url!r}: only http and https are fetched")
    if not parts.hostname:
        raise InvalidURLError(f"malformed URL {url!r}: no host")
    return url


class _Decoder:
    """Content-Encoding decoding that stops at a size cap, so a compression bomb is never inflated."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._z = None
        elif encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise ContentTypeError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None:
            out = chunk
        else:
            try:
                # max_length bounds what one chunk may inflate to; past the cap we stop.
                out = self._z.decompress(chunk, self.limit - self.size + 1)
            except zlib.error as exc:
                raise NetworkError(f"corrupt compressed body: {exc}") from exc
            if self._z.unconsumed_tail:
                raise TooLargeError(f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        self.size += len(out)
        if self.size > self.limit:
            raise TooLargeError(f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        return out


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status in RETRYABLE_STATUS:
        raise ServerError(reason, status=status, retry_after=_retry_after(response.headers.get("retry-after")))
    raise HTTPStatusError(reason, status=status)


def _media_type(response: httpx.Response) -> tuple[str, str | None]:
    header = response.headers.get("content-type", "")
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("'\"")
    return media.strip().lower(), charset


def _read_body(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise TooLargeError(f"body of {int(declared)} bytes exceeds the {limits.max_bytes}-byte cap")
    decoder = _Decoder(response.headers.get("content-encoding", ""), limits.max_bytes)
    received = 0
    parts: list[bytes] = []
    for chunk in response.iter_raw(chunk_size=65536):
        received += len(chunk)
        if received > limits.max_bytes:
            raise TooLargeError(f"body exceeds the {limits.max_bytes}-byte cap")
        parts.append(decoder.feed(chunk))
        if time.monotonic() > deadline:
            raise TooLargeError(f"body still arriving after {limits.total_timeout:g}s (too slow or endless)")
    return b"".join(parts)


def fetch_page(url: str, client: httpx.Client, limits: FetchLimits) -> tuple[Page, bytes]:
    """Fetch an HTML page, following redirects ourselves so each hop is checked and recorded."""
    url = check_url(url)
    deadline = time.monotonic() + limits.total_timeout
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        "Accept-Encoding": "gzip, deflate",
    }
    redirects: list[Redirect] = []
    visited = {url}
    current = url
    try:
        while True:
            with client.stream("GET", current, headers=headers, timeout=timeout) as response:
                if response.is_redirect:
                    target = urljoin(current, response.headers["location"].strip())
                    redirects.append(Redirect(url=current, status=response.status_code))
                    if target in visited:
                        chain = " -> ".join([r.url for r in redirects] + [target])
                        raise RedirectError(f"redirect loop: {chain}")
                    if len(redirects) > limits.max_redirects:
                        raise RedirectError(f"more than {limits.max_redirects} redirects from {url}")
                    try:
                        current = check_url(target)
                    except InvalidURLError as exc:
                        raise RedirectError(f"redirect to a refused URL: {exc}") from exc
                    visited.add(current)
                    continue
                _check_status(response)
                media, charset = _media_type(response)
                if media and media not in HTML_TYPES:
                    raise ContentTypeError(f"not an HTML page: {media}")
                body = _read_body(response, limits, deadline)
                page = Page(
                    url=url,
                    final_url=str(response.url),
                    status=response.status_code,
                    content_type=media or "text/html",
                    charset=charset,
                    redirects=redirects,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
                return page, body
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise InvalidURLError(f"malformed URL {current!r}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise NetworkError(f"timed out fetching {current}: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"network error fetching {current}: {type(exc).__name__}: {exc}") from exc


@functools.cache
def _client_for(pid: int, allow: tuple[str, ...]) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(AddressGuard(allow)), follow_redirects=False)


def client_for(settings: Settings) -> httpx.Client:
    # One client (and connection pool) per process, opened on first use after the fork.
    return _client_for(os.getpid(), tuple(settings.allow_private_urls))


@stage_task(Queue.FETCH)
def fetch(job: dict[str, Any], rt: Runtime) -> None:
    page, body = fetch_page(job["url"], client_for(rt.settings), FetchLimits.from_settings(rt.settings))
    rt.pages.put_page(job["id"], page, body)
    send(Queue.PARSE, job["id"])
