"""Retries without countdowns: a job to retry later waits in a Redis sorted set, not in a
worker's unacknowledged prefetch.

A Celery countdown keeps the message reserved (unacked) by a worker until it is due; if that is
longer than Redis's visibility timeout the message is handed out again and runs twice, and if the
worker dies the wait starts over. Here the failed stage finishes (and is acked), the job's message
goes into ``gleaner:delayed`` scored by its due time, and every worker runs a small loop that sends
due messages back to their stage's queue. A due entry is leased (pushed a minute into the future)
before it is sent and removed after, so a worker dying between the two sends it again rather
than losing it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis

from worker import inflight, keys
from worker.job import Message

log = logging.getLogger("gleaner.delayed")

LEASE_SECONDS = 60.0  # a claimed entry comes due again after this if its sender died
POLL_SECONDS = 1.0

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], member) end
return due
"""

Sender = Callable[[Message], None]


def add_into(pipe: redis.client.Pipeline, message: Message, delay: float) -> None:
    """Queue onto ``pipe``: send ``message`` again after ``delay`` seconds."""
    # A fresh token per entry: the same job may be added again (by the task this loop just
    # sent) before the loop removes the entry it sent, and must not be removed with it.
    member = json.dumps({"stage": message.stage, "job": message.job_id, "fields": message.fields,
                         "token": uuid.uuid4().hex}, sort_keys=True)
    due = time.time() + max(0.0, delay)
    pipe.zadd(keys.delayed(), {member: due})
    # In the in-flight ledger as if sent when due, so the sweeper leaves it alone until then.
    inflight.mark_sent(pipe, message.job_id, message.stage, message.priority, due)


def _message(member: bytes | str) -> Message:
    entry = json.loads(member)
    # An entry written before messages carried the job's fields had its priority alone.
    fields = entry.get("fields") or {"priority": entry.get("priority", 0)}
    return Message(entry["stage"], entry["job"], fields)


class DelayedJobs:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.key = keys.delayed()
        self._claim = client.register_script(_CLAIM)

    def add(self, message: Message, delay: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        add_into(pipe, message, delay)
        pipe.execute()

    def pending(self) -> int:
        return int(self.redis.zcard(self.key))

    def release_due(self, send: Sender, *, limit: int = 200, now: float | None = None) -> int:
        """Send every due job to its stage; return how many were sent."""
        now = time.time() if now is None else now
        claimed = self._claim(keys=[self.key], args=[now, limit, now + LEASE_SECONDS])
        for member in claimed:
            send(_message(member))
            self.redis.zrem(self.key, member)
        return len(claimed)


class ReleaseLoop(threading.Thread):
    """Runs in each worker's main process; the claim is atomic, so many loops never double-send.

    Every ``sweep_every`` seconds it also calls ``sweep`` (the in-flight ledger's check for lost
    messages, which takes its own lock so one worker at a time does it).
    """

    def __init__(self, client: redis.Redis, send: Sender, interval: float = POLL_SECONDS, *,
                 sweep: Callable[[], object] | None = None, sweep_every: float = 30.0) -> None:
        super().__init__(name="gleaner-delayed", daemon=True)
        self.jobs = DelayedJobs(client)
        self.send = send
        self.interval = interval
        self.sweep = sweep
        self.sweep_every = sweep_every
        self.stopping = threading.Event()

    def run(self) -> None:
        next_sweep = time.monotonic() + self.sweep_every
        while not self.stopping.wait(self.interval):
            try:
                self.jobs.release_due(self.send)
                if self.sweep is not None and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_every
                    self.sweep()
            except redis.RedisError as exc:  # Redis restarting: try again next tick
                log.warning("could not release delayed jobs or sweep: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad tick
                log.exception("delayed-job loop tick failed")

    def stop(self) -> None:
        self.stopping.set()
