"""kombu's Redis transport, with one client per channel and a stage's messages settled in its
own round trip.

Two changes, both measured on the load run (bench/results/load.md):

- kombu builds a new ``redis.Redis`` object for every publish, ack and queue-size call (the
  asynchronous client used for BRPOP is already cached). Building one copies redis-py's table of
  response callbacks, about 5% of a busy worker's CPU. A ``redis.Redis`` is safe to share between
  threads (each command borrows a connection from the pool), so the channel keeps one, and builds
  a new one when the channel's pool is replaced after a reconnect.
- A stage ends with one Redis pipeline of its own (worker/pipeline.py ``_finish``: the next
  stage's input, the in-flight ledger, metrics). kombu would then spend two more round trips: an
  LPUSH per onward message and, when the task returns, a MULTI/ZREM/HDEL/EXEC for the late ack.
  ``Settlement`` puts both into that pipeline instead, in that order, after the ledger: the
  onward message is in its list and the finished one out of the ``unacked`` hash together, so a
  worker killed after that round trip has nothing left to redo and one killed before it has its
  message restored as usual. Celery still acknowledges the message when the task returns; the
  Redis half of that ack is then already done, and only kombu's in-memory bookkeeping remains.

Keys, message format, restore of a dead worker's messages: all kombu's own, unchanged. Selected
by ``broker_transport`` in worker/celeryconfig.py; broker URLs stay ``redis://``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

log = logging.getLogger("gleaner.transport")

# The pipeline this thread's publishes go into while a stage settles (None: publish directly).
_settling = threading.local()
# Task id -> (QoS, delivery tag) for every message this process holds unacknowledged.
_held: dict[str, tuple[QoS, str]] = {}


class QoS(kombu_redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task_of: dict[str, str] = {}  # delivery tag -> task id
        self._settled: set[str] = set()  # tags whose Redis ack went out in a stage's pipeline

    def append(self, message: Any, delivery_tag: str) -> None:
        super().append(message, delivery_tag)
        task_id = (message.headers or {}).get("id")
        if task_id:
            self._task_of[delivery_tag] = task_id
            _held[task_id] = (self, delivery_tag)

    def _forget(self, delivery_tag: str) -> bool:
        task_id = self._task_of.pop(delivery_tag, None)
        if task_id is not None and _held.get(task_id, (None, None))[1] == delivery_tag:
            del _held[task_id]
        if delivery_tag in self._settled:
            self._settled.discard(delivery_tag)
            return True
        return False

    def ack(self, delivery_tag: str) -> None:
        if self._forget(delivery_tag):
            virtual.QoS.ack(self, delivery_tag)  # Redis already has it; the rest is in memory
            return
        with self._slot_freed_on_failure(delivery_tag):
            super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self._forget(delivery_tag):
            virtual.QoS.ack(self, delivery_tag)  # the stage finished: nothing to hand back
            return
        with self._slot_freed_on_failure(delivery_tag):
            super().reject(delivery_tag, requeue=requeue)

    @contextlib.contextmanager
    def _slot_freed_on_failure(self, delivery_tag: str) -> Iterator[None]:
        """An ack or reject that cannot reach Redis leaves the message in Redis's unacked hash, to
        come back after the visibility timeout. Two ways it cannot:

        - Redis is unreachable (a network partition, an outage). kombu then keeps the message in
          its prefetch count for good, so a worker whose every slot met the outage never asks
          Redis for a message again, even once it is reachable (seen in tests/test_multihost.py:
          a worker host cut off for a minute). Free the slot; the error goes up to be logged.
        - The channel is gone: the consumer reconnected since the message came, and a task that
          was waiting in the pool then (not running, so worker/consumer.py did not settle it)
          acks or rejects on the old channel, whose transport has been collected. kombu raises
          AttributeError inside the event loop and the worker exits ("Unrecoverable error", seen
          when Redis crashed under the multi-host test). Free the slot and carry on.
        """
        try:
            yield
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)  # in memory only
            raise
        except AttributeError:
            transport = self.channel.connection
            if transport is not None and transport.client is not None:
                raise  # a live channel: a real bug, not ours to hide
            virtual.QoS.ack(self, delivery_tag)
            log.warning("a message's channel closed with a broker reconnect before its ack; "
                        "it returns through the visibility-timeout restore")


class Channel(kombu_redis.Channel):
    QoS = QoS
    _shared_client = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:
        pipe = getattr(_settling, "pipe", None)
        if pipe is None or kwargs.get("_publish_batch") is not None or (self._expires and queue in self._expires):
            return super()._put(queue, message, **kwargs)
        # The same list kombu's own _put would push to (no key prefix: see settles_in_pipeline).
        pipe.lpush(self._q_for_pri(queue, self._get_message_priority(message, reverse=False)), dumps(message))
        return None


class Transport(kombu_redis.Transport):
    Channel = Channel


def settles_in_pipeline(app: Any) -> bool:
    """Whether ``Settlement`` can work for this app: its broker is this transport, without a
    global key prefix (the pipeline writes kombu's keys as they are). The caller also needs its
    pipeline on the broker's Redis (Gleaner's runtime and broker share one URL)."""
    options = app.conf.broker_transport_options or {}
    return app.conf.broker_transport == f"{__name__}:Transport" and not options.get("global_keyprefix")


class Settlement:
    """A stage's onward messages and its own late ack, queued onto the stage's pipeline.

    ``with Settlement(pipe, task_id):`` routes this thread's task messages onto ``pipe`` (the
    caller executes it after the block); leaving the block without an error adds the Redis half
    of the ack of ``task_id``'s message, last. Once ``pipe`` has executed without error,
    ``confirm()`` tells kombu's own ack that Redis has it already."""

    def __init__(self, pipe: Any, task_id: str | None) -> None:
        self.pipe = pipe
        self.held = _held.get(task_id) if task_id else None

    def __enter__(self) -> Settlement:
        _settling.pipe = self.pipe
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        _settling.pipe = None
        if exc_type is None and self.held is not None:
            qos, tag = self.held
            qos._remove_from_indices(tag, self.pipe)  # ZREM + HDEL on the caller's pipeline

    def confirm(self) -> None:
        if self.held is not None:
            qos, tag = self.held
            qos._settled.add(tag)
