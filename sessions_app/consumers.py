"""The session page's WebSocket: members only, resumable by sequence number."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessions_app import selectors
from sessions_app.events import session_group
from sessions_app.live import render_error, render_events_after

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


# Last sequence numbers read by heartbeats, shared by the connections of one process: many
# viewers of one session cost one query per heartbeat, not one each.
_last_seq_cache: dict[int, tuple[float, int]] = {}


def _cached_last_seq(session_id: int) -> int | None:
    hit = _last_seq_cache.get(session_id)
    if hit and time.monotonic() - hit[0] < settings.LIVE_HEARTBEAT_SECONDS / 2:
        return hit[1]
    seq = selectors.session_last_seq(session_id=session_id)
    if seq is not None:
        _last_seq_cache[session_id] = (time.monotonic(), seq)
    return seq


class SessionConsumer(AsyncWebsocketConsumer):
    """Sends each event at most once, in sequence order, with no gaps.

    Until the client says where it is (``{"type": "resume", "last_seq": N}``) live events are
    not sent: the resume replay covers them. Afterwards a live event that skips ahead makes
    the consumer read the missing events from the log first, and a heartbeat compares the
    log's last sequence number with the last one sent, so events the channel layer dropped
    at the end of a burst (nothing later reveals the gap) arrive too. Every send goes through
    one lock, so the heartbeat and the handlers never interleave.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.last_sent: int | None = None
        self.sending = asyncio.Lock()
        self.resumes = TokenBucket(settings.LIVE_RESUME_BURST, settings.LIVE_RESUME_INTERVAL)
        self.heartbeat: asyncio.Task | None = None
        self.last_live = time.monotonic()
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
        self.heartbeat = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        if getattr(self, "group", None):
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # the layer's Redis may be down; the subscription dies with it
                logger.debug("group_discard failed for %s", self.channel_name, exc_info=True)

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
        async with self.sending:
            self.last_sent = message.last_seq
            await self._catch_up()

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

    async def _catch_up(self, until: int | None = None) -> None:
        """Send the log after ``last_sent`` in pages. Precondition: ``self.sending`` held."""
        while True:
            seq, html = await database_sync_to_async(render_events_after)(
                session_id=self.session_id, after=self.last_sent, until=until, limit=settings.LIVE_REPLAY_PAGE
            )
            if seq is None:
                return
            await self.send(text_data=html)
            self.last_sent = seq

    async def _heartbeat(self) -> None:
        interval = settings.LIVE_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            if self.last_sent is None or time.monotonic() - self.last_live < interval:
                continue  # not resumed yet, or live events are flowing (a gap among them shows itself)
            try:
                seq = await database_sync_to_async(_cached_last_seq)(self.session_id)
            except Exception:  # a database hiccup: try again next beat
                logger.warning("live heartbeat of session %s failed", self.session_id, exc_info=True)
                continue
            if seq is not None and seq > self.last_sent:
                async with self.sending:
                    await self._catch_up(until=seq)

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
        self.last_live = time.monotonic()
        if self.last_sent is None:
            return
        seq = message["seq"]
        async with self.sending:
            if seq <= self.last_sent:
                return
            if seq > self.last_sent + 1:
                await self._catch_up(until=seq)
                if seq <= self.last_sent:
                    return
            await self.send(text_data=message["html"])
            self.last_sent = seq


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other socket path. The ASGI server can only answer 403 to a refused handshake, so
    the socket is accepted and closed at once with 4404, the WebSocket spelling of 404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
