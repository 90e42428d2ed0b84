"""Every Redis key Gleaner writes, in one place."""

from __future__ import annotations

PREFIX = "gleaner:"


def page(job_id: str) -> str:
    """A fetched page (zlib-compressed body plus metadata), waiting for parse."""
    return f"{PREFIX}page:{job_id}"


def draft(job_id: str) -> str:
    """The parsed article as it moves through dedupe and summarize."""
    return f"{PREFIX}draft:{job_id}"


def deliveries(job_id: str, stage: str) -> str:
    """How many times a stage started on a job: a page that kills its worker stops at a limit."""
    return f"{PREFIX}deliveries:{stage}:{job_id}"
