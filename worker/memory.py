"""Keeping a threaded worker's resident memory flat.

glibc gives threads their own malloc arenas (up to eight per core) and rarely hands their freed
memory back, so a threads-pool worker's heap creeps up for hours as pages of different sizes pass
through its threads. Two arenas are plenty for four task threads that mostly wait on the GIL:
in the load run (bench/load.py) worker memory grew 10-12% from the first to the last thousand
URLs with glibc's default and 3-5% with two arenas (and SQLite's page cache at 1 MiB per
connection), at the same throughput.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("gleaner.memory")

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


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
