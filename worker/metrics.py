"""Pipeline metrics kept in Redis, so every worker process adds to the same counters.

The runner (worker/runner.py) counts each stage run in a :class:`Tally` and adds a second's worth at a time to
Redis (:func:`record_stage` adds one run at once); the web app reads the totals back
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
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis

from worker import keys
from worker.queues import broker_keys

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


class Tally:
    """Stage runs counted in this process and added to Redis at most every ``every`` seconds,
    riding on a round trip the caller makes anyway (the runner's end-of-stage pipeline).

    Six counter commands a task, five tasks an article, cost about 1% of a worker's CPU and more
    of Redis's; a second's worth of runs fits in a few dozen commands. The price: the dashboard
    lags by up to ``every`` seconds (``IdleFlush`` sends what a process holds when no task comes
    to carry it), and a killed worker loses its last second of counts (the books are the jobs
    table, not these). Thread-safe; one per process.
    """

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str, str, int], int] = {}  # (stage, outcome, bucket, minute) -> runs
        self._seconds: dict[str, float] = {}  # stage -> summed run time
        self._due = clock() + every

    def add(self, stage: str, outcome: str, seconds: float, *, now: float | None = None) -> None:
        _check(stage, outcome)
        seconds = max(0.0, float(seconds))
        key = (stage, outcome, bucket_for(seconds), int((time.time() if now is None else now) // 60))
        with self._lock:
            self._runs[key] = self._runs.get(key, 0) + 1
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    def due(self) -> bool:
        """Whether the held counts (if any) are a flush interval old."""
        return self.clock() >= self._due

    def flush_into(self, pipe: redis.client.Pipeline, *, force: bool = False) -> bool:
        """Queue the held counts onto ``pipe`` if they are due (or ``force``); True if any were."""
        if not force and self.clock() < self._due:
            return False
        with self._lock:
            runs, seconds, self._runs, self._seconds = self._runs, self._seconds, {}, {}
            self._due = self.clock() + self.every
        if not runs:
            return False
        counts: dict[str, int] = {}  # "stage:outcome" -> runs
        buckets: dict[tuple[str, str], int] = {}  # (stage, bucket) -> runs
        per_stage: dict[str, int] = {}
        minutes: dict[tuple[int, str], int] = {}  # (minute, "stage:outcome") -> runs
        for (stage, outcome, bucket, minute), n in runs.items():
            name = f"{stage}:{outcome}"
            counts[name] = counts.get(name, 0) + n
            buckets[(stage, bucket)] = buckets.get((stage, bucket), 0) + n
            per_stage[stage] = per_stage.get(stage, 0) + n
            minutes[(minute, name)] = minutes.get((minute, name), 0) + n
        for name, n in counts.items():
            pipe.hincrby(counts_key(), name, n)
        for (stage, bucket), n in buckets.items():
            pipe.hincrby(latency_key(stage), bucket, n)
        for stage, n in per_stage.items():
            pipe.hincrbyfloat(latency_key(stage), "sum", seconds[stage])
            pipe.hincrby(latency_key(stage), "count", n)
        for (minute, name), n in minutes.items():
            pipe.hincrby(minute_key(minute), name, n)
        for minute in {m for m, _ in minutes}:
            pipe.expire(minute_key(minute), MINUTE_TTL)
        return True

    def flush(self, client: redis.Redis) -> bool:
        """Send whatever is held now, in a round trip of its own. False if Redis failed (logged)."""
        pipe = client.pipeline(transaction=False)
        if not self.flush_into(pipe, force=True):
            return True
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record stage metrics: %s", exc)
            return False
        return True


class IdleFlush:
    """Sends a process's ``Tally`` once it is due when no task's round trip carries it: when tasks
    stop coming (a crawl's end, a quiet hour), the dashboard and ``gleaner up``'s progress line
    still count the last runs, ``every`` seconds later at most, instead of at the next task. A
    daemon thread, one per process that runs tasks; while tasks come, the runner's round trips
    flush first and this one finds nothing to send."""

    def __init__(self, tally: Tally, client: redis.Redis) -> None:
        self.tally, self.client = tally, client
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="gleaner-metrics", daemon=True)

    def start(self) -> IdleFlush:
        self.thread.start()
        return self

    def run(self) -> None:
        while not self.stopping.wait(self.tally.every):
            if self.tally.due():
                self.tally.flush(self.client)  # a Redis failure is logged there; the counts wait for the next

    def stop(self) -> None:
        self.stopping.set()


def record_stage(client: redis.Redis, stage: str, outcome: str, seconds: float, *, now: float | None = None) -> bool:
    """Count one run of ``stage`` that ended in ``outcome`` after ``seconds``, at once.

    One round trip (a non-transactional pipeline). A Redis failure is logged and reported by
    returning False: losing a metric must never fail the task being measured.
    """
    tally = Tally()
    tally.add(stage, outcome, seconds, now=now)
    return tally.flush(client)


# --- reading ------------------------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stage_counts(client: redis.Redis, stages: Iterable[str]) -> dict[str, dict[str, int]]:
    """``{stage: {outcome: runs}}`` with every one of ``stages`` and every outcome present (zeros included)."""
    out: dict[str, dict[str, int]] = {stage: dict.fromkeys(OUTCOMES, 0) for stage in stages}
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


def progress_line(stages: Sequence[str], start: dict[str, dict[str, int]], before: dict[str, dict[str, int]],
                  now: dict[str, dict[str, int]], seconds: float, waiting: dict[str, int]) -> str:
    """What the pipeline did in the last ``seconds`` and since ``start`` (``stage_counts`` read then, before
    and now), and the messages ``waiting`` in each queue: one line, as Scrapy's log stats. A job is
    through when the last stage ran it; failed when a stage dead-lettered it; a retry waits to run again."""
    last = stages[-1]

    def counted(outcome: str, a: dict[str, dict[str, int]], b: dict[str, dict[str, int]],
                only: Sequence[str] = stages) -> int:
        return sum(b.get(s, {}).get(outcome, 0) - a.get(s, {}).get(outcome, 0) for s in only)

    through = counted("success", before, now, [last])
    rate = through / seconds if seconds > 0 else 0.0
    return (f"progress: {through:,} jobs through {last} in the last {seconds:.0f} s ({rate:.1f}/s), "
            f"{counted('failure', before, now):,} failed, {counted('retry', before, now):,} retried; "
            f"since start {counted('success', start, now, [last]):,} through, "
            f"{counted('failure', start, now):,} failed; "
            "waiting: " + ", ".join(f"{name} {n:,}" for name, n in waiting.items()))


def queue_depths(broker: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue's list on the broker (not counting ones a worker holds)."""
    names = list(queues)
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
