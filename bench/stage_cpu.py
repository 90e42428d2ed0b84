"""The timed loop of bench/e2e_profile.py and bench/stages_ab.py: URLs through the stage table in this
process (as ``run_inline`` runs it, no Celery), with the CPU time of each step.

Gleaner's modules are imported when the loop is called, not when this module is: bench/stages_ab.py
imports it first and then puts another commit's tree first on ``sys.path``, whose code it times.
"""

from __future__ import annotations

import cProfile
import time
from typing import Any


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
