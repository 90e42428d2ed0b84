"""Per-process resources shared by the tasks: settings, storage, Redis, the HTTP client.

Created on first use in each worker process (never before the prefork pool forks, so no
connection is shared between processes) and closed when the process ends.
"""

from __future__ import annotations

import atexit
import functools
import os
from dataclasses import dataclass

import redis

from worker.pagestore import PageStore
from worker.redis_server import resolve_redis_url
from worker.settings import Settings, get_settings
from worker.similar import SimilarIndex
from worker.storage import Storage


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    redis: redis.Redis
    pages: PageStore
    similar: SimilarIndex

    def close(self) -> None:
        self.storage.close()
        self.redis.close()


@functools.cache
def _runtime_for(pid: int) -> Runtime:
    settings = get_settings()
    client = redis.Redis.from_url(resolve_redis_url(settings), socket_timeout=30, health_check_interval=30)
    storage = Storage(settings.effective_database_url)
    runtime = Runtime(
        settings=settings,
        storage=storage,
        redis=client,
        pages=PageStore(client, settings.page_ttl),
        similar=SimilarIndex(storage.engine),
    )
    atexit.register(runtime.close)
    return runtime


def get_runtime() -> Runtime:
    # Keyed by pid: a forked child builds its own instead of reusing its parent's sockets.
    return _runtime_for(os.getpid())
