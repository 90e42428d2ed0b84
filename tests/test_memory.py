"""worker/memory.py: the malloc arena cap for threaded workers."""

import ctypes.util
import subprocess
import sys

import pytest

from worker.memory import limit_malloc_arenas


def test_an_operators_own_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(not ctypes.util.find_library("c") or sys.platform != "linux", reason="glibc only")
def test_it_takes_effect_on_glibc():
    # In a child process: the cap is for the whole process.
    code = "import os; os.environ.pop('MALLOC_ARENA_MAX', None); from worker.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
