"""Redis, the Channels layer and Celery.

``REDIS_URL`` names the Redis used by the channel layer and, unless ``CELERY_BROKER_URL``
says otherwise (e.g. RabbitMQ), by Celery. Without it, ``manage.py serve`` starts an
embedded Redis and exports its URL before any child process reads these settings.
"""

from __future__ import annotations

from config import embedded_redis
from config.env import env_int, env_str
from config.settings.base import DATA_DIR

REDIS_URL = env_str("REDIS_URL")
# The embedded profile: no REDIS_URL given. While `manage.py serve` runs, its embedded Redis is
# published under the data directory, and every command of the checkout uses it; with nothing
# serving it stays empty (an in-memory layer and broker), and commands that need no Redis
# (migrate, seed_demo) still run.
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    REDIS_URL = embedded_redis.serving_url(DATA_DIR)

# RedisPubSubChannelLayer fits broadcast to many viewers of one session: one PUBLISH per
# group message, no per-channel lists (measured in `make bench`).
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER_BACKEND", "pubsub")
_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _LAYER_BACKENDS[CHANNEL_LAYER_BACKEND],
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "maestro")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or REDIS_URL or "cache+memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Specialist calls are I/O-bound: a thread pool with many slots, not one process per call.
CELERY_WORKER_POOL = env_str("CELERY_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 8)
# Time limits stay below the broker's visibility timeout so a live task is never redelivered.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often a worker looks for messages a dead worker took and never acknowledged.
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_RESTORE_THROTTLE", 10),
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("SPECIALIST_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("SPECIALIST_TIME_LIMIT", 360)
CELERY_RESULT_EXPIRES = 24 * 3600
# Tasks report through the database (contributions, events); nobody waits on a Celery result.
CELERY_TASK_IGNORE_RESULT = True
