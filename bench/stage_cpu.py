"""The timed loops of bench/e2e_profile.py and bench/stages_ab.py: URLs through the stage table in this
process, with the CPU time of each step: as ``run_inline`` runs it (``stage_cpu``: the stages and their
payloads, no bookkeeping), or as a worker's tasks run it (``task_cpu``: the runner's bookkeeping too,
without Celery).

Gleaner's modules are imported when the loop is called, not when this module is: bench/stages_ab.py
imports it first and then puts another commit's tree first on ``sys.path``, whose code it times.
"""

from __future__ import annotations

import cProfile
import time
from typing import Any


def warm(pipeline: Any) -> None:
    """What a worker loads before its first page (each stage's warm-up: the language model, the date
    parser), loaded here before the clock runs, as a worker does before it takes a message. What
    worker/celery_tasks.py ``warm_stages`` does, written out so that bench/stages_ab.py can also time
    a tree from before warm-ups (its stages have no ``warm``)."""
    for stage in pipeline:
        if getattr(stage, "warm", None) is not None:
            stage.warm()


def stage_cpu(rt: Any, urls: list[str], profile: cProfile.Profile | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Every URL through the pipeline with ``rt``'s resources (worker/runtime.py ``Runtime``): the CPU
    seconds of each step (reading and decoding a stage's input, the stage, encoding and writing its
    output), and how many jobs ended each way. ``profile`` is enabled around the loop."""
    from worker import keys
    from worker.errors import IngestError
    from worker.job import Job
    from worker.pipeline import get_pipeline
    from worker.stage import Ended, HandOn, StageContext

    pipeline = get_pipeline()
    warm(pipeline)
    ids = rt.storage.create_jobs(urls, "bench")
    cpu: dict[str, float] = {}
    outcomes: dict[str, int] = {}

    def add(step: str, since: float) -> float:
        now = time.process_time()
        cpu[step] = cpu.get(step, 0.0) + now - since
        return now

    if profile:
        profile.enable()
    for job_id, url in zip(ids, urls):
        job = Job(id=job_id, category_id="bench", url=url)
        stage = pipeline.first
        while stage is not None:
            t = time.process_time()
            value = None
            if stage.input is not None:
                pipe = rt.redis.pipeline(transaction=False)
                stage.input.read(pipe, pipeline.input_key(stage.name, job.id))
                raw = pipe.execute()[0]
                t = add("Redis: read payloads", t)
                value = stage.input.decode(raw)
                t = add(f"{stage.name}: decode input", t)
            try:
                outcome = stage.run(StageContext(job=job, input=value, source=None, rt=rt))
            except IngestError:
                add(f"{stage.name}: stage", t)
                outcomes[f"failed at {stage.name}"] = outcomes.get(f"failed at {stage.name}", 0) + 1
                break
            t = add(f"{stage.name}: stage", t)
            pipe = rt.redis.pipeline(transaction=False)
            if isinstance(outcome, HandOn):
                stage.output.write(pipe, keys.payload(job.id, stage.name), outcome.payload, rt.settings.page_ttl)
                for write in outcome.writes:
                    write(pipe)
                t = add(f"{stage.name}: encode output", t)
            else:
                pipe.delete(*pipeline.payload_keys(job.id))
            pipe.execute()
            add("Redis: write payloads", t)
            if isinstance(outcome, Ended):
                outcomes[outcome.how] = outcomes.get(outcome.how, 0) + 1
            stage = pipeline.next(stage.name) if isinstance(outcome, HandOn) else None
    if profile:
        profile.disable()
    return cpu, outcomes


def task_cpu(rt: Any, urls: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Every URL as the tasks of ``gleaner up``'s two workers run it, without Celery: fetch's task
    (worker/celery_tasks.py ``run_message``, its message handed on to a list instead of the broker),
    then the CPU worker's task, which runs parse to store through (``RunThrough``, every CPU stage
    served). The runner's bookkeeping (delivery counts, the in-flight ledger, payloads, metrics) is
    in; what Celery adds around a task (receiving, the pool, acknowledging) is not."""
    from worker.celery_tasks import RunThrough, run_message
    from worker.pipeline import get_pipeline

    pipeline = get_pipeline()
    warm(pipeline)
    served = frozenset(stage.name for stage in pipeline if not stage.io_bound)
    ids = rt.storage.create_jobs(urls, "bench")
    cpu = {"fetch task": 0.0, "CPU stages' task": 0.0}

    class Held:
        """Where a task's onward messages go instead of the broker."""

        through: frozenset[str] = frozenset()

        def __init__(self) -> None:
            self.messages: list[Any] = []

        def send(self, messages: Any, sent: float) -> None:
            self.messages.extend(messages)

    for job_id in ids:
        t = time.process_time()
        fetched = Held()
        run_message(pipeline, pipeline.first, job_id, None, {"category": "bench", "priority": 0}, rt, fetched)
        cpu["fetch task"] += time.process_time() - t
        t = time.process_time()
        for message in fetched.messages:
            run_message(pipeline, pipeline.stage(message.stage), message.job_id, time.time(), dict(message.fields),
                        rt, RunThrough(pipeline, rt, Held(), served))
        cpu["CPU stages' task"] += time.process_time() - t
    outcomes: dict[str, int] = {}
    for row in rt.storage.get_jobs(ids).values():
        outcomes[row["state"]] = outcomes.get(row["state"], 0) + 1
    return cpu, outcomes
