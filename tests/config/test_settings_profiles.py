"""The settings pick SQLite or PostgreSQL, embedded or external Redis, from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], 'db': str(settings.DATABASES['default']['NAME']), "
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'broker': settings.CELERY_BROKER_URL, "
    "'embedded': settings.EMBEDDED_REDIS, 'redis': settings.REDIS_URL}))"
)


def _settings(env: dict[str, str], module: str = "config.settings") -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_are_sqlite_and_embedded_redis(tmp_path):
    s = _settings({"MAESTRO_DATA_DIR": str(tmp_path)})
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["db"].startswith(str(tmp_path))
    assert s["embedded"] is True and s["redis"] == ""


def test_database_url_selects_postgresql(tmp_path):
    s = _settings({"MAESTRO_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@127.0.0.1:5432/maestro"})
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["db"] == "maestro"


def test_redis_url_feeds_channel_layer_and_celery(tmp_path):
    s = _settings({"MAESTRO_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert s["embedded"] is False
    assert s["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert s["broker"] == "redis://127.0.0.1:6379/3"


def test_test_settings_start_an_embedded_redis_when_none_is_given(tmp_path):
    s = _settings({"MAESTRO_DATA_DIR": str(tmp_path)}, module="config.settings.test")
    assert s["redis"].startswith("redis://127.0.0.1:")
    assert not s["redis"].startswith("redis://127.0.0.1:6379/")
    import redis

    port = int(s["redis"].split(":")[2].split("/")[0])
    # the server belonged to the probe process and stopped with it
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping()
