"""Per-host politeness shared by every worker on every machine: a rate and a concurrency limit in Redis.

One Lua script decides atomically, on Redis's clock, whether a fetch may start now. The rate is
kept as turns: each caller takes the next free turn (``interval`` after the previous one) and
holds it across a re-queue, so a host with a long queue is served in order, not by lottery.
Concurrency is a set of leases that expire on their own if a worker dies holding one. A caller
whose turn is near sleeps for it; one whose turn is far raises HostBusyError, so the task comes
back later instead of blocking a worker thread.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from worker import keys
from worker.errors import HostBusyError

TICKET_GRACE_MS = 600_000  # a turn not taken within 10 minutes was abandoned (its task died or moved on)
POLL_S = 0.2  # seconds between looks while every concurrency slot is taken
FULL_RETRY_S = (1.0, 4.0)  # seconds; a re-queue waiting for a free slot comes back after a random delay in this range

_ACQUIRE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token, conc = ARGV[1], tonumber(ARGV[2])
local interval, lease, grace = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - grace)
local turn = tonumber(redis.call('ZSCORE', KEYS[2], token))
local nxt = tonumber(redis.call('HGET', KEYS[3], 'next') or '0')
if not turn then
  turn = math.max(now, nxt)
  if interval > 0 then
    nxt = turn + interval
    redis.call('HSET', KEYS[3], 'next', nxt)
  end
end
local pause = tonumber(redis.call('HGET', KEYS[3], 'pause') or '0')
local wait, why = turn - now, 1
if pause - now > wait then wait = pause - now end
if wait <= 0 and conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= conc then wait, why = 1, 2 end
end
local horizon = math.max(nxt, pause, now) - now + grace
redis.call('PEXPIRE', KEYS[3], horizon)
if wait > 0 then
  redis.call('ZADD', KEYS[2], turn, token)
  redis.call('PEXPIRE', KEYS[2], horizon)
  return {0, wait, why}
end
redis.call('ZREM', KEYS[2], token)
if conc > 0 then
  redis.call('ZADD', KEYS[1], now + lease, token)
  redis.call('PEXPIRE', KEYS[1], lease)
end
return {1, 0, 0}
"""

_PAUSE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'pause') or '0')
if untl > cur then redis.call('HSET', KEYS[1], 'pause', untl) end
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
redis.call('PEXPIRE', KEYS[1], math.max(nxt, untl, cur) - now + tonumber(ARGV[2]))
return untl
"""


def host_key(url: str) -> str:
    """The politeness unit: host name, plus the port when it is not the scheme's default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{host}:{parts.port}" if parts.port and parts.port != default else host


@dataclass(frozen=True)
class HostPolicy:
    """How hard one host may be fetched. Global defaults come from settings; a source may override."""

    rate: float = 1.0  # fetches started per second; 0 = unlimited
    concurrency: int = 2  # fetches in flight at once; 0 = unlimited

    def __post_init__(self) -> None:
        if self.rate < 0 or self.concurrency < 0:
            raise ValueError(f"host policy needs rate >= 0 and concurrency >= 0, got {self}")

    def interval(self, crawl_delay: float | None = None, max_crawl_delay: float = 60.0) -> float:
        """Seconds between two fetch starts: our rate or the site's Crawl-delay, whichever is slower."""
        ours = 1.0 / self.rate if self.rate > 0 else 0.0
        theirs = min(crawl_delay, max_crawl_delay) if crawl_delay else 0.0
        return max(ours, theirs)


class HostLimiter:
    def __init__(self, client: redis.Redis, *, lease: float, wait_inline: float, busy_max_wait: float) -> None:
        self.redis = client
        self.lease_ms = max(1, int(lease * 1000))  # a crashed worker's slot frees itself after this
        self.wait_inline = wait_inline
        self.busy_max_wait = busy_max_wait
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def try_acquire(self, host: str, token: str, policy: HostPolicy, interval: float) -> tuple[bool, float, bool]:
        """One attempt: (admitted, seconds to wait, waiting because every slot is taken)."""
        admitted, wait_ms, why = self._acquire(
            keys=[keys.host_slots(host), keys.host_tickets(host), keys.host_state(host)],
            args=[token, policy.concurrency, int(interval * 1000), self.lease_ms, TICKET_GRACE_MS],
        )
        return bool(admitted), wait_ms / 1000.0, why == 2

    def release(self, host: str, token: str) -> None:
        self.redis.zrem(keys.host_slots(host), token)

    def pause(self, host: str, seconds: float) -> None:
        """Start nothing on this host for a while (it answered 429 or 503 with Retry-After)."""
        if seconds > 0:
            self._pause(keys=[keys.host_state(host)], args=[int(seconds * 1000), TICKET_GRACE_MS])

    @contextlib.contextmanager
    def slot(self, host: str, policy: HostPolicy, *, interval: float | None = None,
             token: str | None = None) -> Iterator[None]:
        """Hold one of the host's fetch slots, in turn; sleep briefly for it or raise HostBusyError.

        ``token`` names the caller across re-queues (the job id), so its turn is kept.
        """
        if policy.rate == 0 and policy.concurrency == 0 and not interval:
            yield
            return
        token = token or uuid.uuid4().hex
        interval = policy.interval() if interval is None else interval
        budget = self.wait_inline
        while True:
            admitted, wait, full = self.try_acquire(host, token, policy, interval)
            if admitted:
                break
            pause = min(wait, POLL_S) if full else wait
            if pause > budget:
                retry_after = random.uniform(*FULL_RETRY_S) if full else wait
                retry_after = min(retry_after, self.busy_max_wait)
                what = "all its fetch slots are taken" if full else f"its next turn is in {wait:.1f}s"
                raise HostBusyError(f"host {host} is busy: {what}", retry_after=retry_after)
            time.sleep(pause)
            budget -= pause
        try:
            yield
        finally:
            self.release(host, token)
