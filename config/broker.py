"""Celery's Redis transport, made to survive a Redis restart.

When the broker connection drops, kombu detaches the old connection's parameters, yet the
worker still uses channels of that connection: closing them (which puts unacknowledged
messages back) and acknowledging tasks that finish during the outage. Each then needs a new
Redis client, and building it fails with ``AttributeError`` ('NoneType' object has no
attribute 'hostname'), an error the worker does not expect: it logs "Unrecoverable error" and
the process exits. Here that case raises a connection error instead, which the worker handles
as it handles any broken connection: it logs, reconnects and keeps running. The messages
concerned stay in Redis' unacked set and come back after the visibility timeout; the sweeper
re-enqueues their contributions well before that (and the contributions themselves are
idempotent), so nothing is lost.
"""

from __future__ import annotations

import redis as redis_client
from kombu.transport import redis


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis_client.ConnectionError("This channel's broker connection is closed.")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
