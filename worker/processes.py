"""Command lines for Celery processes, and the supervisor behind ``gleaner up``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from worker.pipeline import Pipeline, get_pipeline
from worker.settings import Settings

log = logging.getLogger("gleaner.up")

FETCH_THREADS = 16  # fetches wait on the network, so threads, and many of them
STOP_GRACE = 30.0  # seconds a child gets to finish its task after SIGTERM


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
        concurrency = FETCH_THREADS if pool == "threads" else (os.cpu_count() or 2)
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


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def run_all(settings: Settings, *, web: bool = True) -> int:
    """Redis (embedded if unset), an I/O worker for the stages that wait on the network (fetch), a
    CPU worker for the others, beat, and the web UI when present; all stopped together."""
    from worker.redis_server import EmbeddedRedis

    env = dict(os.environ)
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)
        url, started = embedded.ensure()
        if not started:
            embedded = None  # someone else's server: leave it running
        env["GLEANER_REDIS_URL"] = url
        log.info("embedded Redis at %s (data in %s)", url, settings.data_dir / "redis")
    pipeline = get_pipeline()
    io = [s.name for s in pipeline if s.io_bound]
    cpu = [s.name for s in pipeline if not s.io_bound]
    commands = {f"worker-{'-'.join(io)}": worker_argv(io)} if io else {}
    commands |= {"worker-stages": worker_argv(cpu)} if cpu else {}
    commands["beat"] = beat_argv(settings)
    if web:
        try:
            import worker.web  # noqa: F401
        except ImportError:
            log.info("web UI not installed; running without it")
        else:
            commands["web"] = [sys.executable, "-m", "worker.web"]
    children: dict[str, subprocess.Popen] = {}
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        for name, argv in commands.items():
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            children[name] = subprocess.Popen(argv, env=env, start_new_session=True)
            log.info("started %s (pid %d)", name, children[name].pid)
        while True:
            for name, proc in children.items():
                if proc.poll() is not None:
                    log.error("%s exited with status %s; stopping everything", name, proc.returncode)
                    code = 1
                    raise _Stop(0)
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
