"""Celery's consumer, kept alive across a broker restart.

When the broker connection drops, every message in hand belongs to a channel that is gone, and
Celery 5.7.0 trips over that twice, each time exiting with "Unrecoverable error" where it should
reconnect:

- It ``collect()``s the lost connection (which drops its transport) and then ``close()``s it;
  closing closes the default channel again, and the Redis channel tries to hand back its
  unacknowledged messages through a connection pool it can no longer build (``AttributeError``,
  which ``ignore_errors`` does not ignore).
- A task still running at the drop finishes later and acks or rejects its message on the old
  channel: the same ``AttributeError``, raised inside the event loop.

Neither hand-back is needed: those messages sit in Redis's unacked hash and come back through
the visibility-timeout restore (and a message Redis itself lost is sent again by the in-flight
ledger's sweeper, worker/inflight.py). So on a drop the tasks in hand are marked as settled,
which is what Celery's own warning says ("cannot be acknowledged after a connection loss"), and
the close may fail quietly. Both are harmless on releases without these faults.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.state import active_requests

log = logging.getLogger("gleaner.consumer")


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> Any:
        settled = 0
        for request in tuple(active_requests):
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
