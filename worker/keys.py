"""Every Redis key Gleaner writes, in one place."""

from __future__ import annotations

PREFIX = "gleaner:"


def payload(job_id: str, stage: str) -> str:
    """What ``stage`` handed on for a job (its output payload: the fetched page, a draft), waiting
    for the next stage. One key per producing stage, so a late spare copy of an earlier stage
    (redelivered after a broker outage) cannot overwrite what a later stage already wrote."""
    return f"{PREFIX}payload:{job_id}:{stage}"


def deliveries(job_id: str, stage: str) -> str:
    """How many times a stage started on a job: a page that kills its worker stops at a limit."""
    return f"{PREFIX}deliveries:{stage}:{job_id}"


def lsh_index(name: str = "near") -> str:
    """Prefix of a near-duplicate LSH index (tasks.duplicates.lsh): band buckets, doc map, signatures, meta under it."""
    return f"{PREFIX}lsh:{name}:"


def seen_url(digest: str) -> str:
    """A canonical URL ingested recently (its digest); expires after the seen-URL window."""
    return f"{PREFIX}seen:{digest}"


def boilerplate_lines(host: str) -> str:
    """Per host: paragraph hash -> on how many of the host's recent pages it appeared (tasks.duplicates.boilerplate)."""
    return f"{PREFIX}bp:lines:{host}"


def boilerplate_pages(host: str) -> str:
    """Per host: how many pages were counted into boilerplate_lines since its last halving."""
    return f"{PREFIX}bp:pages:{host}"


def robots(origin: str) -> str:
    """A site's robots.txt (scheme://host:port), cached with the robots TTL (tasks.fetching.robots)."""
    return f"{PREFIX}robots:{origin}"


def host_slots(host: str) -> str:
    """Per host: sorted set of in-flight fetch leases scored by expiry in ms (tasks.fetching.hostlimit)."""
    return f"{PREFIX}host:slots:{host}"


def host_tickets(host: str) -> str:
    """Per host: sorted set of waiting fetches scored by the Redis time in ms of their turn (tasks.fetching.hostlimit)."""
    return f"{PREFIX}host:tickets:{host}"


def host_state(host: str) -> str:
    """Per host: hash with the next free turn and a pause (after 429/503 Retry-After), in Redis ms."""
    return f"{PREFIX}host:state:{host}"


def validators(url_digest: str) -> str:
    """Per fetched URL (its digest): ETag, Last-Modified and final URL for conditional requests."""
    return f"{PREFIX}validators:{url_digest}"


def sources() -> str:
    """Hash: source key -> {"source": Source JSON, "origin": "file"|"cli", "line": N} (worker.registry)."""
    return f"{PREFIX}sources:defs"


def sources_every() -> str:
    """Hash: source key -> its polling interval in ms, read by the claim script."""
    return f"{PREFIX}sources:every"


def sources_due() -> str:
    """Sorted set: source key scored by its next run, in Redis-clock ms; paused sources are absent."""
    return f"{PREFIX}sources:due"


def sources_paused() -> str:
    """Set of paused source keys (kept across sources-file syncs)."""
    return f"{PREFIX}sources:paused"


def sources_file() -> str:
    """Hash: the sources file last synced (path, mtime stamp, error, when), so a tick re-reads it only on change."""
    return f"{PREFIX}sources:file"


def sources_lock() -> str:
    """Lock held while the registry is changed (file sync, CLI edits)."""
    return f"{PREFIX}sources:lock"


def source_state(key: str) -> str:
    """Per source: hash of last run, last slot, URLs found and new, runs, last error."""
    return f"{PREFIX}sources:state:{key}"


def source_runs(key: str) -> str:
    """Per source: list of the latest run summaries (JSON), newest first, capped."""
    return f"{PREFIX}sources:runs:{key}"


def source_warc_progress(key: str) -> str:
    """Per warc source: hash of WARC file path -> JSON {inode, offset where the next unread record
    starts, damage found there and the file size then} (tasks/discovery/warcdir.py); a file no
    longer in the folder loses its entry. Kept when the source is removed, so adding it again does
    not ingest its folder again."""
    return f"{PREFIX}sources:warc:{key}"


def source_running(key: str) -> str:
    """Per source: held while a discovery run is in progress, so runs of one source never overlap."""
    return f"{PREFIX}sources:running:{key}"


def delayed() -> str:
    """Jobs waiting to be retried: a sorted set scored by when each is due (epoch seconds)."""
    return f"{PREFIX}delayed"


def robots_lock(origin: str) -> str:
    """Held by the one worker fetching a site's robots.txt; the others wait for its answer."""
    return f"{PREFIX}robots-lock:{origin}"


def metrics_counts() -> str:
    """Hash ``{stage}:{outcome}`` -> runs since the Redis data began (worker/metrics.py)."""
    return f"{PREFIX}metrics:counts"


def metrics_latency(stage: str) -> str:
    """Per stage: hash of latency histogram buckets, plus ``sum`` and ``count``."""
    return f"{PREFIX}metrics:latency:{stage}"


def metrics_minute(minute: int) -> str:
    """Hash ``{stage}:{outcome}`` -> runs finished in Unix minute ``minute``; expires."""
    return f"{PREFIX}metrics:minute:{minute}"


def inflight() -> str:
    """Hash: unfinished job -> "stage|priority|sent|started", where its message was last sent (worker/inflight.py)."""
    return f"{PREFIX}inflight"


def consumed() -> str:
    """Sorted set: "stage:priority-step" scored by the send time of the newest message started there."""
    return f"{PREFIX}consumed"


def sweep_lock() -> str:
    """Held by the one worker sweeping the in-flight ledger for lost messages."""
    return f"{PREFIX}sweep-lock"


def metrics_resent() -> str:
    """Counter: messages the sweeper found lost and sent again (worker/inflight.py)."""
    return f"{PREFIX}metrics:resent"
