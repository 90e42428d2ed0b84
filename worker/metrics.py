"""Pipeline metrics kept in Redis, so every worker process adds to the same counters.

The stage wrapper calls :func:`record_stage` once per task run; the web app reads the totals back
(``/metrics``, the overview's throughput chart). Three kinds of keys, all under ``gleaner:metrics:``:

- ``counts``            hash ``{stage}:{outcome}`` -> runs since the Redis data began
- ``latency:{stage}``   hash: one field per histogram bucket bound (runs that fell in that bucket,
                        not cumulative), plus ``sum`` (seconds) and ``count``
- ``minute:{n}``        hash ``{stage}:{outcome}`` -> runs finished in Unix minute ``n``; expires
                        after ``MINUTE_TTL`` so the chart's window costs a bounded amount of memory

Queue depths are not stored: they are read live from the broker (``LLEN`` of each queue's list).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from worker import keys
from worker.queues import Queue, broker_keys

log = logging.getLogger("gleaner.metrics")

OUTCOMES = ("success", "failure", "retry")
# Seconds. Fetches take up to total_timeout (60 s by default); CPU stages take milliseconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, math.inf)
MINUTE_TTL = 3 * 3600  # seconds a per-minute hash is kept: the chart shows the last hour
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")

# The keys live in worker/keys.py with every other prefix; these names stay for readers here.
counts_key, latency_key, minute_key = keys.metrics_counts, keys.metrics_latency, keys.metrics_minute


def bucket_label(bound: float) -> str:
    """The field name of a bucket bound, as Prometheus writes ``le`` ("0.005", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_for(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return bucket_label(bound)
    return "+Inf"  # NaN lands here: counted, and visible as an outlier rather than lost


def _check(stage: str, outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if not _STAGE_NAME.fullmatch(stage):
        raise ValueError(f"stage name {stage!r} must be lowercase letters, digits and underscores")


def add_stage(pipe: redis.client.Pipeline, stage: str, outcome: str, seconds: float, *,
              now: float | None = None) -> None:
    """Queue the commands counting one run of ``stage`` onto a pipeline the caller executes
    (the stage wrapper sends them with its own bookkeeping: one round trip a task)."""
    _check(stage, outcome)
    seconds = max(0.0, float(seconds))
    minute = int((time.time() if now is None else now) // 60)
    field_name = f"{stage}:{outcome}"
    pipe.hincrby(counts_key(), field_name, 1)
    pipe.hincrby(latency_key(stage), bucket_for(seconds), 1)
    pipe.hincrbyfloat(latency_key(stage), "sum", seconds)
    pipe.hincrby(latency_key(stage), "count", 1)
    pipe.hincrby(minute_key(minute), field_name, 1)
    pipe.expire(minute_key(minute), MINUTE_TTL)


def record_stage(client: redis.Redis, stage: str, outcome: str, seconds: float, *, now: float | None = None) -> bool:
    """Count one run of ``stage`` that ended in ``outcome`` after ``seconds``.

    One round trip (a non-transactional pipeline). A Redis failure is logged and reported by
    returning False: losing a metric must never fail the task being measured.
    """
    pipe = client.pipeline(transaction=False)
    add_stage(pipe, stage, outcome, seconds, now=now)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record %s %s metric: %s", stage, outcome, exc)
        return False
    return True


# --- reading ------------------------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stage_counts(client: redis.Redis) -> dict[str, dict[str, int]]:
    """``{stage: {outcome: runs}}`` with every pipeline stage and outcome present (zeros included)."""
    out: dict[str, dict[str, int]] = {q.value: dict.fromkeys(OUTCOMES, 0) for q in Queue}
    for name, value in client.hgetall(counts_key()).items():
        stage, _, outcome = _text(name).rpartition(":")
        if outcome in OUTCOMES and stage:
            out.setdefault(stage, dict.fromkeys(OUTCOMES, 0))[outcome] = int(value)
    return out


@dataclass
class Histogram:
    """One stage's latency histogram, buckets cumulative as Prometheus wants them."""

    buckets: list[tuple[str, int]] = field(default_factory=list)  # (le, runs at or under it)
    total: float = 0.0  # seconds
    count: int = 0


def latency(client: redis.Redis, stages: Iterable[str]) -> dict[str, Histogram]:
    stages = list(stages)
    pipe = client.pipeline(transaction=False)
    for stage in stages:
        pipe.hgetall(latency_key(stage))
    out: dict[str, Histogram] = {}
    for stage, raw in zip(stages, pipe.execute()):
        fields = {_text(k): _text(v) for k, v in raw.items()}
        running = 0
        hist = Histogram(total=float(fields.get("sum", 0.0)), count=int(fields.get("count", 0)))
        for bound in LATENCY_BUCKETS:
            label = bucket_label(bound)
            running += int(fields.get(label, 0))
            hist.buckets.append((label, running))
        out[stage] = hist
    return out


def throughput(client: redis.Redis, *, minutes: int = 60, now: float | None = None) -> list[dict]:
    """The last ``minutes`` minutes, oldest first: ``{"minute": unix_seconds, "stages": {stage: {outcome: n}}}``.

    Minutes with no runs are present with empty ``stages``, so a chart needs no gap filling.
    """
    current = int((time.time() if now is None else now) // 60)
    wanted = list(range(current - minutes + 1, current + 1))
    pipe = client.pipeline(transaction=False)
    for minute in wanted:
        pipe.hgetall(minute_key(minute))
    rows = []
    for minute, raw in zip(wanted, pipe.execute()):
        stages: dict[str, dict[str, int]] = {}
        for name, value in raw.items():
            stage, _, outcome = _text(name).rpartition(":")
            stages.setdefault(stage, {})[outcome] = int(value)
        rows.append({"minute": minute * 60, "stages": stages})
    return rows


def queue_depths(broker: redis.Redis, queues: Iterable[str] | None = None) -> dict[str, int]:
    """Messages waiting in each queue's list on the broker (not counting ones a worker holds)."""
    names = list(queues) if queues is not None else Queue.names()
    lists = {name: broker_keys(name) for name in names}  # one list per priority step
    pipe = broker.pipeline(transaction=False)
    for name in names:
        for key in lists[name]:
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {name: sum(next(lengths) for _ in lists[name]) for name in names}


def unacked(broker: redis.Redis) -> int:
    """Messages delivered to a worker and not yet acknowledged (kombu's ``unacked`` hash)."""
    return int(broker.hlen("unacked"))
