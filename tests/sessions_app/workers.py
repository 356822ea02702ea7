"""Start real Celery worker processes against the test database and broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db.get("USER") or "postgres"
        return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


class Worker:
    def __init__(self, name: str, env: dict[str, str], concurrency: int = 8) -> None:
        self.name = f"{name}@maestro-test"
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": test_database_url(), **env}
        self.log = open(ROOT / "var" / f"worker-{name}-{os.getpid()}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
                "--concurrency", str(concurrency), "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-n", self.name,
                "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Worker:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {Path(self.log.name).read_text()[-2000:]}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return self
        raise RuntimeError(f"worker not ready: {Path(self.log.name).read_text()[-2000:]}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
