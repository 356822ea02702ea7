"""Typed session events and the one helper that sends them.

Generation is separate from delivery: services call :func:`event_emit` inside their
transaction; the event row is written with the session's next sequence number in that same
transaction, and the rendered fragment goes to the channel layer only after commit. The
database is the source of truth; the channel layer is a fast path that may drop messages
(a reconnecting client catches up from the log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from typing import Annotated, Literal

from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import F
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

logger = logging.getLogger(__name__)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContributionStarted(_Event):
    type: Literal["contribution.started"] = "contribution.started"
    contribution_id: int
    round_id: int


class ContributionDelta(_Event):
    type: Literal["contribution.delta"] = "contribution.delta"
    contribution_id: int
    text: str


class ContributionFinished(_Event):
    type: Literal["contribution.finished"] = "contribution.finished"
    contribution_id: int
    round_id: int


class ContributionFailed(_Event):
    type: Literal["contribution.failed"] = "contribution.failed"
    contribution_id: int
    round_id: int
    error: str


class RoundStarted(_Event):
    type: Literal["round.started"] = "round.started"
    round_id: int


class RoundProgress(_Event):
    type: Literal["round.progress"] = "round.progress"
    round_id: int
    done: int
    total: int


class SynthesisReady(_Event):
    type: Literal["synthesis.ready"] = "synthesis.ready"
    round_id: int
    synthesis_id: int


class KeyQuestionChanged(_Event):
    type: Literal["key_question.changed"] = "key_question.changed"
    question_id: int
    state: str


class PhaseChanged(_Event):
    type: Literal["phase.changed"] = "phase.changed"
    phase: str


class StatusChanged(_Event):
    type: Literal["status.changed"] = "status.changed"
    status: str
    reason: str = ""


class GateChanged(_Event):
    type: Literal["gate.changed"] = "gate.changed"
    gate: dict[str, bool]


class ValidationOpened(_Event):
    type: Literal["validation.opened"] = "validation.opened"
    point_id: int


class ValidationAnswered(_Event):
    type: Literal["validation.answered"] = "validation.answered"
    point_id: int
    response_id: int


class ValidationClosed(_Event):
    type: Literal["validation.closed"] = "validation.closed"
    point_id: int
    state: str


class BriefReady(_Event):
    type: Literal["brief.ready"] = "brief.ready"


class ProposalUpdated(_Event):
    type: Literal["proposal.updated"] = "proposal.updated"
    proposal_id: int
    version: int


class PlanUpdated(_Event):
    type: Literal["plan.updated"] = "plan.updated"
    items: int
    checks: int = 0


class MessagePosted(_Event):
    type: Literal["message.posted"] = "message.posted"
    contribution_id: int
    round_id: int


SessionEventPayload = Annotated[
    ContributionStarted
    | ContributionDelta
    | ContributionFinished
    | ContributionFailed
    | RoundStarted
    | RoundProgress
    | SynthesisReady
    | KeyQuestionChanged
    | PhaseChanged
    | StatusChanged
    | GateChanged
    | ValidationOpened
    | ValidationAnswered
    | ValidationClosed
    | MessagePosted
    | BriefReady
    | ProposalUpdated
    | PlanUpdated,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[SessionEventPayload] = TypeAdapter(SessionEventPayload)


def session_group(session_id: int) -> str:
    """The one place that names channel-layer groups."""
    return f"session.{session_id}"


def event_emit(*, session_id: int, event: _Event) -> int:
    """Append ``event`` to the session's log with the next sequence number; send it on commit.

    Precondition: called inside ``transaction.atomic`` (it opens one if not). The UPDATE of
    ``last_seq`` locks the session row until commit, so sequence numbers are gap-free and
    commit in order.
    """
    from sessions_app.models import DesignSession, SessionEvent

    with transaction.atomic():
        DesignSession.objects.filter(pk=session_id).update(last_seq=F("last_seq") + 1)
        seq = DesignSession.objects.filter(pk=session_id).values_list("last_seq", flat=True).get()
        row = SessionEvent.objects.create(session_id=session_id, seq=seq, type=event.type, payload=event.model_dump())
        transaction.on_commit(lambda: _deliver(row))
    return seq


def _deliver(row) -> None:
    _publisher.submit(row)


class _Publisher:
    """Renders and publishes committed events from one background thread per process.

    One long-lived event loop keeps the channel layer's Redis connection open (a fresh
    ``async_to_sync`` per event would open a new loop and connection each time), and the
    committing thread, often a Celery task about to fan out a round, returns at once instead
    of rendering fragments first. Events are published in the order they were committed.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, row) -> None:
        with self._lock:
            # A forked child (e.g. a worker process) starts its own thread.
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="maestro-event-publisher", daemon=True)
                self._thread.start()
            self._queue.put(row)

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
            for row in batch:
                self._publish(loop, row)
            # Hold no database connection while idle (test databases are dropped under us).
            connection.close()

    def _publish(self, loop: asyncio.AbstractEventLoop, row) -> None:
        from sessions_app.live import render_event

        try:
            html = render_event(row)  # this thread's own connection; no event loop is running here
            message = {"type": "session.event", "seq": row.seq, "html": html}
            loop.run_until_complete(get_channel_layer().group_send(session_group(row.session_id), message))
        except Exception:  # the log has it; clients catch up on reconnect
            logger.warning("live delivery of event %s #%s failed", row.session_id, row.seq, exc_info=True)


_publisher = _Publisher()
