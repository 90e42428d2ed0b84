"""Retries without countdowns: a job to retry later waits in a Redis sorted set, not in a
worker's unacknowledged prefetch.

A Celery countdown keeps the message reserved (unacked) by a worker until it is due; if that is
longer than Redis's visibility timeout the message is handed out again and runs twice, and if the
worker dies the wait starts over. Here the failed task finishes (and is acked), the job goes into
``gleaner:delayed`` scored by its due time, and every worker runs a small loop that sends due jobs
back to their stage's queue. A due entry is leased (pushed a minute into the future) before it is
sent and removed after, so a worker dying between the two sends it again rather than losing it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis

from worker import keys

log = logging.getLogger("gleaner.delayed")

LEASE_SECONDS = 60.0  # a claimed entry comes due again after this if its sender died
POLL_SECONDS = 1.0

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], member) end
return due
"""

Sender = Callable[[str, str, int, int], None]  # (stage, job_id, priority, retries)


class DelayedJobs:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.key = keys.delayed()
        self._claim = client.register_script(_CLAIM)

    def add(self, stage: str, job_id: str, *, priority: int, retries: int, delay: float) -> None:
        # A fresh token per entry: the same job may be added again (by the task this loop just
        # sent) before the loop removes the entry it sent, and must not be removed with it.
        member = json.dumps({"stage": stage, "job": job_id, "priority": priority, "retries": retries,
                             "token": uuid.uuid4().hex}, sort_keys=True)
        self.redis.zadd(self.key, {member: time.time() + max(0.0, delay)})

    def pending(self) -> int:
        return int(self.redis.zcard(self.key))

    def release_due(self, send: Sender, *, limit: int = 200, now: float | None = None) -> int:
        """Send every due job to its stage; return how many were sent."""
        now = time.time() if now is None else now
        claimed = self._claim(keys=[self.key], args=[now, limit, now + LEASE_SECONDS])
        for member in claimed:
            entry = json.loads(member)
            send(entry["stage"], entry["job"], entry["priority"], entry["retries"])
            self.redis.zrem(self.key, member)
        return len(claimed)


class ReleaseLoop(threading.Thread):
    """Runs in each worker's main process; the claim is atomic, so many loops never double-send."""

    def __init__(self, client: redis.Redis, send: Sender, interval: float = POLL_SECONDS) -> None:
        super().__init__(name="gleaner-delayed", daemon=True)
        self.jobs = DelayedJobs(client)
        self.send = send
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.jobs.release_due(self.send)
            except redis.RedisError as exc:  # Redis restarting: try again next tick
                log.warning("could not release delayed jobs: %s", exc)

    def stop(self) -> None:
        self.stopping.set()
