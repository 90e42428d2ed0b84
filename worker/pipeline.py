"""The pipeline, declared once: one table of stages, in order.

Each entry names a stage (also its queue and, as ``gleaner.<name>``, its Celery task), its function
in tasks/, the payload it reads (what the stage before handed on) and the one it hands on, what
it needs read before it starts, and what to undo if its job dies further on. The next stage is the
next entry. Everything else is derived from this table: the Celery tasks, their queues and routes
(worker/celery_tasks.py, worker/celeryconfig.py), the payload keys and the start-of-stage reads
and the dead-letter undo rules (worker/runner.py), the worker's queue order and pools
(worker/processes.py) and the in-process runner. Adding a stage is one entry here and one module
in tasks/; ``GLEANER_PIPELINE`` runs another table (a deployment's own stages).

A stage's functions may be named rather than imported (``Ref("tasks.parse:parse")``): reading the
table (names, queues, payload keys) then imports none of the stages' own dependencies, which a
process that runs no stage (``gleaner enqueue``, the web) never needs. A worker imports those of
its pipeline before its pool starts (``Pipeline.load``), so a prefork pool's processes share them.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker import keys
from worker.payloads import DRAFT, PAGE, Codec
from worker.settings import get_settings

if TYPE_CHECKING:
    from worker.runtime import Runtime
    from worker.stage import StageFn

Undo = Callable[[Any, "Runtime"], None]  # (the stage's output payload, resources)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a queue, a task name's suffix, a metrics label


@dataclass(frozen=True)
class Ref:
    """A function named ``module:name``, imported on its first call (or by ``load``)."""

    path: str

    def load(self) -> Callable[..., Any]:
        return _import(self.path)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _import(self.path)(*args, **kwargs)


@functools.cache
def _import(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        raise ValueError(f"{path!r} names no function")
    return found


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFn  # the function, or a Ref to it
    input: Codec[Any] | None  # the payload it reads: the stage before's output (None: the job alone)
    output: Codec[Any] | None  # the payload it hands on; None: the last stage, which ends the job
    reads_row: bool = False  # the job's row is read first: its URL, and a finished job is not run again
    reads_source: bool = False  # its context carries the job's source (extraction rules, politeness)
    io_bound: bool = False  # it waits on the network: a threads pool serves its queue
    undo: Undo | None = None  # if the job dies at a later stage: undo what this one did outside its payload
    # What the stage would otherwise load on the first pages that need it: run once by a worker
    # serving its queue before it starts its pool, so that a prefork pool's processes share it.
    warm: Callable[[], None] | None = None


class Pipeline:
    """Stages in order, checked once: each reads what the one before hands on."""

    def __init__(self, *stages: Stage) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        names = [s.name for s in stages]
        for name in names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"stage name {name!r} must be lowercase letters, digits and underscores")
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        if stages[0].input is not None:
            raise ValueError(f"the first stage ({names[0]}) reads no payload: it starts from the job")
        for before, after in zip(stages, stages[1:]):
            if before.output is None:
                raise ValueError(f"{before.name} ends the job, so {after.name} would never run")
            if after.input is not before.output:
                raise ValueError(f"{after.name} reads {getattr(after.input, 'name', None)}, but {before.name} "
                                 f"hands on {before.output.name}")
        if stages[-1].output is not None:
            raise ValueError(f"the last stage ({names[-1]}) must end the job: there is no stage to hand on to")
        self.stages = stages
        self._by_name = {s.name: s for s in stages}

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def stage(self, name: str) -> Stage:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no stage {name!r}; the stages are {', '.join(self.names())}") from None

    def next(self, name: str) -> Stage | None:
        at = self.names().index(name)
        return self.stages[at + 1] if at + 1 < len(self.stages) else None

    def before(self, name: str) -> Stage | None:
        at = self.names().index(name)
        return self.stages[at - 1] if at else None

    def input_key(self, name: str, job_id: str) -> str | None:
        """Where ``name``'s input waits: the key of the stage before's output."""
        before = self.before(name)
        return None if before is None else keys.payload(job_id, before.name)

    def payload_keys(self, job_id: str) -> list[str]:
        """Every key a job's payloads may be under (cleared when it ends)."""
        return [keys.payload(job_id, s.name) for s in self.stages if s.output is not None]

    def undo_before(self, name: str) -> list[Stage]:
        """The stages before ``name`` with something to undo when a job dies at ``name``."""
        return [s for s in self.stages[: self.names().index(name)] if s.undo is not None]

    def load(self) -> None:
        """Import every function the table names (a misspelt one raises here, not mid-job)."""
        for stage in self.stages:
            for function in (stage.run, stage.warm, stage.undo):
                if isinstance(function, Ref):
                    function.load()


PIPELINE = Pipeline(
    Stage("fetch", Ref("tasks.fetch:fetch"), input=None, output=PAGE, reads_row=True, reads_source=True,
          io_bound=True),
    Stage("parse", Ref("tasks.parse:parse"), input=PAGE, output=DRAFT, reads_source=True,
          warm=Ref("tasks.parse:warm")),
    Stage("dedupe", Ref("tasks.dedupe:dedupe"), input=DRAFT, output=DRAFT,
          undo=Ref("tasks.dedupe:forget_unstored_canonical")),
    Stage("summarize", Ref("tasks.summarize:summarize"), input=DRAFT, output=DRAFT),
    Stage("store", Ref("tasks.store:store"), input=DRAFT, output=None),
)


@functools.cache
def load_pipeline(path: str) -> Pipeline:
    """The table at ``module:attribute``."""
    module, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module), attribute or "PIPELINE", None)
    if not isinstance(found, Pipeline):
        raise ValueError(f"GLEANER_PIPELINE={path!r} names no Pipeline")
    return found


def get_pipeline() -> Pipeline:
    """The pipeline this deployment runs (``GLEANER_PIPELINE``; Gleaner's own by default)."""
    return load_pipeline(get_settings().pipeline)
