"""kombu's Redis transport with one synchronous client per channel (worker/transport.py)."""

import redis
from kombu import Connection

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
