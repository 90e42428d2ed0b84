"""Jobs to stage queues as Celery messages: ``gleaner.<stage>`` by name (routing picks the queue),
the job's id as the argument and its fields (worker/job.py) as keywords, at the job's priority.

``Dispatcher`` is the runner's Sender (worker/runner.py) for the Celery deployment: it is handed a
Redis pipeline that already holds the messages' ledger entries, and queues the messages onto it
when the transport allows (worker/celery_compat.py), else publishes them once it has executed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery

from worker import runner
from worker.app import app as celery_app
from worker.celery_compat import publishes_into_pipelines, publishing_into
from worker.job import Message
from worker.runtime import get_runtime


def _nothing() -> None:
    pass


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self.into_pipelines = publishes_into_pipelines(app)

    def publish(self, message: Message, sent: float, producer: Any) -> None:
        args, kwargs = [message.job_id], {"sent": sent, **message.fields}
        # The reprs Flower shows, made by repr (the arguments are plain JSON values) rather than by
        # Celery's saferepr, and no result handle kept on the sending task: together 15% of a
        # send's CPU. No retry wrapper: a failed send goes up to the caller, and the ledger entry
        # written before it gets it sent again. No declaring: the anonymous exchange routes by
        # queue name (kombu's cached declare check alone is a fifth of a send).
        self.app.send_task(f"gleaner.{message.stage}", args=args, kwargs=kwargs, priority=message.priority,
                           producer=producer, argsrepr=repr(args), kwargsrepr=repr(kwargs), add_to_parent=False,
                           retry=False, declare=[])

    def settle(self, pipe: redis.client.Pipeline, messages: Sequence[Message], sent: float) -> Callable[[], None]:
        if not messages:
            return _nothing
        if self.into_pipelines:
            with self.app.producer_or_acquire() as producer, publishing_into(producer, pipe):
                for message in messages:
                    self.publish(message, sent, producer)  # queued at the end of the caller's round trip
            return _nothing

        def publish_after() -> None:
            with self.app.producer_or_acquire() as producer:  # one producer for a batch, not one per message
                for message in messages:
                    self.publish(message, sent, producer)

        return publish_after


def send(messages: Sequence[Message]) -> None:
    """Put messages on their stages' queues from outside a stage (``runner.send``), with this
    process's runtime: enqueueing, a retry from the dead-letter store, a due retry, the sweeper."""
    runner.send(get_runtime(), Dispatcher(celery_app), messages)
