"""The thin Celery task around each stage: idempotence, retries, dead letters.

A stage is a function ``(job, runtime) -> None`` that does its work and hands the job id to the
next stage. This wrapper turns its errors into outcomes: a retryable error is retried after
exponential backoff with jitter (through worker/delayed.py, never a countdown held past the
visibility timeout), a permanent one (or retries exhausted, or an unexpected crash) ends the job
in the dead-letter store with a reason a person can act on.
"""

from __future__ import annotations

import functools
import importlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import redis
from celery import Task
from celery.exceptions import Reject
from celery.signals import task_failure, worker_init, worker_process_shutdown, worker_ready, worker_shutdown
from sqlalchemy.exc import DBAPIError

from worker import inflight, keys
from worker.app import app
from worker.delayed import DelayedJobs, ReleaseLoop
from worker.errors import IngestError, RetryableError
from worker.metrics import Tally, record_stage
from worker.queues import Priority, Queue
from worker.runtime import Runtime, get_runtime
from worker.registry import forget_read_ahead, read_entry_into
from worker.storage import TERMINAL_STATES
from worker.transport import Settlement, settles_in_pipeline

log = logging.getLogger("gleaner.pipeline")

BROKER_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, kombu.exceptions.OperationalError)
BROKER_RETRY_PAUSE = 1.0  # seconds
DB_RETRY_MAX = 10.0  # seconds between tries while the database is unreachable
MAX_DELIVERIES = 3  # a job whose stage killed its worker this often is poison, not bad luck

StageFn = Callable[[dict[str, Any], Runtime], None]
STAGE_FUNCTIONS: dict[str, StageFn] = {}  # stage name -> its function, as stage_task wrapped it
STAGES_READING_SOURCE: set[str] = set()  # stages that look up their job's source (see stage_task)

# The messages the stage running on this thread has asked to send (None outside a stage); a
# stage that sent none ended its job there.
_running = threading.local()
Outbox = list[tuple[str, str, int, int, dict[str, Any]]]
_tally = Tally()  # this process's stage-run metrics, on their way to Redis (worker/metrics.py)


def backoff_seconds(retries: int, retry_after: float | None, cap: float) -> float:
    """Exponential backoff with full jitter, or the server's Retry-After, never above cap."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return min(cap, random.uniform(0, 2.0 ** (retries + 1)))


def dead_letter(runtime: Runtime, job_id: str, stage: str, reason: str, *,
                status: int | None = None, attempts: int = 1) -> None:
    if not runtime.storage.fail_job(job_id, reason=reason, stage=stage, status=status, attempts=attempts):
        # A spare copy of the message failed after another copy finished the job (the page it
        # needed was already cleared away): the record stands, nothing failed.
        log.info("job %s already finished; a late %s copy's failure ignored (%s)", job_id, stage, reason)
        inflight.strike(runtime.redis, job_id)
        return
    log.warning("job %s failed in %s: %s", job_id, stage, reason)
    if stage in (Queue.SUMMARIZE.value, Queue.STORE.value):
        _forget_unstored_canonical(runtime, job_id)
    runtime.pages.discard(job_id)
    inflight.strike(runtime.redis, job_id)


def _forget_unstored_canonical(runtime: Runtime, job_id: str) -> None:
    """Dedupe made this job's article a canonical in the near-duplicate index; if it never got
    stored, later copies must not link to a record that does not exist."""
    from tasks.dedupe import near_duplicate_index
    from worker.errors import PayloadLostError

    try:
        draft = runtime.pages.get_draft(job_id, Queue.DEDUPE.value)
    except PayloadLostError:
        return
    if draft.record_id and draft.duplicate_of is None and runtime.storage.get_record(str(draft.record_id)) is None:
        near_duplicate_index(runtime).remove(str(draft.record_id))


def send(queue: Queue, job: dict[str, Any] | str, priority: int | None = None, *, retries: int = 0) -> None:
    """Hand a job to a stage's queue (by task name; routing picks the queue), keeping the
    job's priority so a manual URL stays ahead at every stage.

    Called by a running stage, the message goes out when the stage has finished, with the
    stage's own bookkeeping in the same Redis round trip (see ``_finish``)."""
    job_id = job if isinstance(job, str) else job["id"]
    if priority is None:
        priority = Priority.MANUAL.value if isinstance(job, str) else job.get("priority", 0)
    # The job's category and priority ride along, so the middle stages need no database lookup.
    fields = {"priority": priority} if isinstance(job, str) else {"priority": priority, "category": job["category_id"]}
    outbox = getattr(_running, "outbox", None)
    if outbox is not None:
        outbox.append((queue.value, job_id, priority, retries, fields))
        return
    sent = time.time()
    # Written down before it goes out: a message lost on the way is then found by the sweeper.
    inflight.mark_sent(get_runtime().redis, job_id, queue.value, priority, sent)
    _publish(queue.value, job_id, priority, retries, sent, fields)


def send_many(queue: Queue, job_ids: list[str], priority: int) -> None:
    """``send`` for a batch from outside a stage (enqueueing): the ledger entries go to Redis in
    one round trip, then the messages."""
    sent = time.time()
    pipe = get_runtime().redis.pipeline(transaction=False)
    for job_id in job_ids:
        inflight.mark_sent(pipe, job_id, queue.value, priority, sent)
    pipe.execute()
    with app.producer_or_acquire() as producer:  # one producer for the batch, not one per message
        for job_id in job_ids:
            _publish(queue.value, job_id, priority, 0, sent, {"priority": priority}, producer=producer)


def _publish(stage: str, job_id: str, priority: int, retries: int, sent: float, fields: dict[str, Any],
             producer: Any = None, into_pipeline: bool = False) -> None:
    args, kwargs = [job_id], {"sent": sent, **fields}
    # The reprs Flower shows, made by repr (the arguments are plain JSON values) rather than by
    # Celery's saferepr, and no result handle kept on the sending task: together 15% of a
    # send's CPU, four sends an article.
    options: dict[str, Any] = {}
    if into_pipeline:
        # Queued onto the stage's pipeline (worker/transport.py), so there is no network to
        # retry over; and the anonymous exchange needs no declaring (kombu's cached declare
        # check alone is a fifth of a send).
        options = {"retry": False, "declare": []}
    app.send_task(f"gleaner.{stage}", args=args, kwargs=kwargs, priority=priority, retries=retries,
                  producer=producer, argsrepr=repr(args), kwargsrepr=repr(kwargs), add_to_parent=False, **options)


def _send_again(stage: str, job_id: str, priority: int, retries: int = 0) -> None:
    """For the release loop (a retry that is due) and the sweeper (a lost message)."""
    send(Queue(stage), job_id, priority, retries=retries)


def _sweep_every(runtime: Runtime) -> float:
    return runtime.settings.visibility_timeout / 4


def _sweep() -> None:
    runtime = get_runtime()
    grace = 2.0 * runtime.settings.visibility_timeout  # past kombu's own restore of a killed worker's tasks
    inflight.sweep_once(runtime.redis, _send_again, grace=grace, interval=_sweep_every(runtime))


_release_loop: ReleaseLoop | None = None


@worker_init.connect
def _limit_malloc_arenas(**_: Any) -> None:
    # Before the pool starts its threads; see worker/memory.py.
    from worker.memory import limit_malloc_arenas

    limit_malloc_arenas()


@worker_ready.connect
def _start_release_loop(**_: Any) -> None:
    global _release_loop
    runtime = get_runtime()
    _release_loop = ReleaseLoop(runtime.redis, _send_again, sweep=_sweep, sweep_every=_sweep_every(runtime))
    _release_loop.start()


@worker_shutdown.connect
def _stop_release_loop(**_: Any) -> None:
    if _release_loop is not None:
        _release_loop.stop()
    _tally.flush(get_runtime().redis)


@worker_process_shutdown.connect
def _flush_metrics(**_: Any) -> None:
    _tally.flush(get_runtime().redis)  # a prefork pool's child counts its own runs


def _run(fn: StageFn, task: Task, stage: str, job: dict[str, Any], runtime: Runtime, limit: int,
         sent: float | None) -> str:
    """Run one stage on one job; return the outcome for the metrics: success, failure or retry."""
    job_id = job["id"]
    attempts = task.request.retries + 1
    pipe = runtime.redis.pipeline(transaction=False)  # one round trip for the start's bookkeeping
    pipe.incr(keys.deliveries(job_id, stage))
    pipe.expire(keys.deliveries(job_id, stage), runtime.settings.page_ttl)
    inflight.mark_started(pipe, job_id, stage, job.get("priority", 0), sent)
    # What the stage will read first, in the same trip: its input, and its source's entry.
    reads = [(len(pipe.command_stack), runtime.pages.prefetch_into(pipe, job_id, stage))]
    if stage in STAGES_READING_SOURCE and job.get("category_id"):
        reads.append((len(pipe.command_stack), read_entry_into(pipe, job["category_id"])))
    results = pipe.execute()
    started = results[0]
    for at, accept in reads:
        if accept is not None:
            accept(results[at])
    if started > MAX_DELIVERIES:
        dead_letter(runtime, job_id, stage,
                    f"{stage} stage started {started - 1} times without finishing (a crash or kill each time)")
        return "failure"
    try:
        fn(job, runtime)
    except RetryableError as exc:
        if task.request.retries >= limit:
            dead_letter(runtime, job_id, stage, f"{exc.reason} (gave up after {attempts} attempts)",
                        status=exc.status, attempts=attempts)
            return "failure"
        delay = backoff_seconds(task.request.retries, exc.retry_after, runtime.settings.retry_backoff_max)
        log.info("job %s: %s; retry %d in %.1fs", job_id, exc.reason, attempts, delay)
        runtime.redis.delete(keys.deliveries(job_id, stage))
        DelayedJobs(runtime.redis).add(stage, job_id, priority=job.get("priority", 0), retries=attempts, delay=delay)
        return "retry"
    except IngestError as exc:  # permanent, or a new subclass nobody classified: no retry
        dead_letter(runtime, job_id, stage, exc.reason, status=exc.status, attempts=attempts)
        return "failure"
    except (*BROKER_DOWN, DBAPIError):
        raise  # infrastructure, not the page: the caller retries without spending an attempt
    except Exception as exc:  # noqa: BLE001 - a crash must end somewhere visible
        log.exception("job %s crashed in %s", job_id, stage)
        dead_letter(runtime, job_id, stage, f"internal error in {stage}: {type(exc).__name__}: {exc}",
                    attempts=attempts)
        return "failure"
    return "success"


def _finish(runtime: Runtime, stage: str, job_id: str, outcome: str, seconds: float, outbox: Outbox,
            payloads: list | None = None, task_id: str | None = None) -> None:
    """The end's bookkeeping, the stage's onward messages and its own message's ack in one
    round trip (see worker/transport.py; elsewhere the messages follow the round trip).

    If Redis fails before the onward messages are written down and sent, the error goes up and
    the message is handed back: the stage runs again, which is harmless (stages are idempotent),
    where carrying on would strand the job. With nothing to send, a Redis failure here is only
    logged: the stage's work is done and running it again would gain nothing."""
    sends = outbox if outcome == "success" else []
    now = time.time()
    pipe = runtime.redis.pipeline(transaction=False)
    if payloads and outcome != "retry":
        # The next stage's input, before its message; or the job's payloads cleared once it
        # ended (stored, or dead-lettered: a failed stage's partial writes come before the
        # clearing, so nothing is left). A retry runs the stage again and writes them then.
        runtime.pages.write_into(pipe, payloads)
    pipe.delete(keys.deliveries(job_id, stage))
    for next_stage, next_job, priority, _retries, _fields in sends:
        inflight.mark_sent(pipe, next_job, next_stage, priority, now)
    if outcome == "success" and not sends:
        inflight.strike(pipe, job_id)  # the stage ended the job (stored, or unchanged since last time)
    _tally.add(stage, outcome, seconds)
    _tally.flush_into(pipe)  # a second's worth of every stage's counts, now and then
    settlement = None
    if _settles_in_pipeline():
        with Settlement(pipe, task_id) as settlement:  # after the ledger: written down, then sent
            for next_stage, next_job, priority, retries, fields in sends:
                _publish(next_stage, next_job, priority, retries, now, fields, into_pipeline=True)
        sends_left: Outbox = []
    else:
        sends_left = sends
    try:
        pipe.execute()
    except redis.RedisError as exc:
        if sends:
            raise
        log.warning("could not record the end of %s for job %s: %s", stage, job_id, exc)
    else:
        if settlement is not None:
            settlement.confirm()
    for next_stage, next_job, priority, retries, fields in sends_left:
        _publish(next_stage, next_job, priority, retries, now, fields)


@functools.cache
def _settles_in_pipeline() -> bool:
    return settles_in_pipeline(app)


def _load_job(runtime: Runtime, stage: str, job_id: str, fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job as the stage needs it: from its message when it carries enough, else its row.
    None when there is nothing to do (unknown, or already finished)."""
    if fields is not None:
        return {"id": job_id, "state": "queued", **fields}
    job = runtime.storage.get_job(job_id)
    if job is None:
        log.error("job %s is unknown to the database; dropping its %s message", job_id, stage)
    elif job["state"] in TERMINAL_STATES:
        log.info("job %s already %s; %s redelivery ignored", job_id, job["state"], stage)
        job = None
    if job is None:
        inflight.strike(runtime.redis, job_id)
    return job


def _attempt(task: Task, fn: StageFn, stage: str, job_id: str, runtime: Runtime, limit: int,
             sent: float | None, fields: dict[str, Any] | None) -> None:
    _running.outbox = []
    try:
        job = _load_job(runtime, stage, job_id, fields)
        if job is None:
            return
        began = time.perf_counter()
        with runtime.pages.deferred() as payloads:
            outcome = _run(fn, task, stage, job, runtime, limit, sent)
        _finish(runtime, stage, job_id, outcome, time.perf_counter() - began, _running.outbox, payloads,
                task.request.id)
    except DBAPIError as exc:
        # The database is down, not the page: try the same stage again shortly, without
        # spending one of the job's attempts. The stages are idempotent, so a half-done
        # store (record written, job not yet closed) is simply done again.
        delay = max(1.0, backoff_seconds(0, None, DB_RETRY_MAX))
        log.warning("database unavailable in %s for job %s (%s); again in %.1fs", stage, job_id,
                    type(exc).__name__, delay)
        priority = (task.request.delivery_info or {}).get("priority") or 0
        DelayedJobs(runtime.redis).add(stage, job_id, priority=priority, retries=task.request.retries, delay=delay)
        runtime.redis.delete(keys.deliveries(job_id, stage))
    finally:
        _running.outbox = None
        forget_read_ahead()


def stage_task(queue: Queue, *, max_retries: int | None = None, needs_row: bool = True,
               reads_source: bool = False) -> Callable[[StageFn], Task]:
    """Wrap a stage function as its Celery task. ``needs_row``: read the job's row before each
    run (its URL, and whether it already finished) rather than trust the message's fields. Fetch
    does, so a redelivered finished job is not fetched again; the later stages need only the
    in-flight page or draft, which a finished job no longer has (a late copy then ends quietly,
    see ``dead_letter``), and the store's upsert makes a second store change nothing.
    ``reads_source``: the stage looks up its job's source entry (rules, politeness); the wrapper
    reads it in its start round trip."""
    stage = queue.value

    def decorate(fn: StageFn) -> Task:
        STAGE_FUNCTIONS[stage] = fn
        if reads_source:
            STAGES_READING_SOURCE.add(stage)
        @app.task(name=f"gleaner.{stage}", bind=True, max_retries=None)
        def run(self: Task, job_id: str, sent: float | None = None, category: str | None = None,
                priority: int | None = None, **_: Any) -> None:
            # **_ lets a newer producer add arguments without breaking older workers mid-deploy.
            runtime = get_runtime()
            limit = runtime.settings.fetch_retries if max_retries is None else max_retries
            fields = None
            if not needs_row and category is not None and priority is not None:
                fields = {"category_id": category, "priority": priority}
            try:
                _attempt(self, fn, stage, job_id, runtime, limit, sent, fields)
            except BROKER_DOWN as exc:
                # Redis is unreachable, so nothing can be recorded: hand the message back
                # (or, if even that fails, leave it unacked for redelivery after the
                # visibility timeout). A pause keeps a flapping Redis from spinning us.
                log.warning("Redis unavailable in %s for job %s (%s); message handed back", stage, job_id, exc)
                time.sleep(BROKER_RETRY_PAUSE)
                raise Reject(str(exc), requeue=True) from exc

        return run

    return decorate


def run_inline(job: dict[str, Any], runtime: Runtime) -> str | None:
    """Run a job through the stages in this thread, each handing on to the next as ``send``
    would, without the broker or the wrapper's bookkeeping (ledger, delivery counts, metrics,
    retries): the stages' own work and nothing else. For the load benchmark's in-process
    baseline. Returns the stage that raised an IngestError, or None."""
    if len(STAGE_FUNCTIONS) < len(Queue):
        from worker.app import TASK_MODULES

        for module in TASK_MODULES:
            importlib.import_module(module)  # each stage registers its function on import
    stage: str | None = Queue.FETCH.value
    job = dict(job)
    while stage is not None:
        _running.outbox = []
        try:
            with runtime.pages.deferred() as payloads:  # as under the wrapper: one round trip
                STAGE_FUNCTIONS[stage](job, runtime)
        except IngestError:
            return stage
        finally:
            outbox, _running.outbox = _running.outbox, None
        runtime.pages.write_now(payloads)
        stage = outbox[0][0] if outbox else None
    return None


@task_failure.connect
def _dead_letter_killed_tasks(sender: Task | None = None, args: Any = None, exception: BaseException | None = None,
                              **_: Any) -> None:
    """A task killed by the hard time limit never reaches the wrapper's handlers; the worker's main
    process reports it here, and the job ends in the dead-letter store instead of nowhere."""
    name = getattr(sender, "name", "") or ""
    if not name.startswith("gleaner.") or not args:
        return
    stage = name.split(".", 1)[1]
    if stage not in Queue.names():
        return
    runtime = get_runtime()
    job = runtime.storage.get_job(args[0])
    if job is not None and job["state"] not in TERMINAL_STATES:
        dead_letter(runtime, job["id"], stage, f"{stage} stage killed: {type(exception).__name__}: {exception}")
        record_stage(runtime.redis, stage, "failure", 0.0)
