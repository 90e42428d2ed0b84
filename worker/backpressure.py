"""Backpressure: a worker stops taking a stage's messages while too many wait for the stages after it.

A fetch worker is bound by the network and the CPU stages by the cores, so nothing else keeps the
two in step: a fast fetch fleet would fill Redis with pages waiting to be parsed (about 40 KB
each, `deploy/SCALING.md`) for as long as a crawl lasts. So each worker, once a second, reads how
many messages wait in the queues of the stages after each stage it consumes (``LLEN`` of their
lists, one round trip). At ``GLEANER_BACKPRESSURE_LIMIT`` or more it stops consuming that stage's
queue (as Celery's ``cancel_task_queue`` does, which ``celery control cancel_consumer`` calls),
and at half the limit or fewer it consumes it again (as ``add_task_queue`` does). The half is the
hysteresis: a queue paused at the limit is not resumed by the next page parsed, so the consumer is
not flipped once a second. A stage's pause and its resume are logged at INFO at most once a
minute, the others at DEBUG and counted in the next INFO line. Pressure travels upstream on its
own: a slow store leaves drafts in its queue, which pauses the stages before it, whose own queue
then grows and pauses fetch.

Nothing waits anywhere new: a paused stage's messages stay in its queue, in order, and a message a
pause catches mid-read is handed back by kombu. Messages a worker has already taken run to the
end. The in-flight ledger's sweeper resends a job only when its queue has started a newer message
or is empty (worker/inflight.py), neither of which happens while its queue is paused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from celery import bootsteps

from worker.metrics import queue_depths
from worker.pipeline import Pipeline, get_pipeline
from worker.runtime import get_runtime

log = logging.getLogger("gleaner.backpressure")

CHECK_EVERY = 1.0  # seconds between two readings of the queues; a reading is one round trip
LOG_EVERY = 60.0  # seconds: a stage's pauses are logged at INFO at most this often (the rest at DEBUG)


def later_stages(pipeline: Pipeline, stage: str) -> list[str]:
    """The stages after ``stage``: whose queues hold the work ``stage`` has handed on."""
    names = pipeline.names()
    return names[names.index(stage) + 1:]


class Gate:
    """Whether one stage's queue is consumed, from how many messages wait after it: closed at
    ``limit`` or more, open again at ``limit // 2`` or fewer. ``update`` says what to do now."""

    def __init__(self, stage: str, after: list[str], limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a backpressure limit is at least 1 (got {limit}); 0 turns it off")
        self.stage, self.after, self.limit = stage, after, limit
        self.resume_at = limit // 2
        self.paused = False
        # The log: a pause and its resume at INFO at most once every LOG_EVERY seconds, the others at
        # DEBUG and counted, so a crawl that pauses fetch every few seconds does not fill the log.
        self.logged_at: float | None = None  # when the last pause logged at INFO was
        self.quiet_pauses = 0  # pauses logged at DEBUG since then
        self.loud = False  # whether the current pause was logged at INFO (so its resume is too)

    def update(self, waiting: int) -> str | None:
        """``"pause"``, ``"resume"`` or None (nothing to change), given ``waiting`` messages after it."""
        if not self.paused and waiting >= self.limit:
            self.paused = True
            return "pause"
        if self.paused and waiting <= self.resume_at:
            self.paused = False
            return "resume"
        return None


def gates(pipeline: Pipeline, consumed: Iterable[str], limit: int) -> list[Gate]:
    """A gate for each stage this worker consumes that has stages after it; none if ``limit`` is 0."""
    if limit <= 0:
        return []
    return [Gate(stage, after, limit) for stage in pipeline.names()
            if stage in consumed and (after := later_stages(pipeline, stage))]


def check(gates: list[Gate], client: redis.Redis, pause: Callable[[str], None],
          resume: Callable[[str], None], *, now: float | None = None) -> None:
    """Read the queues after every gate in one round trip and pause or resume each stage as its
    gate says. Redis away: nothing changes (the consumer itself waits for it then)."""
    if not gates:
        return
    try:
        depths = queue_depths(client, {name for gate in gates for name in gate.after})
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.debug("backpressure: queues unreadable (%s); no change", exc)
        return
    now = time.monotonic() if now is None else now
    for gate in gates:
        waiting = sum(depths[name] for name in gate.after)
        action = gate.update(waiting)
        if action == "pause":
            gate.loud = gate.logged_at is None or now - gate.logged_at >= LOG_EVERY
            also = (f" ({gate.quiet_pauses:,} more pauses since the last line like this)"
                    if gate.loud and gate.quiet_pauses else "")
            log.log(logging.INFO if gate.loud else logging.DEBUG,
                    "backpressure: %s paused%s, %s messages wait for %s (limit %s); it resumes at %s",
                    gate.stage, also, f"{waiting:,}", ", ".join(gate.after), f"{gate.limit:,}", f"{gate.resume_at:,}")
            if gate.loud:
                gate.logged_at, gate.quiet_pauses = now, 0
            else:
                gate.quiet_pauses += 1
            pause(gate.stage)
        elif action == "resume":
            log.log(logging.INFO if gate.loud else logging.DEBUG, "backpressure: %s resumed, %s messages wait for %s",
                    gate.stage, f"{waiting:,}", ", ".join(gate.after))
            resume(gate.stage)


def stop_consuming(c: Any, queue: str) -> None:
    """What Celery's ``Consumer.cancel_task_queue`` does, without its INFO line (``check`` logs its
    own, at most once a minute): the queue leaves Celery's selection, which a restarted consumer
    reads, and the task consumer stops reading it."""
    c.app.amqp.queues.deselect(queue)
    c.task_consumer.cancel_by_queue(queue)


def consume(c: Any, queue: str) -> None:
    """What Celery's ``Consumer.add_task_queue`` does for a queue it knows, without its INFO line."""
    declared = c.app.amqp.queues.select_add(c.app.amqp.queues[queue])
    if not c.task_consumer.consuming_from(queue):
        c.task_consumer.add_queue(declared)
        c.task_consumer.consume()


class BackpressureStep(bootsteps.StartStopStep):
    """The consumer's step: ``check`` on its timer, in the consumer's own thread (kombu's consumers
    are not shared between threads). The gates are made at the first start and kept over the
    consumer's restarts (a broker reconnection), so a stage paused before one is resumed after it:
    the restarted consumer reads its queues from Celery's selection, which a pause has left out."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.gates: list[Gate] | None = None
        self.timer: Any = None

    def start(self, c: Any) -> None:
        rt = get_runtime()
        if self.gates is None:
            consumed = frozenset(c.app.amqp.queues.consume_from)
            self.gates = gates(get_pipeline(), consumed, rt.settings.backpressure_limit)
            if self.gates:
                first = self.gates[0]
                log.info("backpressure: a stage stops taking messages at %s waiting for the stages after it and "
                         "resumes at %s (%s)", f"{first.limit:,}", f"{first.resume_at:,}",
                         "; ".join(f"{g.stage}: {', '.join(g.after)}" for g in self.gates))
        if self.gates:
            self.timer = c.timer.call_repeatedly(
                CHECK_EVERY, check, (self.gates, rt.redis, lambda q: stop_consuming(c, q), lambda q: consume(c, q)))

    def stop(self, c: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
