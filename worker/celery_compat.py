"""The one place Gleaner reaches past Celery's and kombu's public API, and the check that it still can.

Written against the releases pinned in pyproject.toml (celery and kombu 5.7). Each change lists
the private attributes it relies on in ``NEEDS``; at start-up ``check`` looks for each of them,
and a change whose attributes are gone is left out with a warning, so that Celery's own class
takes over (worker/celeryconfig.py asks ``consumer_class``). tests/test_celery_compat.py is the
canary: it fails when an upgrade moves any of them.

Two other changes were removed, their measured gain (93 -> 97 articles/s) being inside this
machine's run-to-run spread: kombu's Redis transport subclassed to keep one client per channel,
and to put a stage's onward message and the Redis half of its ack into the stage's end-of-stage
round trip. Interleaved load runs of the code with and without them: bench/results/load.md,
"issue 16 A/B".

``Consumer``: Celery's consumer, kept alive across a broker restart. When the connection
drops, every message in hand belongs to a channel that is gone, and Celery 5.7.0 trips over
that three times, each time exiting with "Unrecoverable error" where it should reconnect:

- it ``collect()``s the lost connection (which drops its transport) and then ``close()``s it;
  closing closes the default channel again, and the Redis channel tries to hand back its
  unacknowledged messages through a connection pool it can no longer build (an
  ``AttributeError``, which ``ignore_errors`` does not ignore);
- a late-ack task in hand at the drop finishes later and acks or rejects its message on the
  old channel: the same ``AttributeError``, raised inside the event loop. "In hand" is more than
  running: a prefork worker has also passed tasks to its pool that no child has started yet
  (Celery's ``reserved_requests``, which also holds the running ``active_requests``). Such a
  task starts after the drop, finds Redis gone and rejects its message (worker/celery_tasks.py);
  a worker host of tests/test_multihost.py exited so when Redis on the data host crashed;
- an ack or reject Celery has already scheduled (``call_soon_ack``: a task that finished just
  before the drop) runs later in the event loop, on the old channel: the same ``AttributeError``,
  raised from the loop, and the worker exits (seen under tests/test_faults.py's Redis crash).

Neither hand-back is needed: those messages sit in Redis's unacked hash and come back through
the visibility-timeout restore (and a message Redis itself lost is sent again by the in-flight
ledger's sweeper, worker/inflight.py). So on a drop every task in hand is marked as settled
(``Request.acknowledged``: its ack would go to a channel that is gone) and the close may fail
quietly, and an ack or reject scheduled on a connection that has since been replaced is dropped
when its turn comes. The tasks themselves run to the end, as Celery's own
``worker_cancel_long_running_tasks_on_connection_loss`` (off; worker/celeryconfig.py) leaves them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import celery
import kombu
from celery.worker import state as worker_state
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request

log = logging.getLogger("gleaner.celery_compat")

TESTED = {"celery": "5.7", "kombu": "5.7"}  # the releases these changes were written against
DEFAULT_CONSUMER = "celery.worker.consumer:Consumer"


class Consumer(CeleryConsumer):
    def call_soon_ack(self, p: Any, *args: Any, **kwargs: Any) -> Any:
        # Celery schedules every message's ack or reject through here, to run in the event loop.
        connection = self.connection

        def settle(*a: Any, **kw: Any) -> Any:
            if self.connection is not connection:
                # The message came by a connection that is gone: its channel can take no ack, and
                # the message returns through the visibility-timeout restore.
                log.info("an ack or reject for the lost broker connection dropped")
                return None
            return p(*a, **kw)

        return super().call_soon_ack(settle, *args, **kwargs)

    def on_connection_error_after_connected(self, exc: Exception) -> Any:
        settled = 0
        # Running, or waiting in the pool (reserved_requests holds both; active_requests is added
        # in case a request ever runs without having been reserved).
        for request in {*worker_state.reserved_requests, *worker_state.active_requests}:
            if request.task.acks_late and not request.acknowledged:
                request.acknowledged = True  # its ack or reject would go to the dead channel
                settled += 1
        if settled:
            log.warning("broker connection lost with %d task(s) in hand; their messages return "
                        "through the visibility-timeout restore", settled)
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_quietly() -> None:
                try:
                    close()
                except AttributeError as error:  # the half-collected channel; see the module docstring
                    log.info("closing the lost broker connection: %s", error)

            connection.close = close_quietly  # what the base method calls, on this instance only
        return super().on_connection_error_after_connected(exc)


# What each change relies on beyond the public API: (owner, attribute) pairs.
NEEDS: dict[str, list[tuple[Any, str]]] = {
    "consumer": [(CeleryConsumer, "on_connection_error_after_connected"), (CeleryConsumer, "call_soon_ack"),
                 (Request, "acknowledged"),
                 (worker_state, "active_requests"), (worker_state, "reserved_requests")],
}


def missing(change: str) -> list[str]:
    """The attributes ``change`` relies on that the installed Celery and kombu lack."""
    return [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in NEEDS[change]
            if not hasattr(owner, name)]


@functools.cache
def check() -> dict[str, bool]:
    """Which changes the installed Celery and kombu allow; a warning for each one left out."""
    usable = {}
    for change in NEEDS:
        gone = missing(change)
        usable[change] = not gone
        if gone:
            log.warning("celery %s / kombu %s lack %s (written for celery %s, kombu %s): Gleaner's %s change "
                        "is off and Celery's own behaviour applies (worker/celery_compat.py)",
                        celery.__version__, kombu.__version__, ", ".join(gone), TESTED["celery"], TESTED["kombu"],
                        change)
    return usable


def consumer_class() -> str:
    return f"{__name__}:Consumer" if check()["consumer"] else DEFAULT_CONSUMER
