"""Runs one stage on one job: the start round trip, the stage function, the end round trip.

This is where a stage's bookkeeping lives, for every stage alike (the stage functions in tasks/
only do their work, see worker/stage.py):

1. **Start**, one Redis round trip: count the delivery (a page that kills its worker three times
   is dead-lettered, not run a fourth time), mark the job started in the in-flight ledger
   (worker/inflight.py), and read what the stage reads, as the table (worker/pipeline.py)
   declares: its input payload, and its job's source entry.
2. **The stage**, called with a StageContext. A returned HandOn or Ended is a success; a
   RetryableError waits out its backoff in the delayed set (worker/delayed.py) and comes back,
   unless the job's attempts are spent; any other IngestError, or a crash, dead-letters the job
   (its reason stored for a person to read), after undoing what earlier stages did outside their
   payloads (the table's ``undo``).
3. **End**, one Redis round trip, in this order: the output payload and the writes riding with it
   (or, when the job ended, its payloads cleared); the in-flight ledger (the next stage's entry,
   the retry's, or the job struck off); and this process's metrics tally, now and then. Then,
   once that round trip has succeeded, the onward message (``Sender.send``). So a message never
   goes out before the payload it points to and the ledger entry that would find it if it were
   lost, and a worker killed before the round trip leaves the job to run again from its last
   stage. If Redis fails there, or the send fails, with something still to send, the error goes
   up and the caller hands its message back to run the stage again (stages are idempotent); with
   nothing to send it is only logged. The broker acknowledges the stage's own message after the
   runner returns (late acks).

A worker runs the next stage at once when it serves that stage's queue (run-through: the Sender's
``through``, worker/celery_tasks.py). Then the next stage's start rides in this stage's end round
trip, after everything above, and its input is the payload just written, handed over as it is
instead of read back and decoded: one round trip a stage boundary instead of two, and the page's
draft read from Redis once, by the stage a message brought it to.

``send`` puts jobs into a stage's queue from outside a stage (enqueueing, a due retry, the
sweeper, a page entering at a later stage with its input). ``run_inline`` runs a job through
every stage in this thread, without the broker or the bookkeeping: the load benchmark's baseline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from sqlalchemy.exc import DBAPIError

from worker import delayed, inflight, keys
from worker.backoff import retry_delay
from worker.errors import HostBusyError, IngestError, PayloadLostError, RetryableError
from worker.job import Job, Message
from worker.pipeline import Pipeline, Stage
from worker.registry import read_source_into, source_from, source_of
from worker.runtime import Runtime
from worker.stage import Ended, HandOn, StageContext, Write

log = logging.getLogger("gleaner.runner")

MAX_DELIVERIES = 3  # a job whose stage killed its worker this often is poison, not bad luck
DB_RETRY_BASE = 2.0  # seconds: while the database is unreachable a job comes back after 1-2 s
DB_RETRY_MAX = 10.0  # seconds
SEND_BATCH = 500  # messages whose ledger entries go to Redis in one round trip
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Sender(Protocol):
    """How messages reach their stages: through the broker (worker/dispatch.py: as Celery tasks), or,
    for the stages a worker serves itself, run at once in its task (worker/celery_tasks.py,
    RunThrough)."""

    # Stages whose messages from a stage this task runs are run on in the same task, by the runner,
    # each started in the end round trip of the stage before (run-through); empty for the broker.
    through: frozenset[str]

    def send(self, messages: Sequence[Message], sent: float) -> None:
        """Put ``messages`` on their stages' queues; their ledger entries are already written."""
        ...


_UNREAD = object()  # a _Started whose input is still the raw reply, to decode


@dataclass
class _Started:
    deliveries: int
    input: Any = None  # the raw reply of the input read
    source: Any = None  # the raw reply of the source read
    value: Any = _UNREAD  # the input itself, when the stage before in this task handed it over


@dataclass
class _End:
    """What the end round trip writes."""

    outcome: str  # for the metrics: success, failure or retry
    handed_on: HandOn[Any] | None = None
    ended: bool = False  # the job ended here (stored, unchanged, duplicate, dead-lettered)
    writes: tuple[Write, ...] = ()
    retry: tuple[Message, float] | None = None  # the message to send again, and after how long
    onward: list[Message] = field(default_factory=list)


def run_stage(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, sender: Sender, *,
              sent: float | None = None) -> str:
    """Run ``stage`` on ``job`` with its bookkeeping, and on through the next stages in
    ``sender.through``; return the last stage's outcome for the metrics (success, failure or
    retry). Raises only what is not the page's fault: Redis unreachable."""
    began = time.perf_counter()
    started = _start(pipeline, stage, job, rt, sent)
    while True:
        try:
            end = _run(pipeline, stage, job, rt, started)
        except DBAPIError as exc:
            # The database is down, not the page: the same stage again shortly, without spending one
            # of the job's attempts. Stages are idempotent, so a half-done store is simply done again.
            delay = retry_delay(1, None, base=DB_RETRY_BASE, cap=DB_RETRY_MAX)
            log.warning("database unavailable in %s for job %s (%s); again in %.1fs", stage.name, job.id,
                        type(exc).__name__, delay)
            end = _End("retry", retry=(job.to(stage.name), delay))
        following = _through(pipeline, end, sender)
        started = _finish(pipeline, stage, job, rt, sender, end, time.perf_counter() - began, following)
        if following is None or started is None:
            return end.outcome
        began = time.perf_counter()
        stage, job = following


def _through(pipeline: Pipeline, end: _End, sender: Sender) -> tuple[Stage, Job] | None:
    """The stage and job this task runs next, if its one onward message is for a stage the sender
    runs through (and that takes its job from the message, as the middle stages do)."""
    if len(end.onward) != 1 or end.onward[0].stage not in sender.through:
        return None
    message = end.onward[0]
    stage = pipeline.stage(message.stage)
    job = Job.from_fields(message.job_id, message.fields)
    return None if stage.reads_row or job is None else (stage, job)


def _start(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, sent: float | None) -> _Started:
    pipe = rt.redis.pipeline(transaction=False)
    reads = _start_into(pipe, pipeline, stage, job, rt, sent, read_input=True)
    return _started(pipe.execute(), reads)


def _start_into(pipe: redis.client.Pipeline, pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime,
                sent: float | None, *, read_input: bool) -> list[str]:
    """Queue the start round trip's commands onto ``pipe``; the names of the reads among them, last."""
    pipe.incr(keys.deliveries(job.id, stage.name))
    pipe.expire(keys.deliveries(job.id, stage.name), rt.settings.page_ttl)
    inflight.mark_started(pipe, job.id, stage.name, job.priority, sent)
    reads: list[str] = []
    if read_input and stage.input is not None:
        stage.input.read(pipe, pipeline.input_key(stage.name, job.id))
        reads.append("input")
    if stage.reads_source and job.category_id:
        read_source_into(pipe, job.category_id)
        reads.append("source")
    return reads


def _started(results: list[Any], reads: list[str], value: Any = _UNREAD) -> _Started:
    """A start's replies (``results``: the start's own, first its delivery count)."""
    read = dict(zip(reads, results[len(results) - len(reads):]))
    return _Started(deliveries=int(results[0]), input=read.get("input"), source=read.get("source"), value=value)


def _run(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, started: _Started) -> _End:
    if started.deliveries > MAX_DELIVERIES:
        return _dead(pipeline, stage, job, rt, f"{stage.name} stage started {started.deliveries - 1} times "
                                               "without finishing (a crash or kill each time)")
    try:
        payload = None
        if stage.input is not None:
            payload = started.value if started.value is not _UNREAD else stage.input.decode(started.input)
        source = source_from(started.source, job.category_id) if stage.reads_source else None
        outcome = stage.run(StageContext(job=job, input=payload, source=source, rt=rt))
        if not isinstance(outcome, (HandOn, Ended)):
            raise TypeError(f"returned {type(outcome).__name__}, not HandOn or Ended")
        if isinstance(outcome, HandOn) and stage.output is None:
            raise TypeError("handed the job on, but it is the last stage")
    except RetryableError as exc:
        return _retry(pipeline, stage, job, rt, exc)
    except IngestError as exc:  # permanent, or a new subclass nobody classified: no retry
        return _dead(pipeline, stage, job, rt, exc.reason, status=exc.status)
    except (*REDIS_DOWN, DBAPIError):
        raise  # infrastructure, not the page: retried without spending an attempt
    except Exception as exc:  # noqa: BLE001 - a crash must end somewhere visible
        log.exception("job %s crashed in %s", job.id, stage.name)
        return _dead(pipeline, stage, job, rt, f"internal error in {stage.name}: {type(exc).__name__}: {exc}")
    if isinstance(outcome, HandOn):
        nxt = pipeline.next(stage.name)
        return _End("success", handed_on=outcome, writes=outcome.writes, onward=[job.to(nxt.name)])
    return _End("success", ended=True, writes=outcome.writes)


def _retry(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, exc: RetryableError) -> _End:
    """The one attempt counter: a failed attempt spends one of ``fetch_retries``; a busy host is
    not a failure, and may keep a job waiting up to ``host_busy_timeout`` in all."""
    s = rt.settings
    if isinstance(exc, HostBusyError):
        now = time.time()
        since = now if job.waiting_since is None else job.waiting_since
        if now - since > s.host_busy_timeout:
            return _dead(pipeline, stage, job, rt, f"{exc.reason} (still busy after waiting {now - since:.0f}s)",
                         status=exc.status)
        again, delay = job.replace(waiting_since=since), exc.retry_after or 1.0
    else:
        failed = job.attempts + 1
        if failed > s.fetch_retries:
            return _dead(pipeline, stage, job, rt, f"{exc.reason} (gave up after {failed} attempts)",
                         status=exc.status)
        again = job.replace(attempts=failed)
        delay = retry_delay(failed, exc.retry_after, base=s.retry_backoff_base, cap=s.retry_backoff_max)
    log.info("job %s: %s; %s again in %.1fs", job.id, exc.reason, stage.name, delay)
    return _End("retry", retry=(again.to(stage.name), delay))


def _dead(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, reason: str, *,
          status: int | None = None) -> _End:
    """Dead-letter the job in the database; the end round trip clears its payloads and ledger entry."""
    if not rt.storage.fail_job(job.id, reason=reason, stage=stage.name, status=status, attempts=job.attempts + 1):
        # A spare copy of the message failed after another copy finished the job (the payload it
        # needed was already cleared away): the record stands, nothing failed.
        log.info("job %s already finished; a late %s copy's failure ignored (%s)", job.id, stage.name, reason)
        return _End("failure", ended=True)
    log.warning("job %s failed in %s: %s", job.id, stage.name, reason)
    _undo(pipeline, stage, job, rt)
    return _End("failure", ended=True)


def _undo(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime) -> None:
    for earlier in pipeline.undo_before(stage.name):
        try:
            raw = _read(rt.redis, earlier.output, keys.payload(job.id, earlier.name))
            earlier.undo(earlier.output.decode(raw), rt)
        except PayloadLostError:
            continue
        except Exception:  # noqa: BLE001 - the dead letter stands; the undo's failure is logged
            log.exception("job %s: undoing %s failed", job.id, earlier.name)


def _read(client: redis.Redis, codec: Any, key: str) -> Any:
    pipe = client.pipeline(transaction=False)
    codec.read(pipe, key)
    return pipe.execute()[0]


def _finish(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, sender: Sender | None, end: _End,
            seconds: float, following: tuple[Stage, Job] | None = None) -> _Started | None:
    """The end round trip, in the order the module's docstring gives and for the reason it gives;
    with ``following``, the start of the stage this task runs next rides in it, and is returned."""
    now = time.time()
    pipe = rt.redis.pipeline(transaction=False)
    if end.handed_on is not None:
        stage.output.write(pipe, keys.payload(job.id, stage.name), end.handed_on.payload, rt.settings.page_ttl)
    for write in end.writes:
        write(pipe)
    if end.ended:
        pipe.delete(*pipeline.payload_keys(job.id))
    pipe.delete(keys.deliveries(job.id, stage.name))
    away = end.onward if following is None else []  # following: the one onward message, run here
    for message in away:
        inflight.mark_sent(pipe, message.job_id, message.stage, message.priority, now)
    if end.retry is not None:
        delayed.add_into(pipe, *end.retry)
    if end.ended:
        inflight.strike(pipe, job.id)
    rt.tally.add(stage.name, end.outcome, seconds)
    rt.tally.flush_into(pipe)  # a second's worth of every stage's counts, now and then
    if following is not None:  # last: it starts once everything above is written
        mine = len(pipe)
        reads = _start_into(pipe, pipeline, *following, rt, now, read_input=False)
    try:
        results = pipe.execute()
    except redis.RedisError as exc:
        if end.onward or end.retry is not None:
            raise
        log.warning("could not record the end of %s for job %s: %s", stage.name, job.id, exc)
        return None
    if away:
        sender.send(away, now)
    if following is None:
        return None
    return _started(results[mine:], reads, value=end.handed_on.payload)


def dead_letter(pipeline: Pipeline, stage: Stage, job: Job, rt: Runtime, reason: str) -> None:
    """Dead-letter a job from outside its stage (the stage was killed), with the same clearing; its
    failure is counted at once (the caller is a worker's main process, which runs no stages)."""
    _finish(pipeline, stage, job, rt, None, _dead(pipeline, stage, job, rt, reason), 0.0)
    rt.tally.flush(rt.redis)


def later(rt: Runtime, message: Message, delay: float) -> None:
    """Send ``message`` again after ``delay`` seconds (the delayed set), in a round trip of its own."""
    pipe = rt.redis.pipeline(transaction=False)
    delayed.add_into(pipe, message, delay)
    pipe.delete(keys.deliveries(message.job_id, message.stage))
    pipe.execute()


def send(rt: Runtime, sender: Sender, messages: Sequence[Message], *, pipeline: Pipeline | None = None,
         payloads: Mapping[str, Any] | None = None) -> None:
    """Hand jobs to stages from outside a stage: each batch's ledger entries in one round trip, then
    the messages (a message lost on the way is then found by the sweeper).

    A job entering at a later stage brings that stage's input: ``payloads`` (job id -> value) are
    written, before the ledger, where that stage of ``pipeline`` reads them."""
    for start in range(0, len(messages), SEND_BATCH):
        batch = messages[start:start + SEND_BATCH]
        now = time.time()
        pipe = rt.redis.pipeline(transaction=False)
        for message in batch:
            if payloads and message.job_id in payloads:
                stage = pipeline.stage(message.stage)
                stage.input.write(pipe, pipeline.input_key(stage.name, message.job_id), payloads[message.job_id],
                                  rt.settings.page_ttl)
            inflight.mark_sent(pipe, message.job_id, message.stage, message.priority, now)
        pipe.execute()
        sender.send(batch, now)


def run_inline(pipeline: Pipeline, job: Job, rt: Runtime, *, start: str | None = None,
               payload: Any = None) -> str | None:
    """Run ``job`` through the stages in this thread, each handing on to the next, without the
    broker or the runner's bookkeeping (ledger, delivery counts, metrics, retries): the stages'
    own work and their payloads' round trips, nothing else. For the load benchmark's in-process
    baseline, and for tests. ``start`` and ``payload``: enter at a later stage with its input.
    Returns the stage that raised an IngestError, or None."""
    stage: Stage | None = pipeline.stage(start) if start else pipeline.first
    if payload is not None:
        pipe = rt.redis.pipeline(transaction=False)
        stage.input.write(pipe, pipeline.input_key(stage.name, job.id), payload, rt.settings.page_ttl)
        pipe.execute()
    while stage is not None:
        try:
            value = None
            if stage.input is not None:
                value = stage.input.decode(_read(rt.redis, stage.input, pipeline.input_key(stage.name, job.id)))
            source = source_of(rt.redis, job.category_id) if stage.reads_source else None
            outcome = stage.run(StageContext(job=job, input=value, source=source, rt=rt))
        except IngestError:
            return stage.name
        pipe = rt.redis.pipeline(transaction=False)
        if isinstance(outcome, HandOn):
            stage.output.write(pipe, keys.payload(job.id, stage.name), outcome.payload, rt.settings.page_ttl)
        for write in outcome.writes:
            write(pipe)
        if isinstance(outcome, Ended):
            pipe.delete(*pipeline.payload_keys(job.id))
        pipe.execute()
        stage = pipeline.next(stage.name) if isinstance(outcome, HandOn) else None
    return None
