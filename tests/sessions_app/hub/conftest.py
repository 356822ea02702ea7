from __future__ import annotations

import json

import pytest

from sessions_app.hub import services
from sessions_app.hub.ratelimit import rate_limit_reset
from sessions_app.hub.selectors import health_cache_clear
from teams_app.models import PRD, Project

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
