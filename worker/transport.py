"""kombu's Redis transport, with one synchronous client per channel instead of one per command.

kombu builds a new ``redis.Redis`` object for every publish, ack and queue-size call (the
asynchronous client used for BRPOP is already cached). Building one copies redis-py's table of
response callbacks, which cost about 5% of a busy worker's CPU in a profile of the load run. A
``redis.Redis`` is safe to share between threads (each command borrows a connection from the
pool), so the channel keeps one, and builds a new one when the channel's pool is replaced after
a reconnect. Nothing else about the transport changes: same keys, same acks, same restore.

Selected by ``broker_transport`` in worker/celeryconfig.py; broker URLs stay ``redis://``.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
