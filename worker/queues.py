"""Message priorities, and the Redis lists behind a stage's queue (kombu keeps one per priority step).

The stages themselves, and so the queues, are declared once in worker/pipeline.py.
"""

from __future__ import annotations

import enum

PRIORITY_SEP = ":"


class Priority(int, enum.Enum):
    """Message priorities on Redis: a lower number is served first at every stage."""

    MANUAL = 0  # queued by hand (CLI, web, API): jumps ahead of the crawl
    SCHEDULED = 6  # found by the scheduled crawl of a source

    @classmethod
    def steps(cls) -> list[int]:
        return [0, 3, 6, 9]


def task_name(stage: str) -> str:
    """The Celery task that runs a stage; its messages go to the queue named for the stage."""
    return f"gleaner.{stage}"


def broker_key(queue: str, step: int) -> str:
    """The Redis list behind one queue's priority step (kombu's naming)."""
    return queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"


def broker_keys(queue: str) -> list[str]:
    """The Redis lists behind one queue (kombu keeps one list per priority step)."""
    return [broker_key(queue, p) for p in Priority.steps()]
