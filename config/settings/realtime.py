"""Redis, the Channels layer and Celery.

``REDIS_URL`` names the Redis used by the channel layer and, unless ``CELERY_BROKER_URL``
says otherwise (e.g. RabbitMQ), by Celery. Without it, ``manage.py serve`` starts an
embedded Redis and exports its URL before any child process reads these settings.
"""

from __future__ import annotations

from config import embedded_redis
from config.env import env_float, env_int, env_str
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
# Workers ride out broker restarts: retry connecting forever, at start-up too, and keep running
# tasks alive across the outage (they report through the database, not the broker).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's, minus a crash on reconnect
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 4.0)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Publishing (enqueue on commit) during an outage gives up after a few seconds instead of
# blocking the request; the sweeper re-enqueues whatever was not published.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}
# Specialist calls are I/O-bound: a thread pool with many slots, not one process per call.
CELERY_WORKER_POOL = env_str("CELERY_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 8)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("SPECIALIST_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("SPECIALIST_TIME_LIMIT", 360)

# Leases: a running contribution holds one, renewed by a heartbeat while its call runs (a
# streamed token renews it too). A worker that dies stops renewing; the sweeper hands the
# contribution to another worker once the lease has expired.
SPECIALIST_LEASE_SECONDS = env_float("SPECIALIST_LEASE_SECONDS", 30.0)
# How long a worker thread keeps its database connection (see config/celery.py).
WORKER_CONN_MAX_AGE = env_int("WORKER_CONN_MAX_AGE", 600)
SPECIALIST_HEARTBEAT_SECONDS = env_float("SPECIALIST_HEARTBEAT_SECONDS", SPECIALIST_LEASE_SECONDS / 3)
# The sweeper runs in every worker (a timer thread, see sessions_app/sweeper.py) this often;
# 0 turns it off.
MAESTRO_SWEEP_INTERVAL = env_float("MAESTRO_SWEEP_INTERVAL", 5.0)
# A round left synthesizing this long after its last contribution settled gets its synthesis
# enqueued again (the first message was lost, e.g. with a broker restart).
MAESTRO_SYNTHESIS_STALL_SECONDS = env_float("MAESTRO_SYNTHESIS_STALL_SECONDS", 5.0)

# The broker redelivers an unacknowledged message after the visibility timeout. The longest a
# live task legitimately holds one is the hard time limit of a specialist call (or the lease
# a deferred redelivery waits for), so the timeout is derived from that, with a margin: a live
# call is never redelivered, and a dead worker's message comes back within minutes, not an
# hour. The sweeper usually re-runs the call well before that; the late redelivery then finds
# the contribution finished and does nothing.
CELERY_VISIBILITY_TIMEOUT = env_int(
    "CELERY_VISIBILITY_TIMEOUT", int(max(CELERY_TASK_TIME_LIMIT, SPECIALIST_LEASE_SECONDS) + 60)
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often a worker moves messages whose visibility timeout passed back to the queue.
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_RESTORE_THROTTLE", 10),
    "socket_connect_timeout": 4,
    "socket_timeout": 10,
    "retry_on_timeout": True,
    "health_check_interval": 10,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_EXPIRES = 24 * 3600
# Tasks report through the database (contributions, events); nobody waits on a Celery result.
CELERY_TASK_IGNORE_RESULT = True

# Live session pages. Frames a page sends are small JSON objects; anything bigger or deeper is
# refused with an error frame before it is parsed.
LIVE_MAX_FRAME_BYTES = env_int("LIVE_MAX_FRAME_BYTES", 4096)
LIVE_MAX_JSON_DEPTH = env_int("LIVE_MAX_JSON_DEPTH", 8)
# Resume requests per connection: a burst, then one per interval.
LIVE_RESUME_BURST = env_int("LIVE_RESUME_BURST", 3)
LIVE_RESUME_INTERVAL = env_float("LIVE_RESUME_INTERVAL", 1.0)
LIVE_REPLAY_PAGE = env_int("LIVE_REPLAY_PAGE", 100)  # events per replayed frame
# A quiet page checks the log's last sequence number this often, so events the channel layer
# lost (Redis restart) still arrive.
LIVE_HEARTBEAT_SECONDS = env_float("LIVE_HEARTBEAT_SECONDS", 2.0)
# Streamed text of a session reaches each viewer as at most one frame per tick, however many
# specialists stream at once.
LIVE_FRAME_MS = env_int("LIVE_FRAME_MS", 100)
# Events reach each viewer at most once per this many milliseconds: the events of a burst (a
# round's calls finishing together, a synthesis) share frames; an event after a quiet spell goes
# at once.
LIVE_EVENT_FRAME_MS = env_int("LIVE_EVENT_FRAME_MS", 20)
# Threads for the sockets' database reads (sign-in, access checks, replays), apart from the one
# thread Django's synchronous code shares, so a reconnecting crowd does not queue behind pages.
LIVE_DB_THREADS = env_int("LIVE_DB_THREADS", 4)
# How long those threads keep a PostgreSQL connection between calls (SQLite: one per call).
LIVE_DB_CONN_MAX_AGE = env_int("LIVE_DB_CONN_MAX_AGE", 600)
# Each live event's fragment is rendered by one of the daphne processes with viewers of its
# session, which shares it in Redis; the others wait this long for it before rendering it
# themselves (sessions_app/render_share.py). 0: every process renders its own.
LIVE_RENDER_WAIT_MS = env_int("LIVE_RENDER_WAIT_MS", 500)
