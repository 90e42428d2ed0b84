"""The pipeline's queues, one per stage, so each stage scales on its own."""

from __future__ import annotations

import enum


class Queue(str, enum.Enum):
    FETCH = "fetch"
    PARSE = "parse"
    DEDUPE = "dedupe"
    SUMMARIZE = "summarize"
    STORE = "store"

    @classmethod
    def names(cls) -> list[str]:
        return [q.value for q in cls]
