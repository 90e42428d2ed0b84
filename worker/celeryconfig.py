"""Celery configuration, read lazily so importing the app starts nothing."""

from __future__ import annotations

from kombu import Queue as KombuQueue

from worker import celery_compat
from worker.pipeline import Pipeline, get_pipeline
from worker.queues import PRIORITY_SEP, Priority, task_name
from worker.redis_server import resolve_redis_url
from worker.settings import Settings, get_settings

# Polling sources is network I/O like fetching, so it runs on the workers of the I/O-bound queue.
DISCOVERY_TASKS = ("gleaner.poll_sources", "gleaner.discover")


def io_queue(pipeline: Pipeline) -> str:
    """The queue discovery's tasks share: the first I/O-bound stage's (else the first stage's)."""
    return next((s.name for s in pipeline if s.io_bound), pipeline.first.name)


class CeleryConfig:
    """Celery reads each attribute when it first needs it; the broker URL is resolved then."""

    # JSON only: a message from the broker is never code.
    task_serializer = "json"
    result_serializer = "json"
    event_serializer = "json"
    accept_content = ["json"]

    # Acknowledge after the task ran and requeue when the worker died under it: every stage is
    # idempotent, so running twice is harmless while never running is a lost URL.
    task_acks_late = True
    task_reject_on_worker_lost = True
    # One message waiting behind each running one, so a slot that finishes starts its next task
    # at once instead of waiting for the consumer's next round trip to Redis (load run: 96 -> 101
    # articles/s, the cores 92% -> 95% busy). Not more: a URL queued by hand can be kept waiting
    # by at most one message per slot, and a killed worker has little in hand to give back.
    worker_prefetch_multiplier = 2
    # Off: on a lost broker connection a running task finishes and its message comes back through
    # the visibility-timeout restore (worker/celery_compat.py). Cancelling it would only waste its
    # work: every stage is idempotent, and the threads and solo pools cannot cancel a task anyway.
    worker_cancel_long_running_tasks_on_connection_loss = False
    broker_connection_retry_on_startup = True

    # Outcomes live in the jobs table, so nothing reads task results.
    task_ignore_result = True
    task_store_errors_even_if_ignored = False


    task_default_priority = Priority.SCHEDULED.value
    worker_send_task_events = False  # Flower users turn them on with -E; they cost ~40% throughput

    @property
    def _settings(self) -> Settings:
        return get_settings()

    # Gleaner's consumer, which reconnects after a Redis restart; Celery's own if the installed
    # version lacks what it relies on (worker/celery_compat.py).
    @property
    def worker_consumer(self) -> str:
        return celery_compat.consumer_class()

    # One queue per stage of the table, each stage's task routed to its own.
    @property
    def task_queues(self) -> list[KombuQueue]:
        return [KombuQueue(name, routing_key=name) for name in get_pipeline().names()]

    @property
    def task_default_queue(self) -> str:
        return get_pipeline().first.name

    @property
    def task_routes(self) -> dict:
        pipeline = get_pipeline()
        routes = {task_name(name): {"queue": name, "routing_key": name} for name in pipeline.names()}
        io = io_queue(pipeline)
        return routes | {task: {"queue": io, "routing_key": io} for task in DISCOVERY_TASKS}

    @property
    def broker_url(self) -> str:
        return resolve_redis_url(self._settings)

    @property
    def broker_transport_options(self) -> dict:
        return {
            "visibility_timeout": self._settings.visibility_timeout,
            # Scan for a dead worker's unacked tasks every 10 s rather than every 100 s.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # One Redis list per priority step, read lowest number first, so a URL queued by
            # hand overtakes the scheduled crawl at every stage.
            "priority_steps": Priority.steps(),
            "sep": PRIORITY_SEP,
            "queue_order_strategy": "priority",
        }

    @property
    def beat_schedule(self) -> dict:
        # One static entry: the tick claims due sources from Redis (worker.registry), so sources
        # change without restarting beat and two beats never run one slot twice. A tick that waited
        # longer than two ticks is stale: the next one does its work.
        tick = self._settings.sources_tick
        return {
            "gleaner.poll_sources": {
                "task": "gleaner.poll_sources",
                "schedule": tick,
                "options": {"expires": max(1.0, 2 * tick), "priority": 3},
            },
        }

    @property
    def task_soft_time_limit(self) -> float:
        # A task must end well inside the visibility timeout or Redis hands it out again.
        return self._settings.visibility_timeout * 0.75

    @property
    def task_time_limit(self) -> float:
        return self._settings.visibility_timeout * 0.9
