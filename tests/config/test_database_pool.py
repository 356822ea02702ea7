"""On PostgreSQL, daphne's requests take their connections from one pool per process instead of
opening a new one (a new PostgreSQL server process) for every request; threads that keep their
own connection (a worker's, the sockets') take none from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import urllib3
from django.db import connection, connections

from config.celery import _keep_worker_connections
from config.db import connection_kept, pool_options, pools_off
from sessions_app.hub import services
from tests.support.db import postgres_only
from tests.support.processes import Daphne

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps({'pool': d.get('OPTIONS', {}).get('pool'), 'checks': d.get('CONN_HEALTH_CHECKS', False), 'age': d.get('CONN_MAX_AGE', 0)}))"
)


def _database_settings(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_POOL_", "CONN_MAX_AGE", "DATABASE_URL"))}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_postgresql_gets_a_checked_pool_unless_turned_off_or_connections_are_kept(tmp_path):
    url = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/maestro", "MAESTRO_DATA_DIR": str(tmp_path)}
    pooled = _database_settings(**url)
    assert pooled["pool"] == {"min_size": 1, "max_size": 10, "timeout": 5.0}
    assert pooled["checks"] is True and pooled["age"] == 0
    assert _database_settings(**url, DB_POOL_MAX_SIZE="4", DB_POOL_MIN_SIZE="9")["pool"]["min_size"] == 4
    assert _database_settings(**url, DB_POOL_MAX_SIZE="0")["pool"] is None
    assert _database_settings(**url, CONN_MAX_AGE="60")["pool"] is None  # Django allows no pool with kept connections
    assert _database_settings(MAESTRO_DATA_DIR=str(tmp_path))["pool"] is None  # SQLite


def test_a_kept_connection_takes_nothing_from_the_pool():
    pooled = {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0, "OPTIONS": {"pool": pool_options(
        min_size=1, max_size=5, timeout=3.0), "sslmode": "disable"}}
    kept = connection_kept(pooled, 600)
    assert kept["OPTIONS"] == {"sslmode": "disable"} and kept["CONN_MAX_AGE"] == 600 and kept["CONN_HEALTH_CHECKS"] is True
    assert "pool" in pooled["OPTIONS"], "the process's own settings are left alone"


def test_a_worker_keeps_its_threads_connections_out_of_the_pool(monkeypatch):
    pooled = {"ENGINE": "django.db.backends.postgresql", "NAME": "maestro", "CONN_MAX_AGE": 0,
              "OPTIONS": {"pool": {"max_size": 2}}}
    monkeypatch.setitem(connections.settings, "pooled", pooled)
    _keep_worker_connections()
    kept = connections.settings["pooled"]
    assert "pool" not in kept["OPTIONS"] and kept["CONN_MAX_AGE"] > 0 and kept["CONN_HEALTH_CHECKS"] is True


def test_a_process_that_renames_its_database_turns_its_pools_off():
    databases = {"default": {"OPTIONS": {"pool": {"max_size": 2}, "sslmode": "disable"}}, "other": {"OPTIONS": {}}}
    pools_off(databases)
    assert databases == {"default": {"OPTIONS": {"sslmode": "disable"}}, "other": {"OPTIONS": {}}}
    assert "pool" not in connection.settings_dict.get("OPTIONS", {}), "the tests' own process has none (tests/conftest.py)"


def _backends(name: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name])
        return {pid for (pid,) in cursor.fetchall()}


@postgres_only("a pool of PostgreSQL connections")
@pytest.mark.django_db(transaction=True)  # daphne reads the token this test commits
def test_daphne_serves_requests_from_its_pool_and_replaces_a_connection_the_server_dropped(project):
    _token, token = services.api_token_create(project=project, name="agent")
    name = f"maestro-pool-{uuid.uuid4().hex[:8]}"  # libpq's application name: this daphne's connections
    server = Daphne({"PGAPPNAME": name, "DB_POOL_MAX_SIZE": "3"}).wait_ready()
    http = urllib3.PoolManager(headers={"Authorization": f"Bearer {token}"})
    try:
        for _ in range(2):  # the pool opens, and may open a second connection beside its first
            assert http.request("GET", f"{server.url}/hub/ping").status == 200
        first = _backends(name)
        for _ in range(10):
            assert http.request("GET", f"{server.url}/hub/ping").status == 200
        after = _backends(name)
        assert first and first <= after, "the pooled connections stay open and serve the next requests"
        assert len(after) <= 3

        with connection.cursor() as cursor:  # the database drops them (a restart, an administrator)
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(after)])
        answer = http.request("GET", f"{server.url}/hub/ping")
        assert answer.status == 200, "a dropped connection is checked out of the pool, not handed to a request"
        assert _backends(name) and not (_backends(name) & after)
    finally:
        server.stop()
