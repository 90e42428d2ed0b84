"""The one place Gleaner reaches past Celery's and kombu's public API, and the check that it still can.

Written against the releases pinned in pyproject.toml (celery and kombu 5.7). Each change below
lists the private attributes it relies on in ``NEEDS``; at start-up ``check`` looks for every one
of them, and a change whose attributes are gone is left out with a warning, so that Celery's and
kombu's own public behaviour takes over (worker/celeryconfig.py asks ``consumer_class`` and
``transport_class``; worker/dispatch.py asks ``publishes_into_pipelines``).
tests/test_celery_compat.py is the canary: it fails when an upgrade moves any of them.

1. ``Consumer``: Celery's consumer, kept alive across a broker restart. When the connection
   drops, every message in hand belongs to a channel that is gone, and Celery 5.7.0 trips over
   that twice, each time exiting with "Unrecoverable error" where it should reconnect:

   - it ``collect()``s the lost connection (which drops its transport) and then ``close()``s it;
     closing closes the default channel again, and the Redis channel tries to hand back its
     unacknowledged messages through a connection pool it can no longer build (an
     ``AttributeError``, which ``ignore_errors`` does not ignore);
   - a late-ack task still running at the drop finishes later and acks or rejects its message
     on the old channel: the same ``AttributeError``, raised inside the event loop.

   Neither hand-back is needed: those messages sit in Redis's unacked hash and come back through
   the visibility-timeout restore (and a message Redis itself lost is sent again by the in-flight
   ledger's sweeper, worker/inflight.py). So on a drop the tasks in hand are marked as settled
   (``Request.acknowledged``: their ack would go to a channel that is gone) and the close may
   fail quietly. The tasks themselves run to the end, as Celery's own
   ``worker_cancel_long_running_tasks_on_connection_loss`` (off; worker/celeryconfig.py) leaves them.

2. ``Transport``: kombu's Redis transport, whose channel can queue a publish onto a Redis pipeline
   of the caller's instead of sending it in a round trip of its own. A stage ends with one
   pipeline (worker/runner.py: its output payload, the in-flight ledger, metrics); with this its
   onward message rides at the end of it: one round trip fewer per hop, and the message can never
   go out before the payload and ledger entry it depends on. ``publishing_into`` hands the
   pipeline to the channel of a producer the caller holds exclusively (acquired from Celery's
   producer pool), and takes it back. The list pushed to, the message's format, and everything
   else are kombu's own; broker URLs stay ``redis://``. Measured on the load run
   (bench/results/load.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import celery
import kombu
import redis
from celery.worker import state as worker_state
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

log = logging.getLogger("gleaner.celery_compat")

TESTED = {"celery": "5.7", "kombu": "5.7"}  # the releases these changes were written against
DEFAULT_CONSUMER = "celery.worker.consumer:Consumer"
DEFAULT_TRANSPORT = "redis"


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> Any:
        settled = 0
        for request in tuple(worker_state.active_requests):
            if request.task.acks_late and not request.acknowledged:
                request.acknowledged = True  # its ack or reject would go to the dead channel
                settled += 1
        if settled:
            log.warning("broker connection lost with %d task(s) running; their messages return "
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


class Channel(kombu_redis.Channel):
    pipe: redis.client.Pipeline | None = None  # while set (``publishing_into``), publishes queue onto it

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:
        pipe = self.pipe
        expiring = getattr(self, "_expires", None) or {}  # queues with an expiry: kombu's own path renews it
        if pipe is None or kwargs.get("_publish_batch") is not None or queue in expiring:
            return super()._put(queue, message, **kwargs)
        # The list kombu's own _put pushes to (no global key prefix: see publishes_into_pipelines).
        pipe.lpush(self._q_for_pri(queue, self._get_message_priority(message, reverse=False)), dumps(message))
        return None


class Transport(kombu_redis.Transport):
    Channel = Channel


@contextmanager
def publishing_into(producer: kombu.Producer, pipe: redis.client.Pipeline) -> Iterator[None]:
    """While inside, ``producer``'s publishes are queued onto ``pipe`` (which the caller executes,
    on the broker's Redis). The caller must hold ``producer`` exclusively."""
    channel = producer.channel
    channel.pipe = pipe
    try:
        yield
    finally:
        channel.pipe = None


# What each change relies on beyond the public API: (owner, attribute) pairs.
NEEDS: dict[str, list[tuple[Any, str]]] = {
    "consumer": [(CeleryConsumer, "on_connection_error_after_connected"), (Request, "acknowledged"),
                 (worker_state, "active_requests")],
    "transport": [(kombu_redis.Channel, "_put"), (kombu_redis.Channel, "_q_for_pri"),
                  (kombu_redis.Channel, "_get_message_priority")],
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


def transport_class() -> str:
    return f"{__name__}:Transport" if check()["transport"] else DEFAULT_TRANSPORT


def publishes_into_pipelines(app: celery.Celery) -> bool:
    """Whether ``publishing_into`` works for ``app``: its broker is this transport, without a global
    key prefix (the pipeline writes kombu's keys as they are). The caller's pipeline must be on the
    broker's Redis (Gleaner's runtime and broker share one URL)."""
    options = app.conf.broker_transport_options or {}
    return app.conf.broker_transport == f"{__name__}:Transport" and not options.get("global_keyprefix")
