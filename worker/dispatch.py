"""Jobs to stage queues as Celery messages: task ``gleaner.<stage>`` into the queue of the same name,
the job's id as the argument and its fields (worker/job.py) as keywords, at the job's priority.

``Dispatcher`` is the runner's Sender (worker/runner.py) for the Celery deployment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from celery import Celery

from worker import runner
from worker.app import app as celery_app
from worker.job import Message
from worker.queues import task_name
from worker.runtime import get_runtime


class Dispatcher:
    through: frozenset[str] = frozenset()  # every message goes to the broker (runner.Sender)

    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, messages: Sequence[Message], sent: float) -> None:
        amqp = self.app.amqp
        with self.app.producer_or_acquire() as producer:  # one producer for a batch, not one per message
            for message in messages:
                name, args, kwargs = task_name(message.stage), [message.job_id], {"sent": sent, **message.fields}
                # Celery's own two steps under send_task (build the message, publish it), without what
                # send_task adds around them that Gleaner does not use: the router (a stage's queue is
                # its name, from the table), a result handle, the parent task's lineage. Half of a
                # send's CPU, and a send follows every stage (bench/results/load.md, "issue 16:
                # where the rewrite's CPU goes"). The reprs Flower shows are made by repr (the
                # arguments are plain JSON values), not by Celery's saferepr. No retry wrapper: a
                # failed send goes up to the caller, and the ledger entry written before it gets the
                # job sent again. No declaring: the anonymous exchange routes by queue name, and
                # kombu's declare of a Redis queue reads the length of each of its priority lists.
                task = amqp.create_task_message(str(uuid.uuid4()), name, args, kwargs, argsrepr=repr(args),
                                                kwargsrepr=repr(kwargs))
                amqp.send_task_message(producer, name, task, queue=message.stage, priority=message.priority,
                                       retry=False, declare=[])


def send(messages: Sequence[Message]) -> None:
    """Put messages on their stages' queues from outside a stage (``runner.send``), with this
    process's runtime: enqueueing, a retry from the dead-letter store, a due retry, the sweeper."""
    runner.send(get_runtime(), Dispatcher(celery_app), messages)
