"""The session page's WebSocket: members only, resumable by sequence number."""

from __future__ import annotations

import json
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessions_app import selectors, wire
from sessions_app.fanout import hub
from sessions_app.live import render_error
from sessions_app.socket_db import socket_db_recent

logger = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
NOT_UNDERSTOOD = "The live view sent a message it does not understand."
TOO_LARGE = "The live view sent a message that is too large."
TOO_DEEP = "The live view sent a message that is nested too deeply."
TOO_MANY_RESUMES = "The live view asked to catch up too often; it catches up on its own in a moment."


class ResumeMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # htmx adds HEADERS to every message it sends
    type: str = Field(pattern=r"^resume$")
    last_seq: int = Field(ge=0)


def json_depth_exceeds(text: str, limit: int) -> bool:
    """True when brackets nest deeper than ``limit`` (strings skipped). Checked before parsing,
    so a deeply nested frame never reaches the recursive JSON decoder."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class TokenBucket:
    """``burst`` requests at once, then one per ``interval`` seconds."""

    def __init__(self, burst: int, interval: float) -> None:
        self.capacity = max(1, burst)
        self.interval = max(interval, 1e-6)
        self.tokens = float(self.capacity)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) / self.interval)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SessionConsumer(AsyncWebsocketConsumer):
    """Sends each event at most once, in sequence order, with no gaps, and the session's
    streamed text as it comes.

    Until the client says where it is (``{"type": "resume", "last_seq": N}``) nothing is sent:
    the resume replay covers it. The process's feed for the session (:mod:`sessions_app.fanout`)
    does the rest: live events, catching up after a gap, the heartbeat, streamed text.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.last_sent: int | None = None
        self.feed = None
        self.peer = None  # daphne's protocol object, once accepted (sessions_app.wire)
        self.resumes = TokenBucket(settings.LIVE_RESUME_BURST, settings.LIVE_RESUME_INTERVAL)
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        allowed = await socket_db_recent(
            ("visible", self.session_id, user.pk), selectors.session_visible_to, session_id=self.session_id, user=user
        )
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.feed = await hub.join(self.session_id, self)
        await self.accept()
        self.peer = wire.peer_of(self.base_send)

    async def send_frame(self, frame: wire.Frame) -> None:
        """A frame of the session's feed: its prepared bytes straight to daphne's socket, or as
        text through ``send`` where there is no such socket."""
        if self.peer is not None:
            wire.write(self.peer, frame)
            return
        await self.send(text_data=frame.text)

    async def disconnect(self, code: int) -> None:
        if self.feed is not None:
            hub.leave(self.session_id, self)
            self.feed = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        error = self._parse_error(text_data)
        if error is None:
            try:
                message = ResumeMessage.model_validate(json.loads(text_data or ""))
            except (ValueError, ValidationError, RecursionError):
                error = NOT_UNDERSTOOD
        if error is None and not self.resumes.take():
            error = TOO_MANY_RESUMES
        if error is not None:
            await self.send(text_data=render_error(error))
            return
        if self.feed is not None:
            await self.feed.resume(self, message.last_seq)

    @staticmethod
    def _parse_error(text_data: str | None) -> str | None:
        if text_data is None:
            return NOT_UNDERSTOOD
        # len() counts characters; a UTF-8 frame is at least that many bytes.
        if len(text_data) > settings.LIVE_MAX_FRAME_BYTES or len(text_data.encode()) > settings.LIVE_MAX_FRAME_BYTES:
            return TOO_LARGE
        if json_depth_exceeds(text_data, settings.LIVE_MAX_JSON_DEPTH):
            return TOO_DEEP
        return None


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other socket path. The ASGI server can only answer 403 to a refused handshake, so
    the socket is accepted and closed at once with 4404, the WebSocket spelling of 404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
