"""A timer thread in every Celery worker that finds work whose worker or message was lost.

Why a timer in the worker and not Celery beat: beat is one more process to run and to keep
single (two beats double every schedule), and its schedule travels through the broker, the
very thing that is down when messages get lost. The timer needs nothing but the database:
it runs wherever a worker runs, starts and stops with it, and several workers sweeping at
once is safe (each item is taken by a compare-and-set before it is enqueued).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, sweep: Callable[[], object], interval: float) -> None:
        self.sweep = sweep
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="maestro-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.sweep()
            except Exception:  # the next sweep tries again
                logger.warning("sweep failed", exc_info=True)
            finally:
                connection.close()  # hold no connection between sweeps


_running: Sweeper | None = None
_lock = threading.Lock()


def start(sweep: Callable[[], object], interval: float) -> Sweeper:
    """Start this process's sweeper once."""
    global _running
    with _lock:
        if _running is None or not _running.thread.is_alive():
            _running = Sweeper(sweep, interval).start()
        return _running


def stop() -> None:
    global _running
    with _lock:
        if _running is not None:
            _running.stop()
            _running = None
