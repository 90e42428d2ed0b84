"""Jobs to stage queues as Celery messages: ``gleaner.<stage>`` by name (routing picks the queue),
the job's id as the argument and its fields (worker/job.py) as keywords, at the job's priority.

``Dispatcher`` is the runner's Sender (worker/runner.py) for the Celery deployment: it is handed
a Redis pipeline that already holds the messages' ledger entries and publishes the messages after
it, or into it when the transport allows (see worker/transport.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery

from worker import runner
from worker.app import app as celery_app
from worker.job import Message
from worker.runtime import get_runtime
from worker.transport import Settlement, settles_in_pipeline


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self.in_pipeline = settles_in_pipeline(app)

    def publish(self, message: Message, sent: float, *, producer: Any = None, into_pipeline: bool = False) -> None:
        args, kwargs = [message.job_id], {"sent": sent, **message.fields}
        # The reprs Flower shows, made by repr (the arguments are plain JSON values) rather than by
        # Celery's saferepr, and no result handle kept on the sending task: together 15% of a
        # send's CPU, four sends an article.
        options: dict[str, Any] = {}
        if into_pipeline:
            # Queued onto a Redis pipeline, so there is no network to retry over; and the
            # anonymous exchange needs no declaring (kombu's cached declare check alone is a fifth
            # of a send).
            options = {"retry": False, "declare": []}
        self.app.send_task(f"gleaner.{message.stage}", args=args, kwargs=kwargs, priority=message.priority,
                           producer=producer, argsrepr=repr(args), kwargsrepr=repr(kwargs), add_to_parent=False,
                           **options)

    def settle(self, pipe: redis.client.Pipeline, messages: Sequence[Message], sent: float,
               task_id: str | None) -> Callable[[], None]:
        if self.in_pipeline:
            with Settlement(pipe, task_id) as settlement:  # after the ledger: written down, then sent
                for message in messages:
                    self.publish(message, sent, into_pipeline=True)
            return settlement.confirm

        def publish_after() -> None:
            if not messages:
                return
            with self.app.producer_or_acquire() as producer:  # one producer for a batch, not one per message
                for message in messages:
                    self.publish(message, sent, producer=producer)

        return publish_after


def send(messages: Sequence[Message]) -> None:
    """Put messages on their stages' queues from outside a stage (``runner.send``), with this
    process's runtime: enqueueing, a retry from the dead-letter store, a due retry, the sweeper."""
    runner.send(get_runtime(), Dispatcher(celery_app), messages)
