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


def robots(origin: str) -> str:
    """A site's robots.txt (scheme://host:port), cached with the robots TTL (tasks.robots)."""
    return f"{PREFIX}robots:{origin}"


def host_slots(host: str) -> str:
    """Per host: sorted set of in-flight fetch leases scored by expiry in ms (tasks.hostlimit)."""
    return f"{PREFIX}host:slots:{host}"


def host_tickets(host: str) -> str:
    """Per host: sorted set of waiting fetches scored by the Redis time in ms of their turn (tasks.hostlimit)."""
    return f"{PREFIX}host:tickets:{host}"


def host_state(host: str) -> str:
    """Per host: hash with the next free turn and a pause (after 429/503 Retry-After), in Redis ms."""
    return f"{PREFIX}host:state:{host}"


def validators(url_digest: str) -> str:
    """Per fetched URL (its digest): ETag, Last-Modified and final URL for conditional requests."""
    return f"{PREFIX}validators:{url_digest}"


def fetch_attempts(job_id: str) -> str:
    """Per job: failed fetch attempts, and since when its host has kept it waiting (tasks.attempts)."""
    return f"{PREFIX}fetch:attempts:{job_id}"
