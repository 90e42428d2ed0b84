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


def lsh_index(name: str = "near") -> str:
    """Prefix of a near-duplicate LSH index (tasks.lsh): band buckets, doc map, signatures, meta under it."""
    return f"{PREFIX}lsh:{name}:"


def seen_url(digest: str) -> str:
    """A canonical URL ingested recently (its digest); expires after the seen-URL window."""
    return f"{PREFIX}seen:{digest}"


def boilerplate_lines(host: str) -> str:
    """Per host: paragraph hash -> on how many of the host's recent pages it appeared (tasks.boilerplate)."""
    return f"{PREFIX}bp:lines:{host}"


def boilerplate_pages(host: str) -> str:
    """Per host: how many pages were counted into boilerplate_lines since its last halving."""
    return f"{PREFIX}bp:pages:{host}"
