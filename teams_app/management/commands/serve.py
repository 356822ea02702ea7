"""Serve the whole product: embedded Redis (unless REDIS_URL), a Celery worker and daphne."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from config.embedded_redis import die_with_parent


class Command(BaseCommand):
    help = "Run daphne, a Celery worker and (without REDIS_URL) an embedded Redis; Ctrl-C stops them all."

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
            subprocess.Popen(
                [
                    python, "-m", "celery", "-A", "config", "worker",
                    "--pool", settings.CELERY_WORKER_POOL,
                    "--concurrency", str(settings.CELERY_WORKER_CONCURRENCY),
                    "--loglevel", "INFO",
                ],
                env=env,
                preexec_fn=die_with_parent,
            ),
            subprocess.Popen(
                [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
                env=env,
                preexec_fn=die_with_parent,
            ),
        ]
        self.stdout.write(self.style.SUCCESS(f"Maestro is serving on http://{host}:{port}/ (Ctrl-C stops it)"))
        stopping = False

        def stop(*_args):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        parent = os.getppid()
        try:
            # Stop with Ctrl-C or SIGTERM, when a child exits, or when whoever started us is gone.
            while not stopping and all(child.poll() is None for child in children) and os.getppid() == parent:
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            if redis_server is not None:
                embedded_redis.withdraw(published, redis_server)
                redis_server.stop()
            self.stdout.write("stopped")
