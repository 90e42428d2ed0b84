"""robots.txt: fetched once per site, cached in Redis for every worker, parsed with Protego.

What a site's answer means follows RFC 9309: a 2xx body is the rules; any other 4xx means there
are none (fetch anything); a 5xx, a 429 or a network failure means the site cannot say, so nothing
is fetched from it until it can (a retryable error, remembered briefly so workers don't hammer it).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import redis
from protego import Protego

from tasks.fetching.download import FetchLimits, download
from worker import keys
from worker.errors import NetworkError, RedirectError, RetryableError, ServerError

ROBOTS_REDIRECTS = 5  # RFC 9309: follow at least five; past that the file counts as absent
UNREACHABLE_TTL = 60  # seconds a site whose robots.txt failed is left alone before asking again
LOCAL_TTL = 30.0  # seconds a process keeps a parsed file before looking at Redis again
LOCK_POLL_S = 0.05  # seconds between looks while another worker fetches the file


def origin_of(url: str) -> str:
    """scheme://host[:port] — robots.txt rules apply to exactly one origin."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: 'GleanerBot' in 'GleanerBot/0.1 (...)'."""
    match = re.match(r"[A-Za-z0-9_-]+", user_agent.strip())
    return match.group(0) if match else "*"


@dataclass(frozen=True)
class RobotsRules:
    """One origin's rules for our agent; ``text`` None means everything is allowed."""

    agent: str
    text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", Protego.parse(self.text) if self.text else None)

    def allowed(self, url: str) -> bool:
        parsed = self._parsed  # type: ignore[attr-defined]
        return parsed is None or parsed.can_fetch(url, self.agent)

    @property
    def crawl_delay(self) -> float | None:
        """Seconds between requests the site asks for (Crawl-delay, or Request-rate read as one)."""
        parsed = self._parsed  # type: ignore[attr-defined]
        if parsed is None:
            return None
        delays = []
        if (delay := parsed.crawl_delay(self.agent)) is not None:
            delays.append(float(delay))
        if (rate := parsed.request_rate(self.agent)) is not None and rate.requests:
            delays.append(rate.seconds / rate.requests)
        return max(delays) if delays else None


class RobotsCache:
    """Looks up robots.txt rules: this process's memory, then Redis, then the site itself."""

    def __init__(self, client: redis.Redis, http: httpx.Client, limits: FetchLimits, *, ttl: int,
                 max_bytes: int) -> None:
        self.redis = client
        self.http = http
        self.limits = limits
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.agent = agent_token(limits.user_agent)
        self._local: dict[str, tuple[float, RobotsRules]] = {}
        self._lock = threading.Lock()

    def rules_for(self, url: str) -> RobotsRules:
        origin = origin_of(url)
        now = time.monotonic()
        with self._lock:
            hit = self._local.get(origin)
        if hit and hit[0] > now:
            return hit[1]
        rules = self._from_redis(origin)
        if rules is None:
            rules = self._fetch_once(origin)
        with self._lock:
            if len(self._local) > 10_000:  # a crawl over many sites: start over rather than grow
                self._local.clear()
            self._local[origin] = (now + min(LOCAL_TTL, self.ttl), rules)
        return rules

    def _from_redis(self, origin: str) -> RobotsRules | None:
        state, body, reason = self.redis.hmget(keys.robots(origin), ["state", "body", "reason"])
        if state is None:
            return None
        if state == b"unreachable":
            raise NetworkError(f"robots.txt of {origin} could not be read recently "
                               f"({(reason or b'').decode()}); waiting before fetching from it")
        return RobotsRules(self.agent, body.decode("utf-8", "replace") if state == b"rules" and body else None)

    def _fetch_once(self, origin: str) -> RobotsRules:
        """Fetch the file, unless another worker already is: then wait for its answer in Redis."""
        lock = keys.robots_lock(origin)
        hold = self.limits.total_timeout + 5
        token = uuid.uuid4().hex
        deadline = time.monotonic() + hold
        while not self.redis.set(lock, token, nx=True, px=int(hold * 1000)):
            time.sleep(LOCK_POLL_S)
            rules = self._from_redis(origin)
            if rules is not None:
                return rules
            if time.monotonic() > deadline:
                break  # the holder died without answering; its lock is about to expire anyway
        try:
            # Another worker may have fetched, answered and let go between our last look (before we
            # came here, or while waiting) and our taking the lock: look once more, holding it.
            rules = self._from_redis(origin)
            return rules if rules is not None else self._fetch(origin)
        finally:
            if self.redis.get(lock) == token.encode():
                self.redis.delete(lock)

    def _fetch(self, origin: str) -> RobotsRules:
        key = keys.robots(origin)
        try:
            got = download(f"{origin}/robots.txt", self.http, self.limits, max_bytes=self.max_bytes,
                           max_redirects=ROBOTS_REDIRECTS, truncate=True, headers={"Accept": "text/plain,*/*"})
        except RedirectError:
            got = None  # a redirect loop or chain too long: as if there were no file
        except RetryableError as exc:
            self._remember_unreachable(key, exc.reason)
            raise NetworkError(f"robots.txt of {origin} unreachable: {exc.reason}") from exc
        if got is not None and (got.status == 429 or got.status >= 500):
            reason = f"HTTP {got.status}"
            self._remember_unreachable(key, reason)
            raise ServerError(f"robots.txt of {origin} unreachable: {reason}", status=got.status)
        text = got.body.decode("utf-8", "replace") if got is not None and 200 <= got.status < 300 else None
        mapping = {"state": "rules", "body": text} if text else {"state": "none"}
        pipe = self.redis.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, self.ttl)
        pipe.execute()
        return RobotsRules(self.agent, text)

    def _remember_unreachable(self, key: str, reason: str) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping={"state": "unreachable", "reason": reason})
        pipe.expire(key, min(UNREACHABLE_TTL, self.ttl))
        pipe.execute()
