"""One background thread per process that sends messages to the channel layer, in order.

A long-lived event loop keeps the channel layer's Redis connection open (a fresh
``async_to_sync`` per message would open a new loop and connection each time), and the caller,
often a Celery task in the middle of a round, returns at once. Jobs run in the order they were
submitted, so a contribution's start event and its streamed text reach Redis in that order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from channels.layers import get_channel_layer
from django.db import connection

logger = logging.getLogger(__name__)

Job = Callable[[asyncio.AbstractEventLoop], None]
BATCH_MESSAGE = "group.batch"
"""Several messages to one group that were queued together, in order: ``{"type": BATCH_MESSAGE,
"messages": [...]}``. Receivers handle each of ``messages`` as if it had come alone."""


class _Together:
    """A message that may travel with the ones queued right after it to the same group."""

    __slots__ = ("group", "message")

    def __init__(self, group: str, message: dict) -> None:
        self.group, self.message = group, message
STALE_SECONDS = 5.0  # a live message older than this is dropped: pages catch up from the log
SEND_TIMEOUT = 2.0  # one send waits this long for the channel layer (Redis down: give up, go on)


class Publisher:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, job: Job | _Together, *, expires: bool = True) -> None:
        """Run ``job(loop)`` on the publishing thread, after every job submitted before it.

        A job that waited more than ``STALE_SECONDS`` (the channel layer was down) is dropped
        unless ``expires`` is False: live messages that late help no page, and the ones behind
        them should not wait too."""
        with self._lock:
            # A forked child (e.g. a worker process) starts its own thread.
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="maestro-publisher", daemon=True)
                self._thread.start()
            self._queue.put((time.monotonic() if expires else None, job))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every job submitted so far has run; False if that took over ``timeout`` s."""
        done = threading.Event()
        self.submit(lambda loop: done.set(), expires=False)
        return done.wait(timeout)

    def group_send(self, group: str, message: dict) -> None:
        """Send ``message`` to a channel-layer group from the publishing thread."""
        self.submit(lambda loop: self.send(loop, group, message))

    def group_send_together(self, group: str, message: dict) -> None:
        """:meth:`group_send`, but messages to the same group queued one after another (the
        events of one commit, a session's streamed text) go as one :data:`BATCH_MESSAGE`: one
        channel-layer message, and a receiver that handles them at once."""
        self.submit(_Together(group, message))

    @staticmethod
    def send(loop: asyncio.AbstractEventLoop, group: str, message: dict) -> None:
        """On the publishing thread: send ``message`` to ``group``, waiting at most ``SEND_TIMEOUT``."""
        loop.run_until_complete(asyncio.wait_for(get_channel_layer().group_send(group, message), SEND_TIMEOUT))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            dropped = 0
            for queued, job in _joined(batch):
                # Checked before each send: while the layer is down, each send waits SEND_TIMEOUT.
                if queued is not None and time.monotonic() - queued > STALE_SECONDS:
                    dropped += 1
                    continue
                try:
                    job(loop)
                except Exception:  # the durable log has it; pages catch up from it
                    logger.warning("a live message could not be sent", exc_info=True)
            if dropped:
                logger.warning("dropped %d live message(s) older than %.0f s; pages catch up from the log", dropped, STALE_SECONDS)
            # Hold no database connection while idle (test databases are dropped under us).
            connection.close()


def _joined(batch: list[tuple[float | None, Job | _Together]]) -> list[tuple[float | None, Job]]:
    """``(queued at, job)`` to run, in order, with each run of :class:`_Together` messages to one
    group joined into one send (queued when its oldest message was)."""
    out: list[tuple[float | None, Job]] = []
    run: list[tuple[float | None, _Together]] = []

    def close_run() -> None:
        if not run:
            return
        group = run[0][1].group
        messages = [t.message for _, t in run]
        message = messages[0] if len(messages) == 1 else {"type": BATCH_MESSAGE, "messages": messages}
        times = [queued for queued, _ in run if queued is not None]
        out.append((min(times) if times else None, lambda loop: Publisher.send(loop, group, message)))
        run.clear()

    for queued, job in batch:
        if isinstance(job, _Together):
            if run and run[0][1].group != job.group:
                close_run()
            run.append((queued, job))
        else:
            close_run()
            out.append((queued, job))
    close_run()
    return out


publisher = Publisher()
