"""Jobs to stage queues as Celery messages: ``gleaner.<stage>`` by name (routing picks the queue),
the job's id as the argument and its fields (worker/job.py) as keywords, at the job's priority.

``Dispatcher`` is the runner's Sender (worker/runner.py) for the Celery deployment.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from worker import runner
from worker.app import app as celery_app
from worker.job import Message
from worker.runtime import get_runtime


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, messages: Sequence[Message], sent: float) -> None:
        with self.app.producer_or_acquire() as producer:  # one producer for a batch, not one per message
            for message in messages:
                args, kwargs = [message.job_id], {"sent": sent, **message.fields}
                # The reprs Flower shows, made by repr (the arguments are plain JSON values) rather
                # than by Celery's saferepr, and no result handle kept on the sending task: together
                # 15% of a send's CPU. No retry wrapper: a failed send goes up to the caller, and the
                # ledger entry written before it gets the job sent again. No declaring: the
                # anonymous exchange routes by queue name, and kombu's declare of a Redis queue
                # reads the length of each of its priority lists, a round trip on every send.
                self.app.send_task(f"gleaner.{message.stage}", args=args, kwargs=kwargs,
                                   priority=message.priority, producer=producer, argsrepr=repr(args),
                                   kwargsrepr=repr(kwargs), add_to_parent=False, retry=False, declare=[])


def send(messages: Sequence[Message]) -> None:
    """Put messages on their stages' queues from outside a stage (``runner.send``), with this
    process's runtime: enqueueing, a retry from the dead-letter store, a due retry, the sweeper."""
    runner.send(get_runtime(), Dispatcher(celery_app), messages)
