"""worker/memory.py: the malloc arena cap for threaded workers, and the heap trimmer."""

import ctypes.util
import subprocess
import sys

import pytest

from worker.memory import HeapTrimmer, limit_malloc_arenas


def test_start_up_objects_are_frozen_out_of_later_collections():
    # A fresh interpreter: freezing this one would keep the other tests' garbage for good.
    code = """
import gc
from worker.memory import freeze_start_up_objects
loaded = [[n] for n in range(5000)]
import weakref
class Node: pass
garbage = Node()
garbage.me = garbage  # a cycle, dropped before the freeze: collected, not frozen for good
dropped = weakref.ref(garbage)
del garbage
gc.disable()  # no collection but the freeze's own
frozen = freeze_start_up_objects()
assert dropped() is None
tracked = {id(o) for o in gc.get_objects()}
assert frozen >= 5000, frozen
assert not any(id(o) in tracked for o in loaded)  # out of every collection's walk
later = [[]]
assert id(later) in {id(o) for o in gc.get_objects()}  # what comes later is collected as usual
print(frozen)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 5000


def test_an_operators_own_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(not ctypes.util.find_library("c") or sys.platform != "linux", reason="glibc only")
def test_it_takes_effect_on_glibc():
    # In a child process: the cap is for the whole process.
    code = "import os; os.environ.pop('MALLOC_ARENA_MAX', None); from worker.memory import HeapTrimmer, limit_malloc_arenas; print(limit_malloc_arenas())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_the_heap_is_trimmed_at_most_once_a_period():
    now = [0.0]
    calls = []
    trimmer = HeapTrimmer(every=1.0, clock=lambda: now[0], trim=calls.append)
    assert trimmer.after_task() is False  # the first period has not passed
    now[0] = 1.0
    assert trimmer.after_task() is True
    for t in (1.1, 1.5, 1.99):
        now[0] = t
        assert trimmer.after_task() is False
    now[0] = 2.0
    assert trimmer.after_task() is True
    assert calls == [0, 0]


@pytest.mark.skipif(not ctypes.util.find_library("c") or sys.platform != "linux", reason="glibc only")
def test_a_trim_gives_freed_memory_back():
    # In a child process, so the test's own heap does not blur the numbers: 200 MB in 8 KB blocks
    # (below malloc's mmap threshold: on the heap), nine in ten freed while every tenth, and one
    # block allocated last, pin the heap: glibc keeps the freed pages until a trim.
    code = """
import time
from pathlib import Path
from worker.memory import HeapTrimmer
def anon():
    line = next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('RssAnon'))
    return int(line.split()[1]) // 1024
blocks = [bytearray(8192) for _ in range(25_000)]
top = bytearray(8192)
kept = blocks[::10]
del blocks
before = anon()
trimmer = HeapTrimmer(every=0.0)
assert trimmer.after_task()
print(before, anon())
"""
    before, after = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split())
    assert before >= 180 and after <= before - 100, (before, after)
