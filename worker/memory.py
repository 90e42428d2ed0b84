"""Keeping a threaded worker's resident memory flat.

glibc gives threads their own malloc arenas (up to eight per core) and rarely hands their freed
memory back, so a threads-pool worker's heap creeps up for hours as pages of different sizes pass
through its threads. Two arenas are plenty for four task threads that mostly wait on the GIL:
in the load run (bench/load.py) worker memory grew 10-12% from the first to the last thousand
URLs with glibc's default and 3-5% with two arenas (and SQLite's page cache at 1 MiB per
connection), at the same throughput.

A process's heap also keeps what it freed: glibc gives back only the free memory at the top of
its heap, so the pages freed below a live block stay resident. On real pages a prefork worker's
resident memory grew 10-13% over 10,000 URLs (bench/results/memory.md) while its live objects
stayed flat; ``malloc_trim`` hands the free pages back (about 1 ms a call on a 400 MB heap), and
``HeapTrimmer`` calls it at most once a second, after a task.

What a worker loads before its first task (Celery, SQLAlchemy, lxml, the language model, the
date parser: about 140,000 objects the cyclic collector tracks) lives as long as the process, yet
every full collection walks all of it again (about 0.1 s of CPU each time).
``freeze_start_up_objects`` moves them out of the collector's reach once, after the warm-ups and
before a prefork pool forks, so the children inherit them frozen too. In one process over half
the corpus pages (timed by ``gc.callbacks``, six runs), the full collections cost 0.16-0.23 ms a
page before and 0.03-0.07 after, the objects the collector tracks 188,000 -> 49,000; and the
collector no longer writes into the pages the children share with their parent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("gleaner.memory")

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2
TRIM_EVERY = 1.0  # seconds: at most one trim a second, about 0.1% of a core at 1 ms a trim


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; True if it took effect.

    Leaves an operator's own ``MALLOC_ARENA_MAX`` alone, and does nothing off glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators differ
        log.debug("mallopt unavailable; malloc arenas left as they are")
        return False


def freeze_start_up_objects() -> int:
    """Collect once, then leave every object alive now out of all later collections (``gc.freeze``);
    how many that is. Call it when start-up is over: what is frozen is never collected."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: its allocator returns memory its own way
        return None


class HeapTrimmer:
    """Gives the heap's free pages back to the OS after a task, at most once every ``every``
    seconds, so a worker's resident memory is its live memory plus at most a second's garbage.
    Thread-safe; one per process. Does nothing off glibc."""

    def __init__(self, every: float = TRIM_EVERY, clock: Callable[[], float] = time.monotonic,
                 trim: Callable[[int], int] | None = None) -> None:
        self.every, self.clock = every, clock
        self._trim = trim if trim is not None else _malloc_trim()
        self._lock = threading.Lock()
        self._due = clock() + every

    def after_task(self) -> bool:
        """Trim if a trim is due; True if this call trimmed."""
        if self._trim is None:
            return False
        with self._lock:
            now = self.clock()
            if now < self._due:
                return False
            self._due = now + self.every
        self._trim(0)
        return True
