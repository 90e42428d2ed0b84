"""The canary for worker/celery_compat.py: the private attributes it relies on are still there in
the installed Celery and kombu, a missing one turns its change off with a warning, and the
transport's pipelined publish still delivers."""

import logging

import celery
import kombu
import pytest
import redis
from kombu import Connection, Producer
from kombu.transport import redis as kombu_redis

from worker import celery_compat
from worker.app import app

TRANSPORT = "worker.celery_compat:Transport"


@pytest.fixture
def fresh_check():
    celery_compat.check.cache_clear()
    yield
    celery_compat.check.cache_clear()


def test_the_installed_celery_and_kombu_allow_every_change(fresh_check):
    assert celery.__version__.startswith(celery_compat.TESTED["celery"] + ".")
    assert kombu.__version__.startswith(celery_compat.TESTED["kombu"] + ".")
    assert {change: celery_compat.missing(change) for change in celery_compat.NEEDS} == {
        "consumer": [], "transport": []}
    assert celery_compat.check() == {"consumer": True, "transport": True}


def test_the_app_uses_them():
    assert app.conf.broker_transport == TRANSPORT
    assert app.conf.worker_consumer == "worker.celery_compat:Consumer"
    assert celery_compat.publishes_into_pipelines(app)
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False


def test_a_missing_attribute_turns_its_change_off_with_a_warning(fresh_check, monkeypatch, caplog):
    monkeypatch.delattr(kombu_redis.Channel, "_q_for_pri")
    with caplog.at_level(logging.WARNING, logger="gleaner.celery_compat"):
        assert celery_compat.transport_class() == "redis"  # kombu's own transport, by its public name
    assert celery_compat.consumer_class() == "worker.celery_compat:Consumer"  # the other change stays
    assert "Channel._q_for_pri" in caplog.text and "transport change is off" in caplog.text


def test_messages_still_go_round(redis_url):
    with Connection(redis_url, transport=TRANSPORT) as conn:
        queue = conn.SimpleQueue("gleaner-compat-test")
        try:
            for n in range(3):
                queue.put({"n": n})
            got = []
            for _ in range(3):
                message = queue.get(timeout=5)
                got.append(message.payload["n"])
                message.ack()
            assert got == [0, 1, 2]
        finally:
            queue.close()
    assert redis.Redis.from_url(redis_url).hlen("unacked") == 0  # every ack reached Redis


def test_publishes_into_a_pipeline_wait_for_it_and_arrive_as_kombus_own(redis_url):
    client = redis.Redis.from_url(redis_url)
    with Connection(redis_url, transport=TRANSPORT, transport_options={"priority_steps": [0, 3, 6, 9]}) as conn:
        queue = conn.SimpleQueue("gleaner-compat-pipe")
        try:
            producer = Producer(conn.default_channel)
            pipe = client.pipeline(transaction=False)
            pipe.set("gleaner-compat-before", "1")
            with celery_compat.publishing_into(producer, pipe):
                producer.publish({"n": 7}, routing_key="gleaner-compat-pipe", priority=6)
            assert client.llen("gleaner-compat-pipe\x06\x166") == 0  # queued, not sent
            assert pipe.execute()[0] is True
            assert client.llen("gleaner-compat-pipe\x06\x166") == 1  # kombu's list for that priority step
            assert queue.get(timeout=5).payload == {"n": 7}
            producer.publish({"n": 8}, routing_key="gleaner-compat-pipe")  # outside: at once
            assert queue.get(timeout=5).payload == {"n": 8}
        finally:
            queue.close()
