"""Celery's consumer, kept alive across a broker restart.

On a lost broker connection Celery 5.7.0 first ``collect()``s the connection (which also drops
its transport) and then ``close()``s it. Closing closes the default channel again, and the Redis
channel's close tries to hand back its unacknowledged messages through a connection pool it can
no longer build: an ``AttributeError``, which ``ignore_errors`` does not ignore, so the worker
exits with "Unrecoverable error" instead of reconnecting. Those messages are still in Redis's
unacked hash and come back through the visibility-timeout restore, so the close may fail
quietly; the rest of the reconnect (cancelling late-ack tasks, the prefetch reduction) then
runs as Celery intends. Harmless on releases without the double close.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger("gleaner.consumer")


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> Any:
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_quietly() -> None:
                try:
                    close()
                except AttributeError as error:  # the half-collected channel; see the module docstring
                    log.info("closing the lost broker connection: %s (its messages return via the unacked restore)",
                             error)

            connection.close = close_quietly  # what the base method calls, on this instance only
        return super().on_connection_error_after_connected(exc)
