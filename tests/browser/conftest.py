"""Real-browser fixtures: the product served by daphne with a real Celery worker against the
pytest test database, driven by headless Chromium (see ``chromium.py``).

Without ``/usr/bin/chromium`` the browser tests are skipped, except in CI (``CI=true``), where a
missing browser is a failure: ``.ci/run`` installs it.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from teams_app.models import Membership, Project
from tests.browser.chromium import CHROMEDRIVER, CHROMIUM, PASSWORD, Browser, Server
from tests.support.processes import Worker


@pytest.fixture(autouse=True)
def _chromium_installed():
    if CHROMIUM.exists():
        if not CHROMEDRIVER.exists():
            pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: apt-get install chromium-driver")
        return
    reason = f"Chromium is not installed ({CHROMIUM}); apt-get install chromium chromium-driver to run the browser tests"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture
def server(transactional_db):
    """The product on a free port. Depends on ``transactional_db`` so it stops before the flush."""
    srv = Server()
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture
def start_worker(transactional_db):
    """Start a real Celery worker when the test wants the session to move (``start_worker()``).

    Tests open the session page first and start the worker afterwards, so everything after
    the Team Assembly provably reaches the page over the WebSocket, not in its first render.
    """
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(f"browser{len(started)}", {})
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()
    # Tasks a session enqueued (with or without a worker) must not reach the next test's worker.
    from config.celery import app

    app.control.purge()


@pytest.fixture
def demo(transactional_db) -> Project:
    call_command("seed_demo", verbosity=0)
    return Project.objects.get(slug="demo")


@pytest.fixture
def member(demo):
    def make(username: str, role: str):
        user = get_user_model().objects.create_user(username=username, password=PASSWORD)
        Membership.objects.create(user=user, project=demo, role=role)
        return user

    return make


@pytest.fixture
def browser(server):
    opened: list[Browser] = []

    def open_browser(name: str) -> Browser:
        b = Browser(server.base_url, name)
        opened.append(b)
        return b

    yield open_browser
    for b in opened:
        b.close()
