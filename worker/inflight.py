"""The in-flight ledger: where each unfinished job's message went, so a lost message is sent again.

kombu's Redis transport pops a message (BRPOP) and records it as unacknowledged with a second
command. A Redis restart or crash between the two loses the message and leaves no trace of it in
Redis: the job's row says "queued" forever and nothing would ever run it again. So every send is
written down first (``gleaner:inflight``: job -> stage, priority, time sent), each stage start
adds its start time and advances ``gleaner:consumed`` (per stage and priority step, the send time
of the newest message started there), and a terminal job is struck off.

The sweeper reads the ledger. Each queue is first-in first-out within a priority step, so a job
that has waited longer than the grace period, and whose queue has already started a message sent
after its own (or is empty), was lost. A job that started but has not moved on for the grace
period was lost too (a killed worker's task is back from kombu's restore well before then).
Both are sent again. A spare copy costs one stage run, because every stage is idempotent; a lost
job costs a URL, so the sweeper errs toward sending.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass

import redis

from worker import keys
from worker.queues import Priority, broker_key

log = logging.getLogger("gleaner.inflight")

ORDER_SLACK = 5.0  # seconds: producers on several machines stamp sends with slightly different clocks
Sender = Callable[[str, str, int], None]  # (stage, job_id, priority)


def step(priority: int) -> int:
    """The priority step kombu files a message under (the same rule as its transport)."""
    steps = Priority.steps()
    return steps[max(0, bisect(steps, priority) - 1)]


def broker_list(stage: str, priority: int) -> str:
    """The Redis list holding a stage's messages of this priority."""
    return broker_key(stage, step(priority))


@dataclass(frozen=True)
class Entry:
    job_id: str
    stage: str
    priority: int
    sent: float
    started: float | None

    @classmethod
    def parse(cls, job_id: str, raw: str) -> Entry | None:
        try:
            stage, priority, sent, started = raw.split("|")
            return cls(job_id, stage, int(priority), float(sent), float(started) if started else None)
        except ValueError:
            return None

    def dump(self) -> str:
        return f"{self.stage}|{self.priority}|{self.sent!r}|{'' if self.started is None else repr(self.started)}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def mark_sent(pipe: redis.Redis, job_id: str, stage: str, priority: int, sent: float) -> None:
    """Write down a send (call before the message goes out, so a failed send is still noticed)."""
    pipe.hset(keys.inflight(), job_id, Entry(job_id, stage, priority, sent, None).dump())


def mark_started(pipe: redis.Redis, job_id: str, stage: str, priority: int, sent: float | None,
                 now: float | None = None) -> None:
    now = time.time() if now is None else now
    sent = now if sent is None else sent  # a message from a producer that did not stamp it
    pipe.hset(keys.inflight(), job_id, Entry(job_id, stage, priority, sent, now).dump())
    pipe.zadd(keys.consumed(), {f"{stage}:{step(priority)}": sent}, gt=True)


def strike(pipe: redis.Redis, job_id: str) -> None:
    """The job is finished (a record, a duplicate link or a dead letter): nothing is in flight."""
    pipe.hdel(keys.inflight(), job_id)


def entry(client: redis.Redis, job_id: str) -> Entry | None:
    """The job's ledger entry, if it is in flight."""
    raw = client.hget(keys.inflight(), job_id)
    return None if raw is None else Entry.parse(job_id, _text(raw))


def lost(entries: list[Entry], client: redis.Redis, *, grace: float, now: float) -> list[Entry]:
    """The entries whose message is gone: see the module's docstring for the rule."""
    old = [e for e in entries if now - max(e.sent, e.started or 0.0) > grace]
    waiting = [e for e in old if e.started is None]
    out = [e for e in old if e.started is not None]
    if not waiting:
        return out
    queues = sorted({(e.stage, step(e.priority)) for e in waiting})
    pipe = client.pipeline(transaction=False)
    for stage, s in queues:
        pipe.zscore(keys.consumed(), f"{stage}:{s}")
        pipe.llen(broker_key(stage, s))
    answers = pipe.execute()
    newest = {q: answers[2 * i] for i, q in enumerate(queues)}
    length = {q: answers[2 * i + 1] for i, q in enumerate(queues)}
    for e in waiting:
        q = (e.stage, step(e.priority))
        if length[q] == 0 or (newest[q] is not None and newest[q] > e.sent + ORDER_SLACK):
            out.append(e)
    return out


def sweep(client: redis.Redis, send: Sender, *, grace: float, now: float | None = None,
          batch: int = 1000) -> list[str]:
    """Send every lost job again, to the stage it was lost at; return their ids."""
    now = time.time() if now is None else now
    resent: list[str] = []
    cursor = 0
    while True:
        cursor, chunk = client.hscan(keys.inflight(), cursor, count=batch)
        entries = [e for k, v in chunk.items() if (e := Entry.parse(_text(k), _text(v))) is not None]
        for e in lost(entries, client, grace=grace, now=now):
            log.warning("job %s: its %s message was lost (a broker restart?); sending it again", e.job_id, e.stage)
            send(e.stage, e.job_id, e.priority)
            client.incr(keys.metrics_resent())  # /metrics: gleaner_lost_messages_resent_total
            resent.append(e.job_id)
        if cursor == 0:
            return resent


def resent_total(client: redis.Redis) -> int:
    """How many lost messages the sweeper has sent again since the Redis data began."""
    return int(client.get(keys.metrics_resent()) or 0)


def unfinished(client: redis.Redis) -> int:
    """Jobs in the ledger: sent to a stage (or waiting out a retry) and not yet finished."""
    return int(client.hlen(keys.inflight()))


def sweep_once(client: redis.Redis, send: Sender, *, grace: float, interval: float) -> list[str] | None:
    """Sweep if no other worker has in the last ``interval`` seconds (None when skipped)."""
    if not client.set(keys.sweep_lock(), "1", nx=True, px=int(interval * 1000)):
        return None
    return sweep(client, send, grace=grace)
