"""One bounded HTTP GET: a total deadline, size caps while streaming, redirects checked hop by hop.

Shared by the article fetch (tasks.fetch) and the robots.txt fetch (tasks.fetching.robots). Redirects are
followed here rather than by httpx, so every hop's URL is checked (scheme, loops, count) and its
host passes the address guard again when its connection opens (tasks.fetching.netguard).
"""

from __future__ import annotations

import email.utils
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin

import httpx

from tasks.fetching import netguard
from tasks.urlnorm import check_url
from worker.errors import ContentTypeError, InvalidURLError, NetworkError, RedirectError, TooLargeError
from worker.models import Redirect
from worker.settings import Settings

CHUNK_BYTES = 65536
REDIRECT_STATUSES = (301, 302, 303, 307, 308)  # 300 and 305 are not followed; 304 is an answer


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 20.0  # seconds between two bytes
    total_timeout: float = 60.0  # seconds for the whole fetch, redirects included
    max_bytes: int = 10 * 1024 * 1024  # raw and decompressed, each
    max_redirects: int = 10
    user_agent: str = "GleanerBot/0.1 (+operator unset)"

    @classmethod
    def from_settings(cls, s: Settings) -> FetchLimits:
        return cls(s.connect_timeout, s.read_timeout, s.total_timeout, s.max_body_bytes, s.max_redirects,
                   user_agent(s))


def user_agent(s: Settings) -> str:
    """The User-Agent with the operator named in it, so a site owner knows whom to write to."""
    return s.user_agent.replace("{operator}", s.operator.strip() or "operator unset")


@dataclass
class Download:
    """The last response of a GET. ``body`` is empty unless the status was 2xx.

    ``body`` is decoded (its Content-Encoding undone); ``raw`` is the same body as it came over
    the wire, for the archive (tasks/archive/), with the request that fetched it."""

    url: str
    final_url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""
    redirects: list[Redirect] = field(default_factory=list)
    raw: bytes = b""
    reason: str = ""  # the status line's reason phrase
    http_version: str = "HTTP/1.1"
    request_headers: httpx.Headers = field(default_factory=httpx.Headers)  # as sent, on the last hop
    requested_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))  # when the last hop was sent


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def media_type(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The Content-Type's media type (lower case) and its charset parameter, if any."""
    media, _, params = headers.get("content-type", "").partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("'\"")
    return media.strip().lower(), charset


class _Decoder:
    """Content-Encoding decoding that stops at a size cap, so a compression bomb is never inflated."""

    def __init__(self, encoding: str, limit: int, *, truncate: bool = False) -> None:
        self.limit = limit
        self.truncate = truncate  # past the cap: keep what fits and report ``full`` instead of raising
        self.full = False
        self.size = 0
        encoding = encoding.strip().lower()
        self.identity = encoding in ("", "identity")  # what is received is the body itself
        self._may_be_raw_deflate = encoding == "deflate"
        if self.identity:
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
                if self._may_be_raw_deflate and self.size == 0:
                    # Some servers label raw deflate (no zlib header) as "deflate"; read it as such.
                    self._may_be_raw_deflate = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    return self.feed(chunk)
                raise NetworkError(f"corrupt compressed body: {exc}") from exc
            self._may_be_raw_deflate = False
            if self._z.unconsumed_tail and not self.truncate:
                raise TooLargeError(f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        if self.size + len(out) > self.limit:
            if not self.truncate:
                raise TooLargeError(f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
            out = out[: self.limit - self.size]
            self.full = True
        self.size += len(out)
        return out


def _too_slow(url: str, limits: FetchLimits) -> TooLargeError:
    return TooLargeError(f"too slow: {url} not fetched within {limits.total_timeout:g}s (trickling or endless)")


def _read_body(response: httpx.Response, url: str, limits: FetchLimits, max_bytes: int,
               truncate: bool) -> tuple[bytes, bytes]:
    """The body decoded, and as received (the same object when it was not compressed)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes and not truncate:
        raise TooLargeError(f"body of {int(declared)} bytes exceeds the {max_bytes}-byte cap")
    decoder = _Decoder(response.headers.get("content-encoding", ""), max_bytes, truncate=truncate)
    received = 0
    parts: list[bytes] = []
    raw: list[bytes] = []
    for chunk in response.iter_raw(chunk_size=CHUNK_BYTES):
        received += len(chunk)
        if not decoder.identity:
            raw.append(chunk)
        if received > max_bytes and not truncate:
            # Leaving the with-block closes the connection: the rest is never read.
            raise TooLargeError(f"body exceeds the {max_bytes}-byte cap")
        parts.append(decoder.feed(chunk))
        if decoder.full or received > max_bytes:
            break
        if netguard.past_deadline():
            raise _too_slow(url, limits)
    body = b"".join(parts)
    return body, (body if decoder.identity else b"".join(raw))


ResponseCheck = Callable[[httpx.Response], None]


def download(url: str, client: httpx.Client, limits: FetchLimits, *, headers: Mapping[str, str] | None = None,
             check: ResponseCheck | None = None, max_bytes: int | None = None,
             max_redirects: int | None = None, truncate: bool = False) -> Download:
    """GET ``url``, following redirects ourselves, and read a 2xx body within the caps.

    ``check`` sees a 2xx response before its body is read and may raise to refuse it (a PDF where
    HTML was wanted is never downloaded). Other statuses come back with an empty body for the
    caller to judge. ``truncate`` keeps the first ``max_bytes`` of a longer body instead of
    refusing it. Raises NetworkError (retryable), or a PermanentError subclass.
    """
    url = check_url(url)
    max_bytes = limits.max_bytes if max_bytes is None else max_bytes
    max_redirects = limits.max_redirects if max_redirects is None else max_redirects
    deadline = time.monotonic() + limits.total_timeout
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    sent = {"User-Agent": limits.user_agent, "Accept-Encoding": "gzip, deflate", **(headers or {})}
    redirects: list[Redirect] = []
    visited = {url}
    current = url
    try:
        with netguard.deadline(deadline):
            while True:
                requested_at = datetime.now(timezone.utc)
                with client.stream("GET", current, headers=sent, timeout=timeout) as response:
                    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                        current = _next_hop(current, response, redirects, visited, max_redirects, url)
                        continue
                    result = Download(url=url, final_url=str(response.url), status=response.status_code,
                                      headers=response.headers, redirects=redirects,
                                      reason=response.reason_phrase, http_version=response.http_version,
                                      request_headers=response.request.headers, requested_at=requested_at)
                    if 200 <= response.status_code < 300:
                        if check is not None:
                            check(response)
                        result.body, result.raw = _read_body(response, current, limits, max_bytes, truncate)
                    return result
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise InvalidURLError(f"malformed URL {current!r}: {exc}") from exc
    except httpx.TimeoutException as exc:
        if time.monotonic() >= deadline:
            raise _too_slow(current, limits) from exc
        raise NetworkError(f"timed out fetching {current}: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"network error fetching {current}: {type(exc).__name__}: {exc}") from exc


def _next_hop(current: str, response: httpx.Response, redirects: list[Redirect], visited: set[str],
              max_redirects: int, start: str) -> str:
    target = urljoin(current, response.headers["location"].strip())
    redirects.append(Redirect(url=current, status=response.status_code))
    if target in visited:
        chain = " -> ".join([r.url for r in redirects] + [target])
        raise RedirectError(f"redirect loop: {chain}")
    if len(redirects) > max_redirects:
        raise RedirectError(f"more than {max_redirects} redirects from {start}")
    try:
        target = check_url(target)
    except InvalidURLError as exc:
        raise RedirectError(f"redirect to a refused URL: {exc}") from exc
    visited.add(target)
    return target
