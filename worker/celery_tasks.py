"""The Celery tasks: one per pipeline stage, made from the table (worker/pipeline.py), and the two
that poll sources; and the worker hooks around them.

A stage's task only turns a message into a Job and hands it to the runner (worker/runner.py), which
does the stage's bookkeeping; if Redis is unreachable the message is handed back. Every task has a
stable name and takes ``**kwargs``, so a newer producer can add a field without breaking older
workers mid-deploy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import kombu.exceptions
from celery import Task, bootsteps
from celery.exceptions import Reject
from celery.signals import (celeryd_after_setup, task_failure, task_postrun, task_prerun, worker_init,
                            worker_process_init, worker_process_shutdown)
from sqlalchemy.exc import DBAPIError

from tasks.discovery.run import poll_due, run_source
from worker import inflight, runner
from worker.app import app
from worker.backoff import retry_delay
from worker.backpressure import BackpressureStep
from worker.delayed import ReleaseLoop
from worker.dispatch import Dispatcher, send
from worker.feed import Feeder
from worker.job import Job, Message
from worker.memory import freeze_start_up_objects, limit_malloc_arenas
from worker.metrics import IdleFlush
from worker.pipeline import Pipeline, Stage, get_pipeline
from worker.queues import Priority, task_name
from worker.runtime import Runtime, get_runtime
from worker.settings import get_settings
from worker.storage import TERMINAL_STATES
from worker.submit import submit
from worker.timelimits import TimeLimits, runs_tasks_in_main_thread

log = logging.getLogger("gleaner.tasks")

BROKER_DOWN = (*runner.REDIS_DOWN, kombu.exceptions.OperationalError)
BROKER_RETRY_PAUSE = 1.0  # seconds


def _job(pipeline: Pipeline, stage: Stage, job_id: str, fields: dict[str, Any], rt: Runtime) -> Job | None:
    """The job as the stage needs it: from its message when that carries enough and the stage
    needs no row (the middle stages: no database lookup), else from its row. None when there is
    nothing to do: the job is unknown, or already finished (a redelivered copy)."""
    if not stage.reads_row:
        job = Job.from_fields(job_id, fields)
        if job is not None:
            return job
    row = rt.storage.get_job(job_id)
    if row is None:
        log.error("job %s is unknown to the database; dropping its %s message", job_id, stage.name)
    elif row["state"] in TERMINAL_STATES:
        log.info("job %s already %s; %s redelivery ignored", job_id, row["state"], stage.name)
        row = None
    if row is None:
        inflight.strike(rt.redis, job_id)
        return None
    return Job.from_row(row, priority=fields.get("priority"), attempts=int(fields.get("attempts") or 0),
                        waiting_since=fields.get("waiting_since"))


def run_message(pipeline: Pipeline, stage: Stage, job_id: str, sent: float | None, fields: dict[str, Any],
                rt: Runtime, sender: runner.Sender) -> None:
    """What a stage's task does with its message: find the job, run the stage with its bookkeeping.
    Raises only BROKER_DOWN (the caller hands its message back)."""
    try:
        job = _job(pipeline, stage, job_id, fields, rt)
    except DBAPIError as exc:  # the database is down while finding the job: as in the runner
        delay = retry_delay(1, None, base=runner.DB_RETRY_BASE, cap=runner.DB_RETRY_MAX)
        log.warning("database unavailable in %s for job %s (%s); again in %.1fs", stage.name, job_id,
                    type(exc).__name__, delay)
        runner.later(rt, Message(stage.name, job_id, fields), delay)
        return
    if job is not None:
        runner.run_stage(pipeline, stage, job, rt, sender, sent=sent)


class RunThrough:
    """The runner's Sender inside a worker: a message for a stage whose queue this worker consumes
    (``served``) is run at once, in this task, as its own task would run it; the others go to the
    broker (``dispatcher``). The runner runs a stage's one onward message itself when its stage is
    ``through`` (worker/runner.py: its start rides in the end round trip of the stage before); one
    that reaches ``send`` is run here.

    Sending a message to our own queues would cost a publish, a pop, the pool's hand-over to a
    child, a task's set-up and an acknowledgement, per stage and article, to reach a process like
    this one. Every stage's bookkeeping stays as it is (the ledger, the delivery count, the payload
    between stages, the metrics), so a job looks the same to the sweeper, the dashboard and a
    later stage on another machine. The message that started the task is acknowledged when the
    whole run ends (late acks): a worker killed in a later stage gets it back, and the stages before
    run again (they are idempotent) while the later stage's delivery count keeps growing, so a page
    that kills its worker is still dead-lettered at the stage that kills it."""

    def __init__(self, pipeline: Pipeline, rt: Runtime, dispatcher: runner.Sender, served: frozenset[str]) -> None:
        self.pipeline, self.rt, self.dispatcher, self.served = pipeline, rt, dispatcher, served
        self.through = served

    def send(self, messages: Sequence[Message], sent: float) -> None:
        away = [m for m in messages if m.stage not in self.served]
        if away:
            self.dispatcher.send(away, sent)
        for message in messages:
            if message.stage in self.served:
                run_message(self.pipeline, self.pipeline.stage(message.stage), message.job_id, sent,
                            dict(message.fields), self.rt, self)


def served_queues(task: Task, pipeline: Pipeline, stage: Stage, rt: Runtime) -> frozenset[str]:
    """The stages a task of ``stage`` may run through: those whose queues this worker consumes (its
    ``-Q``, less a queue its consumer has paused, worker/backpressure.py, as a threads pool's tasks
    see it) and that do CPU work, when ``stage`` does CPU work too, the task runs in a worker and
    run-through is on; else none (an eagerly applied task, as in tests, hands every message to the
    broker). A stage that waits on the network always hands on through the broker: its task's time
    budget is the wait's (``GLEANER_TOTAL_TIMEOUT`` fits inside the task's time limit), and the CPU
    stages belong to a process pool."""
    if task.request.is_eager or not rt.settings.run_through or stage.io_bound:
        return frozenset()
    # A copy first, in one step: the consumer's thread pauses and resumes queues (worker/backpressure.py).
    consumed = frozenset(task.app.amqp.queues.consume_from)
    return frozenset(q for q in consumed if q in pipeline and not pipeline.stage(q).io_bound)


def stage_task(pipeline: Pipeline, stage: Stage, dispatcher: Dispatcher) -> Task:
    @app.task(name=task_name(stage.name), bind=True, max_retries=None)
    def run(self: Task, job_id: str, sent: float | None = None, **fields: Any) -> None:
        rt = get_runtime()
        sender = RunThrough(pipeline, rt, dispatcher, served_queues(self, pipeline, stage, rt))
        try:
            run_message(pipeline, stage, job_id, sent, fields, rt, sender)
        except BROKER_DOWN as exc:
            # Redis is unreachable, so nothing can be recorded: hand the message back (or, if even
            # that fails, leave it unacked for redelivery after the visibility timeout). A pause
            # keeps a flapping Redis from spinning us.
            log.warning("Redis unavailable in %s for job %s (%s); message handed back", stage.name, job_id, exc)
            time.sleep(BROKER_RETRY_PAUSE)
            raise Reject(str(exc), requeue=True) from exc

    return run


PIPELINE = get_pipeline()
STAGE_TASKS = {stage.name: stage_task(PIPELINE, stage, Dispatcher(app)) for stage in PIPELINE}


def _enqueue(urls: Sequence[str], category: str, priority: Priority) -> list[str]:
    return submit(get_runtime().storage, urls, category, priority)


@app.task(name="gleaner.poll_sources", ignore_result=True)
def poll_sources(**_: Any) -> int:
    return len(poll_due(get_runtime(), app.send_task))


def _feeder() -> Feeder:
    rt = get_runtime()
    return Feeder(rt.storage, rt, Dispatcher(app), PIPELINE)


@app.task(name="gleaner.discover", ignore_result=True)
def discover(key: str, slot: int | None = None, **_: Any) -> None:
    run_source(key, slot, get_runtime(), _enqueue, _feeder)


# --- the worker's hooks ----------------------------------------------------------------------------

def _resend(stage: str, job_id: str, priority: int) -> None:
    """For the sweeper: a lost message, sent again with what the ledger knows (the stage then reads
    the job's row for the rest)."""
    send([Message(stage, job_id, {"priority": priority})])


def _sweep_every(rt: Runtime) -> float:
    return rt.settings.visibility_timeout / 4


def _sweep() -> None:
    rt = get_runtime()
    grace = 2.0 * rt.settings.visibility_timeout  # past kombu's own restore of a killed worker's tasks
    inflight.sweep_once(rt.redis, _resend, grace=grace, interval=_sweep_every(rt))


class ReleaseLoopStep(bootsteps.StartStopStep):
    """The worker's main process, beside its tasks: the release loop (due retries, and the
    in-flight ledger's sweep for lost messages); its metrics sent when no task carries them (a
    threads or solo pool runs its tasks here); at shutdown, the last of them."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.loop: ReleaseLoop | None = None
        self.metrics: IdleFlush | None = None

    def start(self, worker: Any) -> None:
        rt = get_runtime()
        self.loop = ReleaseLoop(rt.redis, lambda message: send([message]), sweep=_sweep, sweep_every=_sweep_every(rt))
        self.loop.start()
        self.metrics = IdleFlush(rt.tally, rt.redis).start()

    def stop(self, worker: Any) -> None:
        if self.loop is not None:
            self.loop.stop()
        if self.metrics is not None:
            self.metrics.stop()
        rt = get_runtime()
        rt.tally.flush(rt.redis)


app.steps["worker"].add(ReleaseLoopStep)
app.steps["consumer"].add(BackpressureStep)


@worker_init.connect
def _limit_malloc_arenas(**_: Any) -> None:
    limit_malloc_arenas()  # before the pool starts its threads; see worker/memory.py


@worker_init.connect
def _time_limits_in_main_thread(sender: Any = None, **_: Any) -> None:
    # Celery enforces the time limits only in a prefork pool; a solo pool's tasks run in this
    # process's main thread, where the worker arms them itself around each task (worker/timelimits.py).
    if sender is not None and runs_tasks_in_main_thread(sender.pool_cls):
        limits = TimeLimits(app.conf.task_soft_time_limit, app.conf.task_time_limit).install()
        task_prerun.connect(limits.arm, weak=False)
        task_postrun.connect(limits.disarm, weak=False)


def warm_stages(pipeline: Pipeline, served: Sequence[str]) -> list[str]:
    """Run the warm-ups of the stages whose queues are ``served``; the names of those warmed."""
    warmed = []
    for stage in pipeline:
        if stage.warm is not None and stage.name in served:
            began = time.process_time()
            stage.warm()
            log.info("warmed %s in %.1f s of CPU", stage.name, time.process_time() - began)
            warmed.append(stage.name)
    return warmed


# The loggers of the lines a worker writes for every task at INFO: Celery's "Task ... received" (its
# consumer's strategy) and "Task ... succeeded in ..." (the task's trace), and the HTTP client's
# "HTTP Request: GET ... 200 OK" (a fetch). Failures are logged at WARNING or ERROR and always shown.
TASK_LINE_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "httpx")


def quiet_task_lines(log_tasks: bool) -> bool:
    """Leave the per-task INFO lines out, unless ``log_tasks`` (``GLEANER_LOG_TASKS``) or the worker
    logs at DEBUG; whether they were left out. Celery reads once, when it builds its consumer and
    each task's tracer, whether INFO is on: so called before those, it saves their formatting too."""
    if log_tasks or logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        return False
    for name in TASK_LINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return True


@celeryd_after_setup.connect
def _task_lines(**_: Any) -> None:
    # In the worker's main process, its logging set up, before its consumer starts; a prefork pool's
    # processes are forked with the loggers' levels as they are here.
    quiet_task_lines(get_settings().log_tasks)


@celeryd_after_setup.connect
def _warm(instance: Any = None, **_: Any) -> None:
    # In the worker's main process, once its -Q is read and its logging set up, before its pool
    # starts: a prefork pool's processes are forked from it and share what it loaded, frozen out
    # of the garbage collector's passes (worker/memory.py). The stages' modules are imported here
    # too (the table names them: worker/pipeline.py), for the same sharing.
    PIPELINE.load()
    warm_stages(PIPELINE, list(instance.app.amqp.queues.consume_from) if instance is not None else [])
    log.info("froze %d start-up objects out of the garbage collector's passes", freeze_start_up_objects())


@task_postrun.connect
def _trim_heap(**_: Any) -> None:
    get_runtime().heap.after_task()  # freed memory back to the OS, at most once a second; see worker/memory.py


@worker_process_init.connect
def _send_idle_metrics(**_: Any) -> None:
    rt = get_runtime()  # a prefork pool's child: its own tally, sent when no task of its own carries it
    IdleFlush(rt.tally, rt.redis).start()


@worker_process_shutdown.connect
def _flush_metrics(**_: Any) -> None:
    get_runtime().tally.flush(get_runtime().redis)  # a prefork pool's child counts its own runs


@task_failure.connect
def _dead_letter_killed_tasks(sender: Task | None = None, args: Any = None, exception: BaseException | None = None,
                              **_: Any) -> None:
    """A task killed by the hard time limit never reaches the runner's handlers; the worker's main
    process reports it here, and the job ends in the dead-letter store instead of nowhere. The stage
    it died in is the ledger's (a task runs on through the stages its worker serves, RunThrough),
    else the task's own."""
    name = getattr(sender, "name", "") or ""
    stage = name.split(".", 1)[1] if name.startswith("gleaner.") else ""
    if stage not in PIPELINE or not args:
        return
    rt = get_runtime()
    row = rt.storage.get_job(args[0])
    if row is not None and row["state"] not in TERMINAL_STATES:
        entry = inflight.entry(rt.redis, args[0])
        if entry is not None and entry.stage in PIPELINE:
            stage = entry.stage
        runner.dead_letter(PIPELINE, PIPELINE.stage(stage), Job.from_row(row), rt,
                           f"{stage} stage killed: {type(exception).__name__}: {exception}")
