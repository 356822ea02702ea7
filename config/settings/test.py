"""Test profile: explicit. PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI),
otherwise SQLite and an embedded Redis started here, once per test process."""

from __future__ import annotations

import importlib
import os

if not os.environ.get("REDIS_URL"):
    from config import embedded_redis

    _EMBEDDED = embedded_redis.start()  # exports REDIS_URL for workers the tests spawn

    # The package's run profile was evaluated before this module; read Redis settings again.
    from config.settings import realtime as _realtime

    importlib.reload(_realtime)

from config.settings.base import *  # noqa: F403,E402
from config.settings.maestro import *  # noqa: F403,E402
from config.settings.realtime import *  # noqa: F403,E402

# One queue per test run (inherited by the workers the tests start), so runs never share tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.setdefault("MAESTRO_TEST_QUEUE", f"maestro-test-{os.getpid()}")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "maestro-test"  # noqa: F405
if not os.environ.get("DATABASE_URL"):
    # A file (not :memory:) so worker processes the tests start can share it; one per test run.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
