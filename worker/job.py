"""The job: one URL on its way through the pipeline, as every stage and every sender sees it.

A job is born as a row in the ``jobs`` table (worker/storage.py) and travels as a small message
(its id and these fields, never a page). The CLI, the web UI and API, discovery and the stages all
build and hand on this one type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from worker.queues import Priority


@dataclass(frozen=True)
class Job:
    id: str
    category_id: str  # the source's key: the records' category_id, and whose rules and politeness apply
    priority: int = int(Priority.SCHEDULED)  # kept at every stage, so a URL queued by hand stays ahead
    url: str | None = None  # from the job's row, for the stages that read it (fetch)
    attempts: int = 0  # failed attempts so far (retryable errors, any stage): the one attempt counter
    waiting_since: float | None = None  # epoch seconds since a busy host first kept it waiting

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, priority: int | None = None, attempts: int = 0,
                 waiting_since: float | None = None) -> Job:
        """The job as its row in ``jobs`` has it (a fresh tally unless the message carried one)."""
        return cls(id=row["id"], category_id=row["category_id"],
                   priority=row["priority"] if priority is None else priority, url=row["url"],
                   attempts=attempts, waiting_since=waiting_since)

    def fields(self) -> dict[str, Any]:
        """What a message carries besides the job's id (JSON; the tally only once it has started)."""
        out: dict[str, Any] = {"category": self.category_id, "priority": self.priority}
        if self.attempts:
            out["attempts"] = self.attempts
        if self.waiting_since is not None:
            out["waiting_since"] = self.waiting_since
        return out

    @classmethod
    def from_fields(cls, job_id: str, fields: Mapping[str, Any]) -> Job | None:
        """The job a message describes; None if it lacks the category (an older or a resent
        message: the stage then reads the job's row)."""
        category = fields.get("category")
        if category is None:
            return None
        priority = fields.get("priority")
        return cls(id=job_id, category_id=category,
                   priority=int(Priority.SCHEDULED) if priority is None else int(priority),
                   attempts=int(fields.get("attempts") or 0), waiting_since=fields.get("waiting_since"))

    def replace(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)

    def to(self, stage: str) -> Message:
        """The message that hands this job to ``stage``."""
        return Message(stage, self.id, self.fields())


class Message(NamedTuple):
    """A job on its way to a stage's queue: its id and the job's fields (at least its priority)."""

    stage: str
    job_id: str
    fields: dict[str, Any]

    @property
    def priority(self) -> int:
        return int(self.fields.get("priority") or 0)
