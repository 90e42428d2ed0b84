"""What the overview, ``/api/stats`` and ``/metrics`` report, gathered in one place.

Queue depths and stage counters come from Redis (``worker.metrics``), job states and record
counts from SQL, workers from a Celery broadcast. The broadcast waits for replies, so its answer
is cached for a few seconds: a dozen open dashboards cost one broadcast, not a dozen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from worker import metrics
from worker.delayed import DelayedJobs
from worker.pipeline import get_pipeline
from worker.storage import Storage

log = logging.getLogger("gleaner.web")

WORKERS_CACHE = 5.0  # seconds a worker list is reused
WORKERS_TIMEOUT = 0.5  # seconds the broadcast waits for replies

WorkersFn = Callable[[], list[dict]]


def celery_workers(timeout: float = WORKERS_TIMEOUT) -> list[dict]:
    """Workers answering a broadcast now: ``[{"name": ..., "queues": [...]}]``, sorted by name."""
    from worker.app import app

    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return sorted(({"name": name, "queues": sorted(q["name"] for q in queues)} for name, queues in replies.items()),
                  key=lambda w: w["name"])


class CachedWorkers:
    def __init__(self, fetch: WorkersFn, ttl: float = WORKERS_CACHE) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: list[dict] = []
        self._at = -float("inf")
        self.error: str | None = None

    def __call__(self) -> list[dict]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                try:
                    self._value, self.error = self.fetch(), None
                except Exception as exc:  # noqa: BLE001 - a broker hiccup shows on the page, not as a 500
                    log.warning("could not list workers: %s", exc)
                    self._value, self.error = [], f"{type(exc).__name__}: {exc}"
                self._at = time.monotonic()
            return list(self._value)


def snapshot(storage: Storage, client: redis.Redis, workers: CachedWorkers, *, minutes: int = 60,
             flower_url: str | None = None) -> dict:
    stages = get_pipeline().names()
    counts = metrics.stage_counts(client, stages)
    jobs = storage.count_jobs()
    rows = metrics.throughput(client, minutes=minutes)
    last = stages[-1]
    return {
        "queues": metrics.queue_depths(client, stages),
        "in_flight": metrics.unacked(client),
        "retry_waiting": DelayedJobs(client).pending(),
        "stages": counts,
        "jobs": {state: jobs.get(state, 0) for state in ("queued", "done", "duplicate", "failed")},
        "records": storage.count_records(),
        # Articles per minute: runs of the last stage that succeeded, and runs of any stage that
        # ended a job in the dead-letter store.
        "throughput": [
            {"minute": row["minute"],
             "stored": row["stages"].get(last, {}).get("success", 0),
             "failed": sum(s.get("failure", 0) for s in row["stages"].values())}
            for row in rows
        ],
        "workers": workers(),
        "workers_error": workers.error,
        "flower_url": flower_url,
    }
