"""Streamed specialist text: sent over the channel layer only, never written to the event log.

A worker sends each frame of a running call's text with its offset in the contribution's text.
Each daphne process collects the frames of a session and sends its viewers one frame per tick
(:mod:`sessions_app.fanout`). The durable log records the contribution's start and its end with
the whole text, so a page that missed streamed text still ends with every contribution whole.
"""

from __future__ import annotations

from sessions_app.events import session_group
from sessions_app.publisher import publisher

TEXT_MESSAGE = "session.text"


def text_streamed(*, session_id: int, contribution_id: int, at: int, text: str) -> None:
    """Send ``text``, which starts at offset ``at`` (in characters) of the contribution's text.
    Frames of the session's calls queued together (a round's calls ending at once) go as one
    channel-layer message."""
    publisher.group_send_together(
        session_group(session_id), {"type": TEXT_MESSAGE, "contribution_id": contribution_id, "at": at, "text": text}
    )
