"""Delivery of committed events: after commit, the committing process announces each event on
the session's channel-layer group (the events of one commit in one message). It renders nothing (``live`` is imported for the events'
state keys only): the daphne processes that have viewers
of the session render the event's fragment once (:func:`sessions_app.live.fragment_of` keeps
it with the event, for replays and for the other processes) and send it on. A worker in the
middle of a round spends no time on HTML."""

from __future__ import annotations

from sessions_app.events import event_committed, session_group
from sessions_app.live import state_key
from sessions_app.models import SessionEvent
from sessions_app.publisher import publisher

EVENT_MESSAGE = "session.event"
_ENDS_STREAM = ("contribution.finished", "contribution.failed")


def event_message(row: SessionEvent) -> dict:
    """What a daphne process receives for one event (``key``: what state its fragment shows,
    see :func:`~sessions_app.live.state_key`; ``starts``/``ends``: the contribution whose
    stream it starts or ends)."""
    cid = row.payload.get("contribution_id")
    key = state_key(row.type, row.payload)
    return {
        "type": EVENT_MESSAGE, "seq": row.seq, "event_id": row.pk, "key": list(key) if key else None,
        "starts": cid if row.type == "contribution.started" else None,
        "ends": cid if row.type in _ENDS_STREAM else None,
    }


def _announce(row: SessionEvent) -> None:
    # The events of one commit are announced in one channel-layer message (they are queued
    # together), so a daphne process renders them together and sends them in one frame.
    publisher.group_send_together(session_group(row.session_id), event_message(row))


def _committed(sender, row: SessionEvent, **_kwargs) -> None:
    _announce(row)


def delivery_connect() -> None:
    """Announce every committed event (called once, from the app's ``ready``)."""
    event_committed.connect(_committed, dispatch_uid="sessions_app.delivery")
