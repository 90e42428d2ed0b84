"""Per-process resources the stages use: settings, storage, Redis, the HTTP client and the shared
indexes, and this process's metrics tally.

Created on first use in each worker process (never before the prefork pool forks, so no
connection is shared between processes) and closed when the process ends. A stage gets them in
its context (worker/stage.py); nothing reaches for them through a global.

Each resource's module is imported where the resource is first built: a process that only sends
messages (``gleaner enqueue``) imports no HTTP client, archive writer or similarity index.
"""

from __future__ import annotations

import atexit
import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from worker.memory import HeapTrimmer
from worker.metrics import Tally
from worker.redis_server import resolve_redis_url
from worker.settings import Settings, get_settings
from worker.storage import Storage

if TYPE_CHECKING:
    from tasks.archive import ArchiveWriter
    from tasks.duplicates.lsh import LSHIndex
    from tasks.fetching.policy import FetchPolicy
    from worker.similar import SimilarIndex


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    redis: redis.Redis
    tally: Tally = field(default_factory=Tally)  # stage runs counted here, sent to Redis a second's worth at a time
    heap: HeapTrimmer = field(default_factory=HeapTrimmer)  # this process's freed memory back to the OS

    @functools.cached_property
    def similar(self) -> SimilarIndex:
        """This process's similar-readings index over the records (it caches their word frequencies)."""
        from worker.similar import SimilarIndex

        return SimilarIndex(self.storage.engine)

    @functools.cached_property
    def fetcher(self) -> FetchPolicy:
        """This process's fetch policy: its HTTP client, robots.txt memory and host limiter."""
        from tasks.fetching.policy import FetchPolicy

        return FetchPolicy(self.redis, self.settings)

    @functools.cached_property
    def archive(self) -> ArchiveWriter | None:
        """This process's WARC file (None when archiving is off): the fetch stage appends to it."""
        from tasks.archive import ArchiveWriter

        s = self.settings
        if not s.archive:
            return None
        return ArchiveWriter(s.effective_archive_dir, max_bytes=s.archive_max_bytes,
                             retention_days=s.archive_retention_days, gzip_level=s.archive_gzip_level)

    @functools.cached_property
    def near_duplicates(self) -> LSHIndex:
        """This process's handle on the shared near-duplicate index (built once: it registers its scripts)."""
        from tasks.duplicates.lsh import LSHIndex

        return LSHIndex(self.redis, self.settings.near_duplicate_threshold)

    def forget_fetcher(self) -> None:
        """Build the fetch policy afresh on next use (after its settings changed, in tests)."""
        fetcher = self.__dict__.pop("fetcher", None)
        if fetcher is not None:
            fetcher.close()

    def close(self) -> None:
        self.forget_fetcher()
        archive = self.__dict__.pop("archive", None)
        if archive is not None:
            archive.close()
        self.storage.close()
        self.redis.close()


def build_runtime(settings: Settings) -> Runtime:
    client = redis.Redis.from_url(resolve_redis_url(settings), socket_timeout=30, health_check_interval=30)
    storage = Storage(settings.effective_database_url)
    return Runtime(settings=settings, storage=storage, redis=client)


@functools.cache
def _runtime_for(pid: int) -> Runtime:
    runtime = build_runtime(get_settings())
    atexit.register(runtime.close)
    return runtime


def get_runtime() -> Runtime:
    """This process's runtime, for the entry points (the Celery tasks and hooks, the CLI, benchmarks).
    Keyed by pid: a forked child builds its own instead of reusing its parent's sockets."""
    return _runtime_for(os.getpid())
