"""``manage.py serve`` (what ``make run`` starts) keeps its children running: a Celery worker
that dies is started again, and the log says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.processes import LOGS, ROOT, RedisServer, free_port, subprocess_env, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def children_of(pid: int) -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                    found[int(entry)] = cmd.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def celery_child(pid: int) -> int | None:
    return next((child for child, cmd in children_of(pid).items() if " celery " in f" {cmd} " or "-m celery" in cmd), None)


def test_a_killed_worker_is_started_again_and_the_log_says_so():
    redis = RedisServer()
    log_path = LOGS / f"serve-{os.getpid()}.log"
    with open(log_path, "w") as log:
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(free_port())],
            cwd=ROOT, env=subprocess_env(REDIS_URL=redis.url, MAESTRO_SWEEP_INTERVAL="0", CELERY_CONCURRENCY="1"),
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        first = wait_for(lambda: celery_child(serve.pid), 30, what="the worker child")
        wait_for(lambda: "ready." in log_path.read_text(errors="replace"), 60, interval=0.2, what="the worker to be ready")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "restarting the Celery worker" in log_path.read_text(errors="replace"), 30, what="the restart")
        second = wait_for(lambda: celery_child(serve.pid), 30, what="a new worker child")
        assert second != first
        text = log_path.read_text(errors="replace")
        assert f"the Celery worker exited with status {-signal.SIGKILL}" in text
        assert serve.poll() is None, "serve itself keeps running"
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
        time.sleep(0.2)
        redis.stop()
