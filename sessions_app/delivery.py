"""Delivery of committed events: each event's fragment is rendered once, kept with the event
and published to the session's channel-layer group, from the process's publishing thread."""

from __future__ import annotations

import asyncio

from sessions_app.events import event_committed, session_group
from sessions_app.live import fragment_of
from sessions_app.models import SessionEvent
from sessions_app.publisher import publisher

EVENT_MESSAGE = "session.event"
_ENDS_STREAM = ("contribution.finished", "contribution.failed")


def event_message(row: SessionEvent, html: str) -> dict:
    """What a daphne process receives for one event (``ends``: the contribution whose stream it ends)."""
    ends = row.payload.get("contribution_id") if row.type in _ENDS_STREAM else None
    return {"type": EVENT_MESSAGE, "seq": row.seq, "html": html, "ends": ends}


def _publish(loop: asyncio.AbstractEventLoop, row: SessionEvent) -> None:
    html = fragment_of(row)  # this thread's own connection; no event loop is running here
    publisher.send(loop, session_group(row.session_id), event_message(row, html))


def _committed(sender, row: SessionEvent, **_kwargs) -> None:
    publisher.submit(lambda loop: _publish(loop, row))


def delivery_connect() -> None:
    """Deliver every committed event (called once, from the app's ``ready``)."""
    event_committed.connect(_committed, dispatch_uid="sessions_app.delivery")
