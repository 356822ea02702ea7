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
    start = DesignSession.objects.get(pk=session.pk).last_seq
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with events.events_gathered(session.pk):
            events.event_emit(session_id=session.pk, event=_phase("a"))
            events.events_emit(session_id=session.pk, events=[_phase("b"), _phase("c")])
            assert _tail(session, start) == [], "nothing is written before the block ends"
            written_inside = len(queries)
    writes = [q["sql"] for q in queries.captured_queries[written_inside:]]
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
