"""Commands of a checkout reach the embedded Redis that `manage.py serve` started (its URL is
published under the data directory), and never wait on a broker nobody serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from config import embedded_redis
from sessions_app.models import DesignSession
from tests.config.test_settings_profiles import _settings
from tests.support.processes import ROOT, Worker
from tests.support.processes import subprocess_database_url as database_url

REQ = "Add a subscriptions service that creates recurring orders through orders"


def test_settings_use_the_published_redis_while_it_answers(tmp_path):
    server = embedded_redis.EmbeddedRedis()
    try:
        published = embedded_redis.publish(server, tmp_path)
        s = _settings({"MAESTRO_DATA_DIR": str(tmp_path)})
        assert s["redis"] == server.url and s["broker"] == server.url
        assert s["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    finally:
        server.stop()
    # A file left behind by a killed `serve` names a dead port: ignored.
    assert published.exists()
    s = _settings({"MAESTRO_DATA_DIR": str(tmp_path)})
    assert s["redis"] == "" and s["broker"] == "memory://"
    embedded_redis.withdraw(published, server)
    assert not published.exists()


def _manage(args: list[str], data_dir, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", MAESTRO_DATA_DIR=str(data_dir), DATABASE_URL=database_url())
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


START = ["start_session", "--project", "demo", "--team", "new-service-integration", "--requirement", REQ,
         "--prd", "PRD-101", "--wait", "--json", "--timeout", "30"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_start_session_wait_is_served_by_the_workers_of_make_run(tmp_path):
    from django.conf import settings

    call_command("seed_demo", verbosity=0)
    # `serve` as under `make run`: the test run's embedded Redis plays its server, a worker on
    # the default queue its worker; the command is given no REDIS_URL, only the data directory.
    server = embedded_redis.EmbeddedRedis.__new__(embedded_redis.EmbeddedRedis)
    server.url = settings.REDIS_URL
    embedded_redis.publish(server, tmp_path)
    # The run profile's queue, also for the tasks the worker itself sends.
    worker = Worker(f"serve-{os.getpid()}", {"MAESTRO_TEST_QUEUE": "celery"}, queue="celery")
    try:
        out = _manage(START, tmp_path)
    finally:
        worker.stop()
    assert out.returncode == 0, out.stderr
    assert "run in this command" not in out.stderr  # the worker did the work
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "awaiting_user" and outcome["phase"] == "design"
    assert all(r["status"] == "done" for r in outcome["rounds"])
    assert DesignSession.objects.get(pk=outcome["session"]).status == "awaiting_user"


@pytest.mark.django_db(transaction=True)
def test_with_nothing_serving_the_command_runs_the_specialists_itself(tmp_path):
    call_command("seed_demo", verbosity=0)
    out = _manage(START, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "the specialists run in this command" in out.stderr
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "awaiting_user" and outcome["phase"] == "design"
