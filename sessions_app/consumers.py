"""The session page's WebSocket: members only, resumable by sequence number."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessions_app import selectors
from sessions_app.events import session_group
from sessions_app.live import render_error, render_events_after

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
REPLAY_BATCH = 200


class ResumeMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # htmx adds HEADERS to every message it sends
    type: str = Field(pattern=r"^resume$")
    last_seq: int = Field(ge=0)


class SessionConsumer(AsyncWebsocketConsumer):
    """Sends each event at most once, in sequence order, with no gaps.

    Until the client says where it is (``{"type": "resume", "last_seq": N}``) live events are
    not sent: the resume replay covers them. Afterwards a live event that skips ahead makes
    the consumer read the missing events from the log first.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.last_sent: int | None = None
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        allowed = await database_sync_to_async(selectors.session_visible_to)(session_id=self.session_id, user=user)
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = session_group(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = ResumeMessage.model_validate(json.loads(text_data or ""))
        except (ValueError, ValidationError):
            await self.send(text_data=render_error("The live view sent a message it does not understand."))
            return
        self.last_sent = message.last_seq
        await self._catch_up()

    async def _catch_up(self, until: int | None = None) -> None:
        while True:
            seq, html = await database_sync_to_async(render_events_after)(
                session_id=self.session_id, after=self.last_sent, until=until, limit=REPLAY_BATCH
            )
            if seq is None:
                return
            await self.send(text_data=html)
            self.last_sent = seq

    async def dispatch(self, message: dict) -> None:
        # Channels runs close_old_connections() through sync_to_async before every handler, on
        # the one thread-sensitive executor thread of the process: a broadcast to N viewers
        # became N serialized thread hops per event, about half of daphne's CPU per delivered
        # frame (bench/broadcast.py: ~235 µs → ~105 µs). A live event needs no such hop: it
        # touches the database only in _catch_up, through database_sync_to_async, which
        # closes old connections itself. Connect, receive and disconnect keep the default.
        if message.get("type") == "session.event":
            await self.session_event(message)
            return
        await super().dispatch(message)

    async def session_event(self, message: dict) -> None:
        if self.last_sent is None:
            return
        seq = message["seq"]
        if seq <= self.last_sent:
            return
        if seq > self.last_sent + 1:
            await self._catch_up(until=seq)
            if seq <= self.last_sent:
                return
        await self.send(text_data=message["html"])
        self.last_sent = seq
