"""The task time limits in a worker whose pool runs each task in its own main thread (solo).

Celery enforces ``task_soft_time_limit`` and ``task_time_limit`` only in a prefork pool, from the
worker's main process: it signals a pool process at the soft limit and kills it at the hard one.
A solo pool runs every task in the worker's main thread and enforces neither, so a page that
hangs a stage would hold its core for good. ``gleaner up`` runs the CPU stages in one solo worker
per core (worker/processes.py ``Sizing``), so such a worker arms the two limits itself, around
each task, with the kernel's interval timers (four system calls a task, no thread):

- **soft**, in wall-clock seconds: ``SIGALRM`` raises Celery's ``SoftTimeLimitExceeded`` in the
  task's thread, as a prefork pool process gets it. Python code is interrupted where it runs, a
  regular expression's search or a blocking wait included, and the runner dead-letters the job
  as it does any crash.
- **hard**: the process ends, with every thread's stack written to its stderr by ``faulthandler``
  (from C, without the interpreter lock), in two cases. A task that took the soft limit's
  exception and went on is ended at the hard limit in wall-clock time (the timer is set when the
  soft limit is delivered, and the CPU clock's is stopped then: a task spinning in Python spends
  its wall-clock seconds in CPU, so the two would end it at the same moment and write their two
  stacks into each other). A task stuck in native code, where Python never gets to deliver the
  soft limit, is ended when the process has spent the hard limit in CPU seconds since the task
  began (``SIGPROF``, whose default action ends the process). A task blocked in native code while
  holding the interpreter lock, spending no CPU, is the one case left to the operator.

What follows an ended process is a dead pool process's story: its supervisor starts the worker
again (``gleaner up`` does), the message comes back after the visibility timeout, and the runner's
delivery count dead-letters a page whose stage was started three times without finishing.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
from typing import Any

from celery.concurrency import get_implementation
from celery.concurrency.solo import TaskPool as SoloPool
from celery.exceptions import SoftTimeLimitExceeded

log = logging.getLogger(__name__)


def runs_tasks_in_main_thread(pool: Any) -> bool:
    """Whether a worker's ``pool`` (a name such as ``"solo"``, or the class) runs each task in the
    worker's main thread, where nobody else enforces the time limits."""
    cls = get_implementation(pool)
    return isinstance(cls, type) and issubclass(cls, SoloPool)


class TimeLimits:
    """The soft and hard time limits of the task running in this process's main thread."""

    def __init__(self, soft: float | None, hard: float | None) -> None:
        if soft and hard and soft >= hard:
            raise ValueError(f"the soft time limit ({soft:g} s) must come before the hard one ({hard:g} s)")
        self.soft, self.hard = soft or None, hard or None
        self.delivered = False  # the running task was sent the soft limit

    def install(self) -> TimeLimits:
        """Take ``SIGALRM`` and ``SIGPROF``; call it from the main thread, before any task."""
        signal.signal(signal.SIGALRM, self._soft_limit)
        # The interpreter's own stderr: Celery replaces sys.stderr by a logger, which has no file
        # descriptor for faulthandler to write to. chain: then the signal's default action.
        faulthandler.register(signal.SIGPROF, file=sys.__stderr__, all_threads=True, chain=True)
        return self

    def arm(self, **_: Any) -> None:
        """A task starts (Celery's ``task_prerun``)."""
        self.delivered = False
        if self.soft:
            signal.setitimer(signal.ITIMER_REAL, self.soft)
        if self.hard:
            signal.setitimer(signal.ITIMER_PROF, self.hard)

    def disarm(self, **_: Any) -> None:
        """The task ended, however it ended (Celery's ``task_postrun``)."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        if self.delivered:
            faulthandler.cancel_dump_traceback_later()
            self.delivered = False

    def _soft_limit(self, _signum: int, _frame: Any) -> None:
        self.delivered = True
        if self.hard:
            # From here the wall clock alone ends the task: one ender, one stack in the log.
            signal.setitimer(signal.ITIMER_PROF, 0)
            faulthandler.dump_traceback_later(self.hard - self.soft, exit=True, file=sys.__stderr__)
        log.warning("a task ran past the soft time limit (%g s); if it goes on, this worker process ends at "
                    "the hard one (%g s)", self.soft, self.hard or 0)
        raise SoftTimeLimitExceeded(f"soft time limit ({self.soft:g} s) exceeded")
