"""The canary for worker/celery_compat.py: the private attributes it relies on are still there in
the installed Celery and kombu, and a missing one turns its change off with a warning."""

import logging

import celery
import kombu
import pytest
from celery.worker.request import Request

from worker import celery_compat
from worker.app import app


@pytest.fixture
def fresh_check():
    celery_compat.check.cache_clear()
    yield
    celery_compat.check.cache_clear()


def test_the_installed_celery_and_kombu_are_the_ones_it_was_written_for(fresh_check):
    assert celery.__version__.startswith(celery_compat.TESTED["celery"] + ".")
    assert kombu.__version__.startswith(celery_compat.TESTED["kombu"] + ".")
    assert {change: celery_compat.missing(change) for change in celery_compat.NEEDS} == {"consumer": []}
    assert celery_compat.check() == {"consumer": True}


def test_the_app_uses_it_and_kombus_own_transport():
    assert app.conf.worker_consumer == "worker.celery_compat:Consumer"
    assert app.conf.broker_transport is None  # from the URL: kombu's own Redis transport
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False


def test_a_missing_attribute_turns_the_change_off_with_a_warning(fresh_check, monkeypatch, caplog):
    monkeypatch.delattr(Request, "acknowledged")
    with caplog.at_level(logging.WARNING, logger="gleaner.celery_compat"):
        assert celery_compat.consumer_class() == celery_compat.DEFAULT_CONSUMER  # Celery's own
    assert "Request.acknowledged" in caplog.text and "consumer change is off" in caplog.text


class _CollectedChannel:
    """What a message's channel is after a broker reconnect collected it: acking or rejecting on it
    raises AttributeError (kombu's Redis channel reaching for its transport's dropped client)."""

    def basic_ack(self, *args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    basic_reject = basic_ack


def _request(task_id: str) -> Request:
    """A real Celery request for a stage task, as the consumer makes it from a message on a channel
    that a reconnect has since collected."""
    import json

    from kombu import Message

    import worker.celery_tasks  # noqa: F401  (registers the stage tasks)

    headers, _, body, _ = app.amqp.as_task_v2(task_id, "gleaner.fetch", args=("job",), kwargs={})
    message = Message(body=json.dumps(body), headers=headers, content_type="application/json",
                      content_encoding="utf-8", delivery_tag=task_id, channel=_CollectedChannel())
    # As Celery's strategy makes it (celery/worker/strategy.py).
    return Request(message, app=app, on_ack=message.ack_log_error, on_reject=message.reject_log_error)


def test_a_lost_connection_settles_every_task_in_hand_running_or_waiting_in_the_pool(monkeypatch):
    from celery.worker import state
    from celery.worker.consumer import Consumer as CeleryConsumer

    running, waiting = _request("compat-running"), _request("compat-waiting")
    state.task_reserved(running)
    state.task_accepted(running)
    state.task_reserved(waiting)  # handed to the pool, no child has started it yet
    base_calls = []
    monkeypatch.setattr(CeleryConsumer, "on_connection_error_after_connected",
                        lambda self, exc: base_calls.append(exc))
    try:
        with pytest.raises(AttributeError):  # what a late reject meets unsettled: the worker exited
            _request("compat-unsettled").reject(requeue=True)
        consumer = object.__new__(celery_compat.Consumer)  # only the connection-loss path runs
        consumer.connection = None
        lost = ConnectionError("Redis went away")
        consumer.on_connection_error_after_connected(lost)
        assert base_calls == [lost]  # Celery's own reconnect follows
        assert running.acknowledged and waiting.acknowledged
        # The task waiting in the pool runs after the drop, finds Redis gone and rejects its
        # message: with the request settled, nothing goes to the dead channel.
        waiting.reject(requeue=True)
        running.acknowledge()
    finally:
        state.task_ready(running)
        state.task_ready(waiting)


class _Hub:
    """The event loop's queue of callbacks, as Celery's consumer hands it an ack."""

    def __init__(self):
        self.ready = []

    def call_soon(self, callback):
        self.ready.append(callback)
        return callback


def _consumer(connection):
    consumer = celery_compat.Consumer.__new__(celery_compat.Consumer)  # no worker around it
    consumer.hub, consumer.connection = _Hub(), connection
    return consumer


def test_an_ack_scheduled_before_the_broker_connection_dropped_is_dropped():
    acks = []
    consumer = _consumer(connection="the connection the message came by")
    consumer.call_soon_ack(acks.append, "late")
    consumer.call_soon_ack(acks.append, "on time")
    consumer.hub.ready.pop()()  # runs while its connection is up: acked
    consumer.connection = None  # dropped; Celery is reconnecting
    consumer.hub.ready.pop()()  # would go to the dead channel (and stop the worker): dropped
    assert acks == ["on time"]
    consumer.connection = "a new connection"
    consumer.call_soon_ack(acks.append, "after the reconnect")
    consumer.hub.ready.pop()()
    assert acks == ["on time", "after the reconnect"]
