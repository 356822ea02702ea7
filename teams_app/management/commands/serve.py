"""Serve the whole product: embedded Redis (unless REDIS_URL), a Celery worker and daphne."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand

from config.embedded_redis import die_with_parent

RESTART_BACKOFF_MAX = 30.0  # seconds between restarts of a child that keeps exiting at once
STABLE_AFTER = 60.0  # a child that ran this long starts again without waiting


@dataclass
class Child:
    """One supervised process: started again whenever it exits, until we stop."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=die_with_parent)
        self.started = time.monotonic()
        self.restart_at = None

    def check(self, log) -> None:
        """Restart the child if it exited (after a growing pause if it keeps exiting)."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                log(f"restarting the {self.name} (restart {self.restarts})")
                self.start()
            return
        if self.process is None or self.process.poll() is None:
            return
        ran = now - self.started
        self.backoff = 0.0 if ran >= STABLE_AFTER else min(max(1.0, self.backoff * 2), RESTART_BACKOFF_MAX)
        log(f"the {self.name} exited with status {self.process.returncode} after {ran:.0f} s; "
            f"starting it again in {self.backoff:.0f} s")
        self.restart_at = now + self.backoff

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()


class Command(BaseCommand):
    help = (
        "Run daphne, a Celery worker and (without REDIS_URL) an embedded Redis; a child that exits is "
        "started again; Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def handle(self, *args, port, host, **options):
        redis_server = None
        if not os.environ.get("REDIS_URL"):
            from config import embedded_redis

            redis_server = embedded_redis.start()
            published = embedded_redis.publish(redis_server, settings.DATA_DIR)
            self.stdout.write(f"embedded Redis on {redis_server.url} (other commands find it in {published})")
        env = {
            **os.environ,
            "MAESTRO_SERVE_STATIC": os.environ.get("MAESTRO_SERVE_STATIC", "1"),
            # Workers build links without a request (emails): they point where this serves.
            "PORT": str(port),
            "HOST": host,
        }
        python = sys.executable
        children = [
            Child(
                "Celery worker",
                [
                    python, "-m", "celery", "-A", "config", "worker",
                    "--pool", settings.CELERY_WORKER_POOL,
                    "--concurrency", str(settings.CELERY_WORKER_CONCURRENCY),
                    "--loglevel", "INFO",
                ],
                env,
            ),
            Child("web server (daphne)", [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"], env),
        ]
        for child in children:
            child.start()
        self.stdout.write(self.style.SUCCESS(f"Maestro is serving on http://{host}:{port}/ (Ctrl-C stops it)"))
        stopping = False

        def stop(*_args):
            nonlocal stopping
            stopping = True

        def log(message: str) -> None:
            self.stderr.write(f"[serve] {message}")
            self.stderr.flush()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        parent = os.getppid()
        try:
            # Stop with Ctrl-C or SIGTERM, or when whoever started us is gone; a child that
            # exits on its own is started again.
            while not stopping and os.getppid() == parent:
                for child in children:
                    child.check(log)
                if redis_server is not None and redis_server.process.poll() is not None:
                    log("the embedded Redis exited; starting it again on the same port")
                    redis_server.restart()
                time.sleep(0.5)
        finally:
            for child in children:
                child.stop()
            deadline = time.monotonic() + 10
            for child in children:
                child.wait(deadline)
            if redis_server is not None:
                embedded_redis.withdraw(published, redis_server)
                redis_server.stop()
            self.stdout.write("stopped")
