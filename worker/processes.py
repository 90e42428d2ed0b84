"""Command lines for Celery processes, and the supervisor behind ``gleaner up``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker import metrics
from worker.pipeline import Pipeline, get_pipeline
from worker.settings import Settings

log = logging.getLogger("gleaner.up")

FETCH_THREADS = 16  # fetches wait on the network, so threads, and many of them
STOP_GRACE = 30.0  # seconds a child gets to finish its task after SIGTERM
POOLS = ("prefork", "threads", "solo")
RESTART_LIMIT, RESTART_WINDOW = 5, 60.0  # a solo stage worker started again at most 5 times a minute


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's cpuset),
    else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this OS
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Sizing:
    """How ``gleaner up`` sizes its workers: the stages that wait on the network in a threads pool,
    the CPU-bound ones in one process per usable core (the GIL lets one Python process use one
    core, and a real page's stages are CPU: bench/results/e2e-profile.md).

    Those processes are solo workers by default, each a Celery worker of its own taking its own
    messages from Redis. In a prefork pool the worker's main process receives every message and
    hands it to a pool process over a pipe, and the result back: about 1 ms of CPU a page on real
    pages, a twentieth of what Gleaner spends on one (bench/results/e2e.md, stop 35). What the
    prefork main process gives besides, ``gleaner up`` and the workers do themselves: a solo worker
    that dies is started again (``run_all``), and each arms the task time limits around its tasks
    (worker/timelimits.py)."""

    cores: int
    pool: str = "solo"  # the CPU-bound stages' pool
    concurrency: int | None = None  # its processes (a solo pool's: workers; threads); None: one per core
    fetch_threads: int = FETCH_THREADS

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool {self.pool!r} is none of {', '.join(POOLS)}")
        for what, n in (("cores", self.cores), ("concurrency", self.concurrency), ("fetch threads", self.fetch_threads)):
            if n is not None and n < 1:
                raise ValueError(f"{what} must be at least 1, not {n}")

    @property
    def processes(self) -> int:
        return self.concurrency or self.cores

    def describe(self, io: Sequence[str], cpu: Sequence[str]) -> str:
        parts = [f"{self.cores} usable core{'s' if self.cores != 1 else ''}"]
        if io:
            parts.append(f"{'+'.join(io)}: threads pool x {self.fetch_threads}")
        if cpu:
            how = "" if self.concurrency else " (one per core)"
            if self.pool == "solo":
                parts.append(f"{'+'.join(cpu)}: {self.processes} solo worker{'s' if self.processes != 1 else ''}{how}")
            else:
                parts.append(f"{'+'.join(cpu)}: {self.pool} pool x {self.processes}{how}")
        return "sizing: " + "; ".join(parts)

    def stage_workers(self, cpu: Sequence[str], pipeline: Pipeline) -> dict[str, list[str]]:
        """The command lines of the workers for the CPU-bound stages ``cpu``, by process name."""
        if not cpu:
            return {}
        if self.pool == "solo":
            return {f"worker-stages-{n}": worker_argv(cpu, pool="solo", concurrency=1, name=f"all{n}", pipeline=pipeline)
                    for n in range(1, self.processes + 1)}
        return {"worker-stages": worker_argv(cpu, pool=self.pool, concurrency=self.processes, pipeline=pipeline)}


class Restarts:
    """Whether ``gleaner up`` starts a process that died again: at most ``limit`` times in
    ``window`` seconds; a process that dies more often than that is not one a restart will mend."""

    def __init__(self, limit: int = RESTART_LIMIT, window: float = RESTART_WINDOW) -> None:
        self.limit, self.window = limit, window
        self.times: dict[str, list[float]] = {}

    def allow(self, name: str, now: float) -> bool:
        recent = [t for t in self.times.get(name, []) if now - t < self.window]
        if len(recent) >= self.limit:
            return False
        self.times[name] = recent + [now]
        return True


def celery_base() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app"]


def worker_argv(queues: Sequence[str], *, pool: str | None = None, concurrency: int | None = None,
                loglevel: str = "INFO", name: str | None = None, pipeline: Pipeline | None = None) -> list[str]:
    """A ``celery worker`` command line for some stages' queues: a threads pool when they all wait on
    the network, else a process per core; the queues read latest stage first."""
    pipeline = pipeline or get_pipeline()
    names = pipeline.names()
    unknown = set(queues) - set(names)
    if unknown:
        raise ValueError(f"unknown queue(s) {', '.join(sorted(unknown))}; stages are {', '.join(names)}")
    io_only = bool(queues) and all(pipeline.stage(q).io_bound for q in queues)
    pool = pool or ("threads" if io_only else "prefork")
    if concurrency is None:
        concurrency = FETCH_THREADS if pool == "threads" else usable_cores()
    name = name or ("-".join(queues) if len(queues) < 3 else "all")
    # Later stages first: kombu reads the queues in this order, so a worker finishes articles
    # already in flight before it starts new fetches, rather than fetching everything first.
    ordered = sorted(queues, key=lambda q: -names.index(q))
    return celery_base() + [
        "worker", "-Q", ",".join(ordered), "-P", pool, "-c", str(concurrency), "-l", loglevel,
        "-n", f"{name}@%h",
        # Gossip and mingle chatter between workers buys nothing here and slows start-up.
        "--without-gossip", "--without-mingle",
    ]


def beat_argv(settings: Settings | None = None, *, loglevel: str = "INFO") -> list[str]:
    from worker.settings import get_settings

    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return celery_base() + ["beat", "-l", loglevel, "-s", str(settings.data_dir / "celerybeat-schedule")]


class Progress:
    """``gleaner up``'s progress line, every ``every`` seconds (``GLEANER_PROGRESS_EVERY``), from the
    metrics every worker process adds to in Redis (``worker/metrics.py``): jobs through the pipeline
    and failed in the interval and since the first reading, and the messages waiting per queue."""

    def __init__(self, client: redis.Redis, stages: Sequence[str], every: float, now: float) -> None:
        self.client, self.stages, self.every = client, list(stages), every
        self.due = now  # the first tick reads where the counts start
        self.start: dict[str, dict[str, int]] | None = None
        self.before: dict[str, dict[str, int]] = {}
        self.at = now

    def tick(self, now: float) -> str | None:
        """Log the line and return it when one is due; else None."""
        if now < self.due:
            return None
        self.due = now + self.every
        try:
            counts = metrics.stage_counts(self.client, self.stages)
            if self.start is None:  # the first reading: where the counts start, no line yet
                self.start, self.before, self.at = counts, counts, now
                return None
            waiting = metrics.queue_depths(self.client, self.stages)
        except redis.RedisError as exc:  # the workers say more about Redis being away; try at the next one
            log.debug("progress: Redis unavailable (%s)", type(exc).__name__)
            return None
        line = metrics.progress_line(self.stages, self.start, self.before, counts, now - self.at, waiting)
        self.before, self.at = counts, now
        log.info("%s", line)
        return line


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def run_all(settings: Settings, *, web: bool = True, sizing: Sizing | None = None) -> int:
    """Redis (embedded if unset), an I/O worker for the stages that wait on the network (fetch),
    workers for the others sized by ``sizing`` (default: a solo worker per usable core, started
    again if it dies), beat, and the web UI when present; all stopped together."""
    from worker.redis_server import EmbeddedRedis

    env = dict(os.environ)
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        embedded = EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)
        redis_url, started = embedded.ensure()
        if not started:
            embedded = None  # someone else's server: leave it running
        env["GLEANER_REDIS_URL"] = redis_url
        log.info("embedded Redis at %s (data in %s)", redis_url, settings.data_dir / "redis")
    pipeline = get_pipeline()
    io = [s.name for s in pipeline if s.io_bound]
    cpu = [s.name for s in pipeline if not s.io_bound]
    sizing = sizing or Sizing(usable_cores())
    log.info("%s", sizing.describe(io, cpu))
    commands = {f"worker-{'-'.join(io)}": worker_argv(io, pool="threads", concurrency=sizing.fetch_threads,
                                                      pipeline=pipeline)} if io else {}
    stage_workers = sizing.stage_workers(cpu, pipeline)
    commands |= stage_workers
    # A solo worker is its own pool process: one that died is started again, as a prefork pool's
    # main process replaces a pool process (its message comes back after the visibility timeout).
    restartable = set(stage_workers) if sizing.pool == "solo" else set()
    restarts = Restarts()
    commands["beat"] = beat_argv(settings)
    if web:
        try:
            import worker.web  # noqa: F401
        except ImportError:
            log.info("web UI not installed; running without it")
        else:
            commands["web"] = [sys.executable, "-m", "worker.web"]
    progress = (Progress(redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5),
                         pipeline.names(), settings.progress_every, time.monotonic())
                if settings.progress_every > 0 else None)
    children: dict[str, subprocess.Popen] = {}
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        for name, argv in commands.items():
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            children[name] = subprocess.Popen(argv, env=env, start_new_session=True)
            log.info("started %s (pid %d)", name, children[name].pid)
        while True:
            for name, proc in list(children.items()):
                if proc.poll() is None:
                    continue
                if name in restartable and restarts.allow(name, time.monotonic()):
                    children[name] = subprocess.Popen(commands[name], env=env, start_new_session=True)
                    log.warning("%s exited with status %s; started it again (pid %d)", name, proc.returncode,
                                children[name].pid)
                    continue
                log.error("%s exited with status %s; stopping everything", name, proc.returncode)
                code = 1
                raise _Stop(0)
            if progress is not None:
                progress.tick(time.monotonic())
            time.sleep(0.5)
    except _Stop:
        pass
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        stop_children(children.values())
        if embedded is not None:
            embedded.stop()
        log.info("stopped")
    return code


def stop_children(children, grace: float = STOP_GRACE) -> None:
    children = [c for c in children if c.poll() is None]
    for child in children:
        child.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the current task
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
