"""What a stage function is given and what it returns: the contract between the stages in tasks/
and the runner (worker/runner.py).

A stage is ``def stage(ctx: StageContext[In]) -> HandOn[Out] | Ended``: everything it reads is in
its context (its job, its input payload already read, its source's entry if it asked for it,
and the resources it may use), and everything it produces is in its return value (the payload
for the next stage, or the news that the job ended, plus any writes that must ride along). It
fails by raising an error from worker/errors.py. worker/pipeline.py declares which stage comes
next and what it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import redis

from worker.job import Job

if TYPE_CHECKING:  # what a stage is given, not what reading the contract needs
    from worker.runtime import Runtime
    from worker.sources import Source

In = TypeVar("In")
Out = TypeVar("Out")
Write = Callable[[redis.client.Pipeline], None]  # queues Redis commands onto the stage's last round trip


@dataclass(frozen=True)
class StageContext(Generic[In]):
    job: Job
    input: In  # the payload the stage before handed on (None for the first stage)
    source: Source | None  # the job's source, if the stage reads it (its rules and politeness) and it has one
    rt: Runtime  # settings, storage, Redis, the fetch policy, the indexes


@dataclass(frozen=True)
class HandOn(Generic[Out]):
    """Hand the job to the next stage with this payload."""

    payload: Out
    writes: tuple[Write, ...] = ()  # e.g. fetch's validators: written with the payload, or not at all


@dataclass(frozen=True)
class Ended:
    """The job ended at this stage; the stage has written its outcome to the jobs table."""

    how: Literal["stored", "duplicate", "unchanged"]
    writes: tuple[Write, ...] = ()


Outcome = HandOn[Any] | Ended
StageFn = Callable[[StageContext[Any]], Outcome]
