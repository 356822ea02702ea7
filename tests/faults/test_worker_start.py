"""A worker started while its broker is down waits for it, however long, instead of exiting."""

from __future__ import annotations

import pytest

from tests.support.processes import RedisServer, Worker, free_port, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_a_worker_started_before_redis_waits_for_it_and_then_serves():
    port = free_port()
    worker = Worker("early", {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "MAESTRO_SWEEP_INTERVAL": "0"}, concurrency=1)
    redis = None
    try:
        # kombu waits 2, 4, 6 s between attempts: three failures take about 12 s.
        wait_for(lambda: worker.output().count("Cannot connect to") >= 3, 40, interval=0.2, what="three failed attempts")
        assert worker.process.poll() is None, "still running after failing to connect"
        redis = RedisServer(port=port)
        worker.wait_ready(timeout=40)
        assert worker.process.poll() is None
    finally:
        worker.stop()
        if redis is not None:
            redis.stop()
