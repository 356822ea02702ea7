"""Per-token rate limiting of the hub: a fixed one-minute window.

With ``REDIS_URL`` the counter lives in Redis (INCR + EXPIRE), shared by every daphne process;
without it (or while Redis is unreachable) an in-process counter keeps the limit per process.
``HUB_RATE_LIMIT_PER_MINUTE`` = 0 turns limiting off.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from django.conf import settings

from sessions_app.redis_client import redis_client

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_local: dict[str, tuple[int, int]] = {}
_local_lock = threading.Lock()


def _count_redis(client: redis.Redis, key: str, window: int) -> int:
    name = f"maestro:hub:rl:{key}:{window}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, WINDOW_SECONDS * 2)
    count, _ = pipe.execute()
    return int(count)


def _count_local(key: str, window: int) -> int:
    with _local_lock:
        seen_window, count = _local.get(key, (window, 0))
        count = count + 1 if seen_window == window else 1
        _local[key] = (window, count)
        if len(_local) > 10_000:  # forget keys of past windows
            for stale in [k for k, (w, _) in _local.items() if w != window]:
                del _local[stale]
        return count


def rate_limit_hit(key: str) -> int | None:
    """Count one request for ``key``. Returns None when it may proceed, else the seconds until
    the window resets (for ``Retry-After``)."""
    limit = int(getattr(settings, "HUB_RATE_LIMIT_PER_MINUTE", 0) or 0)
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    client = redis_client()
    count = None
    if client is not None:
        try:
            count = _count_redis(client, key, window)
        except redis.RedisError as exc:
            logger.warning("hub rate limit: Redis unavailable (%s); counting in this process", exc)
    if count is None:
        count = _count_local(key, window)
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def rate_limit_reset() -> None:
    """Forget in-process counters (tests)."""
    with _local_lock:
        _local.clear()
