"""Typed session events and the one helper that appends them to the session's log.

Generation is separate from delivery: services call :func:`event_emit` inside their
transaction; the event row is written with the session's next sequence number in that same
transaction, and :data:`event_committed` is sent after commit. The delivery module listens,
renders the event's fragment once and publishes it. The database is the source of truth; the
channel layer is a fast path that may drop messages (a reconnecting client catches up from the
log). Streamed text is not an event: it goes over the channel layer only (``streaming``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Literal

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sessions_app.models import DesignSession, SessionEvent


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContributionStarted(_Event):
    type: Literal["contribution.started"] = "contribution.started"
    contribution_id: int
    round_id: int


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


event_committed = Signal()
"""Sent after the transaction that appended an event commits, with ``row`` (the SessionEvent)."""

LEGACY_DELTA = "contribution.delta"
"""Streamed text that older versions kept in the log; such rows are replayed as sequence markers."""


def _seq_reserve(session_id: int, count: int) -> int:
    """Take the next ``count`` sequence numbers of the session's log; returns the first. One
    statement where the database returns what it updated (PostgreSQL, SQLite ≥ 3.35)."""
    connection = transaction.get_connection()
    if connection.features.can_return_columns_from_insert:
        table = connection.ops.quote_name(DesignSession._meta.db_table)  # the model's own name, no input
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + %s WHERE id = %s RETURNING last_seq",  # noqa: S608
                [count, session_id],
            )
            row = cursor.fetchone()
        if row is None:
            raise DesignSession.DoesNotExist(f"no session {session_id}")
        last = row[0]
    else:
        DesignSession.objects.filter(pk=session_id).update(last_seq=F("last_seq") + count)
        last = DesignSession.objects.filter(pk=session_id).values_list("last_seq", flat=True).get()
    return last - count + 1


def event_emit(*, session_id: int, event: _Event) -> int:
    """Append ``event`` to the session's log with the next sequence number; announce it on commit.

    Precondition: called inside ``transaction.atomic`` (it opens one if not). The UPDATE of
    ``last_seq`` locks the session row until commit, so sequence numbers are gap-free and
    commit in order.
    """
    return events_emit(session_id=session_id, events=[event])[0]


_gathering: ContextVar[tuple[int, list[_Event]] | None] = ContextVar("events_gathering", default=None)


@contextmanager
def events_gathered(session_id: int) -> Iterator[None]:
    """The events the block appends to the session's log go in together when it ends: one UPDATE
    and one INSERT for all of them (one statement on PostgreSQL) (a round's end appends several, from several steps), in the
    order they were appended, and they are announced after commit where the block began: before
    any on-commit work the block registered (the session's next step), as if appended one by one.
    A block inside another one for the same session hands its events to it. A block that raises
    appends none of its own: a step that may be undone alone (a savepoint) gathers its own events,
    so they go with it. Inside the block events have no sequence number yet (``event_emit``
    returns 0). Outside ``transaction.atomic`` nothing is gathered."""
    outer = _gathering.get()
    nested = outer is not None and outer[0] == session_id
    if not nested and not transaction.get_connection().in_atomic_block:
        yield
        return
    mine: list[_Event] = []
    if not nested:
        written: list[SessionEvent] = []
        transaction.on_commit(lambda: _committed_announce(written))
    token = _gathering.set((session_id, mine))
    try:
        yield
    finally:
        _gathering.reset(token)
    if nested:
        outer[1].extend(mine)
    else:
        written.extend(_insert(session_id, mine))


def events_emit(*, session_id: int, events: list[_Event]) -> list[int]:
    """Append ``events`` in order with the next sequence numbers (one UPDATE, one INSERT), as
    :func:`event_emit` does for one; returns their numbers (0s inside :func:`events_gathered`)."""
    gathering = _gathering.get()
    if gathering is not None and gathering[0] == session_id:
        gathering[1].extend(events)
        return [0] * len(events)
    return _append(session_id, events)


def _append(session_id: int, events: list[_Event]) -> list[int]:
    rows = _insert(session_id, events)
    for row in rows:
        transaction.on_commit(lambda row=row: _committed_announce([row]))
    return [row.seq for row in rows]


def _insert(session_id: int, events: list[_Event]) -> list[SessionEvent]:
    if not events:
        return []
    # No savepoint of its own: a failure here fails the caller's transaction as a whole, and a
    # round's end appends several events (two queries fewer each).
    with transaction.atomic(savepoint=False):
        rows = [SessionEvent(session_id=session_id, type=event.type, payload=event.model_dump()) for event in events]
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            return _insert_numbered(connection, session_id, rows)
        first = _seq_reserve(session_id, len(events))
        for i, row in enumerate(rows):
            row.seq = first + i
        return SessionEvent.objects.bulk_create(rows)


def _insert_numbered(connection, session_id: int, rows: list[SessionEvent]) -> list[SessionEvent]:
    """PostgreSQL: take the sequence numbers and insert the rows in one statement (the UPDATE of
    ``last_seq`` in a WITH clause), where :func:`_seq_reserve` and ``bulk_create`` make two, each
    compiled by the ORM: a round's claim and its end each append on the path of the round."""
    now = timezone.now()
    field = SessionEvent._meta.get_field
    quote = connection.ops.quote_name
    sql = (
        f"WITH reserved AS (UPDATE {quote(DesignSession._meta.db_table)} SET last_seq = last_seq + %s WHERE id = %s "  # noqa: S608 - the models' own names
        "RETURNING last_seq) "
        f"INSERT INTO {quote(SessionEvent._meta.db_table)} (session_id, seq, type, payload, html, created_at) "
        "SELECT %s, reserved.last_seq - %s + e.n, e.type, e.payload, '', %s "
        "FROM reserved, unnest(%s::text[], %s::jsonb[]) WITH ORDINALITY AS e(type, payload, n) "
        "RETURNING id, seq"
    )
    payloads = [field("payload").get_db_prep_save(row.payload, connection) for row in rows]  # as save() prepares them
    with connection.cursor() as cursor:
        cursor.execute(sql, [len(rows), session_id, session_id, len(rows), now, [row.type for row in rows], payloads])
        numbered = sorted(cursor.fetchall(), key=lambda r: r[1])
    if not numbered:
        raise DesignSession.DoesNotExist(f"no session {session_id}")
    for row, (pk, seq) in zip(rows, numbered, strict=True):
        row.pk, row.seq, row.created_at, row.html = pk, seq, now, ""
        row._state.adding, row._state.db = False, connection.alias
    return rows


def _committed_announce(rows: list[SessionEvent]) -> None:
    for row in rows:
        event_committed.send(sender=SessionEvent, row=row)
