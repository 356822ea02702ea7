"""A batch of events (a burst, or a page of the log) is rendered with one read of what its
fragments share, and each fragment is the one it would be rendered alone."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app import live, services
from sessions_app.models import SessionEvent
from teams_app.models import Project, TeamTemplate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def events(eager_celery) -> list[SessionEvent]:
    """The log of a session run inline by the offline rules provider up to its first validation point."""
    call_command("seed_demo", verbosity=0)
    project = Project.objects.get(slug="demo")
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(
        project=project, template=template, requirement="Add subscriptions to orders", user=None, provider="rules", prd=project.prds.first()
    )
    rows = list(SessionEvent.objects.filter(session=session).order_by("seq"))
    kinds = Counter(row.type for row in rows)
    assert kinds["contribution.started"] >= 4 and kinds["synthesis.ready"] and kinds["phase.changed"], kinds
    return rows


def _render(rows, batch=None) -> tuple[dict[int, str], int]:
    with CaptureQueriesContext(connection) as queries:
        html = {row.pk: live.render_event(row, batch) for row in rows}
    return html, len(queries)


def test_every_fragment_of_a_batch_is_the_one_rendered_alone(events):
    alone, alone_queries = _render(events)
    together, batch_queries = _render(events, live.RenderBatch(events))
    assert together == alone
    assert batch_queries < alone_queries / 2, (batch_queries, alone_queries)


def test_the_cards_of_a_burst_are_read_in_one_query(events):
    cards = [row for row in events if row.type == "contribution.started"]
    alone, alone_queries = _render(cards)
    together, batch_queries = _render(cards, live.RenderBatch(cards))
    assert together == alone
    assert alone_queries == len(cards)
    assert batch_queries == 1


def test_what_a_synthesis_and_a_header_change_both_show_is_rendered_once(events, monkeypatch):
    """The side panels (gate, anti-patterns, key questions) of a synthesis and of the header
    events after it are rendered once per batch, and the session and its context read once."""
    burst = [row for row in events if row.type in ("synthesis.ready", "phase.changed", "status.changed")][:3]
    assert len(burst) >= 2
    sides = []
    side = live._side
    monkeypatch.setattr(live, "_side", lambda *a: sides.append(a) or side(*a))
    together, _ = _render(burst, live.RenderBatch(burst))
    assert len(sides) == 1
    sides.clear()
    alone, _ = _render(burst)
    assert len(sides) == len(burst)
    assert together == alone


def test_a_row_outside_the_batch_is_read_on_its_own(events):
    cards = [row for row in events if row.type == "contribution.started"]
    batch = live.RenderBatch(cards[:1])
    assert live.render_event(cards[1], batch) == live.render_event(cards[1])
