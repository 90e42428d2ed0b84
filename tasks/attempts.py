"""Fetch attempts per job, counted in Redis, and how long to wait before the next one.

Celery counts every re-queue as a retry, but a re-queue because the host was busy is not a failed
attempt. So the fetch stage keeps its own tally: failed attempts (network errors, 5xx, 429) spend
``fetch_retries``; waiting for a busy host spends time, bounded by ``host_busy_timeout``.
"""

from __future__ import annotations

import random
import time

import redis

from worker import keys
from worker.settings import Settings


def countdown_cap(s: Settings) -> float:
    """The longest countdown a retry may get: a quarter of the visibility timeout at most, since a
    message held for a countdown longer than that is handed out again by Redis and runs twice."""
    return max(0.0, min(s.retry_backoff_max, s.visibility_timeout / 4))


def retry_delay(attempt: int, retry_after: float | None, *, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry), never above ``cap``.

    The server's Retry-After wins when it gave one (a little later, never earlier, so clients told
    the same moment don't all return at once); otherwise exponential backoff with jitter: a
    random point in the upper half of ``base * 2**(attempt-1)``.
    """
    if retry_after is not None:
        delay = retry_after + random.uniform(0, min(1.0, 0.1 * retry_after))
    else:
        ceiling = base * 2.0 ** max(0, attempt - 1)
        delay = random.uniform(ceiling / 2, ceiling)
    return min(max(delay, 0.0), cap)


class FetchAttempts:
    """One job's tally in a Redis hash: ``failed`` attempts and ``busy_since`` (epoch seconds)."""

    def __init__(self, client: redis.Redis, job_id: str, ttl: int) -> None:
        self.redis = client
        self.key = keys.fetch_attempts(job_id)
        self.ttl = ttl

    def failed(self) -> int:
        """Count one more failed attempt; return how many so far."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key, "failed", 1)
        pipe.expire(self.key, self.ttl)
        return int(pipe.execute()[0])

    def waited_for_host(self, now: float | None = None) -> float:
        """Seconds since the host first kept this job waiting (0 the first time)."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline()
        pipe.hsetnx(self.key, "busy_since", now)
        pipe.hget(self.key, "busy_since")
        pipe.expire(self.key, self.ttl)
        _, since, _ = pipe.execute()
        return max(0.0, now - float(since))

    def clear(self, pipe: redis.client.Pipeline | None = None) -> None:
        """Start over: after an outcome, and when a URL is sent again from the dead-letter store.
        With ``pipe``, the delete is queued there for the caller to send."""
        (pipe if pipe is not None else self.redis).delete(self.key)
