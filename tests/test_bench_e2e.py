"""bench/e2e.py's CPU accounting: a process's row holds the children it forked and waited for
(redis-server's AOF rewrites), not only its own threads."""

from __future__ import annotations

import os
import time

from bench.e2e import cpu_of


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_of_counts_children_waited_for():
    before = cpu_of(os.getpid())
    own = time.process_time()
    pid = os.fork()
    if pid == 0:  # the child: CPU the parent's own threads never spend
        _burn(0.5)
        os._exit(0)
    os.waitpid(pid, 0)
    spent = cpu_of(os.getpid()) - before
    own = time.process_time() - own
    # The child's half second is there beyond what this process spent itself (clock ticks: 10 ms).
    assert spent - own >= 0.4
