"""The fault soak's figures: what counts as a stall."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sessions_app.models import SessionEvent
from tests.sessions_app.design_factories import design_session
from tests.support.faults import longest_stall
from tests.support.pages import Page

pytestmark = pytest.mark.django_db
T0 = 1_800_000_000.0


def test_text_streaming_between_two_events_is_movement_and_silence_is_a_stall(demo):
    """Events at 0 s, 5 s and 9 s; a page got streamed text every second from 1 s to 4 s.
    Streamed text is not in the log, so only the pages saw it: the session moved until 5 s and
    then stood still for 4 s. Without the text, the 5 s between the first two events count."""
    session = design_session(demo)
    for seq, at in ((1, T0), (2, T0 + 5.0), (3, T0 + 9.0)):
        row = SessionEvent.objects.create(session=session, seq=seq, type="round.progress")
        SessionEvent.objects.filter(pk=row.pk).update(created_at=datetime.fromtimestamp(at, tz=UTC))
    page = Page("ws://127.0.0.1:9", session.pk, "", "http://127.0.0.1:9")  # never started: its records only
    page.received = {1: T0 + 0.1, 2: T0 + 5.1, 3: T0 + 9.1}
    page.streamed = [T0 + 1.0, T0 + 2.0, T0 + 3.0, T0 + 4.0, T0 + 20.0]  # (after the last event: not counted)
    assert longest_stall(session.pk, [page]) == pytest.approx(4.0)
    page.streamed = []
    assert longest_stall(session.pk, [page]) == pytest.approx(5.0)
    page.received[3] = T0 + 15.0  # an event that took 6 s to reach the page
    assert longest_stall(session.pk, [page]) == pytest.approx(6.0)
