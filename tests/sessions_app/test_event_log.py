"""The session's event log: events gathered in a block are appended together, in order, with
gap-free sequence numbers; a block that raises appends none of its own."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from sessions_app import events, services
from sessions_app.models import DesignSession, SessionEvent
from teams_app.models import TeamTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(demo):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    return services.session_start(
        project=demo, template=template, requirement="Add a subscriptions service", user=None, prd=demo.prds.get()
    )


def _phase(name: str) -> events.PhaseChanged:
    return events.PhaseChanged(phase=name)


def _tail(session, after: int) -> list[str]:
    return list(SessionEvent.objects.filter(session=session, seq__gt=after).order_by("seq").values_list("payload__phase", flat=True))


def test_gathered_events_are_appended_in_one_update_and_one_insert_in_order(session):
    """On PostgreSQL the UPDATE and the INSERT are one statement (the UPDATE in a WITH clause)."""
    start = DesignSession.objects.get(pk=session.pk).last_seq
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with events.events_gathered(session.pk):
            events.event_emit(session_id=session.pk, event=_phase("a"))
            events.events_emit(session_id=session.pk, events=[_phase("b"), _phase("c")])
            assert _tail(session, start) == [], "nothing is written before the block ends"
            written_inside = len(queries)
    writes = [q["sql"] for q in queries.captured_queries[written_inside:]]
    if connection.vendor == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("WITH reserved AS (UPDATE") and "INSERT INTO" in writes[0]
    else:
        assert len(writes) == 2 and writes[0].startswith("UPDATE") and writes[1].startswith("INSERT")
    assert _tail(session, start) == ["a", "b", "c"]
    seqs = list(SessionEvent.objects.filter(session=session, seq__gt=start).order_by("seq").values_list("seq", flat=True))
    assert seqs == [start + 1, start + 2, start + 3]
    assert DesignSession.objects.get(pk=session.pk).last_seq == start + 3


def test_an_inner_block_hands_its_events_on_and_one_that_raises_drops_only_its_own(session):
    start = DesignSession.objects.get(pk=session.pk).last_seq
    with transaction.atomic(), events.events_gathered(session.pk):
        events.event_emit(session_id=session.pk, event=_phase("before"))
        with events.events_gathered(session.pk):
            events.event_emit(session_id=session.pk, event=_phase("inner"))
        try:
            with transaction.atomic(), events.events_gathered(session.pk):
                events.event_emit(session_id=session.pk, event=_phase("undone"))
                raise RuntimeError("a step undone alone")
        except RuntimeError:
            pass
        events.event_emit(session_id=session.pk, event=_phase("after"))
        assert _tail(session, start) == []
    assert _tail(session, start) == ["before", "inner", "after"]
    assert DesignSession.objects.get(pk=session.pk).last_seq == start + 3


def test_events_of_another_session_are_not_gathered(session, demo):
    other = services.session_start(
        project=demo, template=TeamTemplate.objects.get(slug="new-service-integration"),
        requirement="Add a reporting service", user=None, prd=demo.prds.get(),
    )
    start = DesignSession.objects.get(pk=other.pk).last_seq
    with transaction.atomic(), events.events_gathered(session.pk):
        events.event_emit(session_id=other.pk, event=_phase("elsewhere"))
        assert _tail(other, start) == ["elsewhere"], "written at once, as outside a block"


def test_gathered_events_are_announced_before_what_the_block_left_for_after_commit(session, django_capture_on_commit_callbacks):
    """The session's next step, registered for after commit inside the block, runs after the
    block's events were announced, as when each was announced on its own."""
    order: list[str] = []

    def announced(sender, row, **_kwargs):
        if row.session_id == session.pk:
            order.append(row.payload["phase"])

    events.event_committed.connect(announced)
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            with events.events_gathered(session.pk):
                events.event_emit(session_id=session.pk, event=_phase("first"))
                transaction.on_commit(lambda: order.append("next step"))
                events.event_emit(session_id=session.pk, event=_phase("second"))
    finally:
        events.event_committed.disconnect(announced)
    assert order == ["first", "second", "next step"]


def _last_seq_updates(queries) -> int:
    return sum(1 for q in queries.captured_queries if "UPDATE" in q["sql"] and "last_seq = " in q["sql"])


def test_a_round_opens_its_calls_with_one_insert(session):
    from sessions_app.engine import rounds, state
    from sessions_app.models import Contribution, Round

    with transaction.atomic():
        locked = state.session_lock(session.pk)
        with CaptureQueriesContext(connection) as queries:
            rnd = rounds.open_round(locked, kind=Round.Kind.DESIGN)
    table = Contribution._meta.db_table
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"')]
    calls = list(Contribution.objects.filter(round=rnd).order_by("pk"))
    assert len(calls) == len(rnd.addressed_to) > 1
    assert len(inserts) == 1
    assert [c.specialist_slug for c in calls] == rnd.addressed_to
    assert all(c.idempotency_key.endswith(":attempt:1") for c in calls)
    # Opened queued: the first try, leased for the wait in the queue, no worker's start time yet.
    assert all(c.queued and c.tries == 1 and c.lease_expires_at is not None for c in calls)
    # Their started events are in the round's transaction, after the round's and before its progress.
    log = list(SessionEvent.objects.filter(session=session, seq__gt=0).order_by("seq").values_list("type", "payload"))
    tail = [(t, p.get("contribution_id")) for t, p in log[-(len(calls) + 2):]]
    assert tail == [("round.started", None), *(("contribution.started", c.pk) for c in calls), ("round.progress", None)]


def test_the_step_after_a_round_appends_its_events_together(session):
    """The phase change, the key questions and the next round's events of the step after a
    round go in with one UPDATE of the sequence, numbered without a gap."""
    from sessions_app.engine import flow
    from sessions_app.models import Contribution, Round

    analysis = Round.objects.get(session=session, kind=Round.Kind.ANALYSIS)
    analysis.contributions.update(status=Contribution.Status.DONE, text="Findings")
    Round.objects.filter(pk=analysis.pk).update(status=Round.Status.DONE, advance_due=True)
    start = DesignSession.objects.get(pk=session.pk).last_seq
    with CaptureQueriesContext(connection) as queries:
        flow.after_round(round_id=analysis.pk)
    seqs = list(SessionEvent.objects.filter(session=session, seq__gt=start).order_by("seq").values_list("seq", flat=True))
    assert len(seqs) > 2, "the step appended its events"
    assert seqs == list(range(start + 1, start + 1 + len(seqs)))
    assert _last_seq_updates(queries) == 1
    assert Round.objects.filter(session=session, number__gt=analysis.number).exists(), "the next round is open"


def test_appended_rows_are_the_rows_written(session):
    """What the append hands on (to delivery, after commit) is what the log holds: ids, numbers,
    times and payloads, non-ASCII text included."""
    start = DesignSession.objects.get(pk=session.pk).last_seq
    with transaction.atomic():
        rows = events._insert(session.pk, [_phase("é → ü"), events.RoundProgress(round_id=7, done=1, total=2)])
    stored = list(SessionEvent.objects.filter(session=session, seq__gt=start).order_by("seq"))
    assert [(r.pk, r.seq, r.type, r.payload, r.created_at) for r in rows] == [
        (r.pk, r.seq, r.type, r.payload, r.created_at) for r in stored
    ]
    assert [r.seq for r in rows] == [start + 1, start + 2]
    assert rows[0].payload["phase"] == "é → ü" and rows[1].payload == {"type": "round.progress", "round_id": 7, "done": 1, "total": 2}
