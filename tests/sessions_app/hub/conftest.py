from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from sessions_app.hub import services
from sessions_app.hub.ratelimit import rate_limit_reset
from sessions_app.hub.selectors import health_cache_clear
from teams_app.models import PRD, Project

ROOT = Path(__file__).resolve().parents[3]
TASK = {
    "task_id": "T-1",
    "area": "db",
    "summary": "Add a subscriptions table for recurring orders",
    "hints": ["schema", "migration"],
    "prd": "PRD-7",
}


@pytest.fixture(autouse=True)
def _hub_defaults(settings):
    settings.HUB_RATE_LIMIT_PER_MINUTE = 100_000
    settings.HUB_MCP_WAIT_SECONDS = 30.0
    settings.HUB_ROUTER_CACHE_SECONDS = 0.0  # every test sees its own specialists
    rate_limit_reset()
    health_cache_clear()
    yield
    rate_limit_reset()
    health_cache_clear()


@pytest.fixture
def hub_project(project, builtin_specialists) -> Project:
    PRD.objects.create(project=project, reference="PRD-7", title="Subscriptions", status=PRD.Status.ACTIVE)
    return project


@pytest.fixture
def token(hub_project) -> str:
    _token, raw = services.api_token_create(project=hub_project, name="agent")
    return raw


@pytest.fixture
def hub_eager(settings):
    """Specialists run inline (Celery eager), in tests and through the code under test."""
    from config.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


class Api:
    """The Django test client speaking to the hub with a bearer token."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, token: str | None = None):
        return self.client.get(path, headers=self._headers(token))

    def post(self, path: str, body=None, token: str | None = None, raw: bytes | str | None = None):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type="application/json", headers=self._headers(token))


@pytest.fixture
def api(client, token) -> Api:
    return Api(client, token)


# -- subprocesses on the test database --------------------------------------------------------------


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL for processes the test starts (daphne, workers, MCP)."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "postgres")
        password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    options = "timeout=20&transaction_mode=IMMEDIATE"
    return f"sqlite:///{Path(db['NAME']).resolve()}?{options}"


def subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": subprocess_database_url(),
        "HUB_RATE_LIMIT_PER_MINUTE": "100000",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daphne:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = open(ROOT / "var" / f"daphne-hub-{os.getpid()}-{self.port}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> Daphne:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daphne exited: " + Path(self.log.name).read_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not start: " + Path(self.log.name).read_text()[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
