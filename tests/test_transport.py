"""kombu's Redis transport with one client per channel and settlement in the stage's pipeline (worker/transport.py)."""

from contextlib import contextmanager

import pytest
import redis
from kombu import Connection

from tests.servers import RedisServer

from worker.app import app


def test_the_app_uses_it():
    assert app.conf.broker_transport == "worker.transport:Transport"


def test_a_channel_keeps_one_client_until_its_pool_is_replaced(redis_url):
    with Connection(redis_url, transport="worker.transport:Transport") as conn:
        channel = conn.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        assert channel._create_client(asynchronous=True) is not first  # BRPOP's own, as before
        channel._disconnect_pools()  # what a reconnect or a fork does
        again = channel._create_client()
        assert again is not first and again.connection_pool is channel.pool
        assert again.ping()


def test_messages_still_go_round(redis_url):
    with Connection(redis_url, transport="worker.transport:Transport") as conn:
        queue = conn.SimpleQueue("gleaner-transport-test")
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


@contextmanager
def held_message(redis_url: str, name: str, task_id: str):
    """A message with a Celery-style task id, consumed (unacknowledged) through the transport."""
    with Connection(redis_url, transport="worker.transport:Transport") as conn:
        queue = conn.SimpleQueue(name)
        try:
            queue.put({"n": 1}, headers={"id": task_id})
            yield queue, queue.get(timeout=5)
        finally:
            queue.close()


def test_a_settlement_acks_in_the_callers_round_trip_and_kombus_ack_then_skips_redis(redis_url, monkeypatch):
    from worker.transport import QoS, Settlement

    client = redis.Redis.from_url(redis_url)
    with held_message(redis_url, "gleaner-settle-test", "task-1") as (queue, message):
        assert client.hlen("unacked") == 1
        pipe = client.pipeline(transaction=False)
        with Settlement(pipe, "task-1") as settlement:
            pass
        assert client.hlen("unacked") == 1  # queued on the pipeline, not sent by itself
        pipe.execute()
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        settlement.confirm()

        def no_redis(self, *args, **kwargs):
            raise AssertionError("kombu's ack went to Redis again")

        monkeypatch.setattr(QoS, "_remove_from_indices", no_redis)
        message.ack()
        qos = queue.consumer.channel.qos
        qos._flush()  # kombu settles its in-memory acks lazily
        assert not qos._delivered  # kombu's own bookkeeping done


def test_an_unconfirmed_settlement_leaves_the_ack_to_kombu(redis_url):
    from worker.transport import Settlement

    client = redis.Redis.from_url(redis_url)
    with held_message(redis_url, "gleaner-settle-test-2", "task-2") as (_queue, message):
        with Settlement(client.pipeline(transaction=False), "task-2"):
            pass  # the pipeline never executes (Redis failed, say)
        message.ack()
        assert client.hlen("unacked") == 0  # kombu's own ack removed it


def test_messages_published_in_a_settlement_wait_for_the_pipeline(redis_url):
    from worker.transport import Settlement

    client = redis.Redis.from_url(redis_url)
    with Connection(redis_url, transport="worker.transport:Transport") as conn:
        queue = conn.SimpleQueue("gleaner-settle-test-3")
        try:
            pipe = client.pipeline(transaction=False)
            pipe.set("gleaner-settle-before", "1")
            with Settlement(pipe, None):
                queue.put({"n": 7})
            assert client.llen("gleaner-settle-test-3") == 0
            pipe.execute()
            assert client.llen("gleaner-settle-test-3") == 1
            assert queue.get(timeout=5).payload == {"n": 7}
            queue.put({"n": 8})  # outside one: at once
            assert queue.get(timeout=5).payload == {"n": 8}
        finally:
            queue.close()


def test_an_ack_or_reject_that_cannot_reach_redis_frees_the_prefetch_slot(tmp_path):

    server = RedisServer(tmp_path / "redis").start()
    try:
        for settle in ("ack", "requeue"):
            with held_message(server.url, f"gleaner-outage-{settle}", f"task-{settle}") as (queue, message):
                qos = queue.consumer.channel.qos
                assert len(qos._delivered) == 1
                server.stop()  # Redis gone (a partition looks the same from here)
                with pytest.raises(queue.consumer.channel.connection_errors):
                    message.ack() if settle == "ack" else message.reject(requeue=True)
                qos._flush()
                # Still in Redis's unacked hash for the visibility-timeout restore; not held here,
                # or a worker whose every slot met the outage would never consume again.
                assert not qos._delivered
                server.start()
    finally:
        server.stop()


def test_an_ack_on_a_channel_a_reconnect_collected_frees_the_slot_without_raising(redis_url):
    with held_message(redis_url, "gleaner-stale-channel", "task-stale") as (queue, message):
        channel = queue.consumer.channel
        qos = channel.qos
        # What a broker reconnect leaves behind (kombu's Connection.collect and the pools'
        # disconnect): the old channel's transport no longer has its client.
        channel._disconnect_pools()
        transport_client, channel.connection.client = channel.connection.client, None
        try:
            message.reject(requeue=True)  # kombu raised AttributeError here, and the worker exited
            qos._flush()
            assert not qos._delivered
        finally:
            channel.connection.client = transport_client
    client = redis.Redis.from_url(redis_url)
    assert client.hexists("unacked", message.delivery_tag)  # left for the restore
    client.hdel("unacked", message.delivery_tag)
    client.zrem("unacked_index", message.delivery_tag)
