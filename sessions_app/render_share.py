"""Each live event's fragment rendered by one daphne process, not by every process with viewers.

Every process with viewers of a session receives each of its events at the same moment. For the
events it has to render, a process first claims them in Redis (``SET NX``, one round trip for the
batch): it renders those it won and shares each fragment at once (kept ``KEEP_MS``), and for
the others it reads what their winner shares (every ``POLL_SECONDS``). The processes split a
burst between them instead of each rendering all of it on the cores they share with the sockets.
A process that waited ``LIVE_RENDER_WAIT_MS`` in vain (its winner died, or failed to render)
renders the rest itself; without Redis, or while it does not answer, each process renders its
own, as before. ``LIVE_RENDER_WAIT_MS`` = 0 turns sharing off.

An event is named by its id and its creation time, so a database that was reset (and reuses
ids) never finds an older event's fragment.

The feeds call this on render threads of their own (``socket_render``), so a wait never holds up
sign-ins and replays. Within one process a burst is rendered in sequence order; across two, an
event's fragment may have been rendered a moment later than the next event's. Both read the
state after their commits, and a later commit that changes what they show appends events of its
own, whose fragments show it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

import redis
from django.conf import settings

from sessions_app.models import SessionEvent
from sessions_app.redis_client import redis_client

logger = logging.getLogger(__name__)

PREFIX = "maestro:fragment"
CLAIM_MS = 10_000  # a claim outlives any render; a dead winner's claim lapses on its own
KEEP_MS = 60_000  # long enough for every process to read it; replays read the log's copy
POLL_SECONDS = 0.002
PAUSE_SECONDS = 5.0  # after a Redis error, render alone this long before asking Redis again

_paused_until = 0.0

Render = Callable[[SessionEvent], str]


def _name(row: SessionEvent) -> str:
    return f"{PREFIX}:{row.pk}:{row.created_at.timestamp():.6f}"


def _client() -> redis.Redis | None:
    if settings.LIVE_RENDER_WAIT_MS <= 0 or time.monotonic() < _paused_until:
        return None
    return redis_client()


def _pause(exc: Exception) -> None:
    global _paused_until
    _paused_until = time.monotonic() + PAUSE_SECONDS
    logger.warning("fragments are rendered in this process alone for %.0f s: Redis failed (%s)", PAUSE_SECONDS, exc)


def fragments_render(rows: Sequence[SessionEvent], render: Render) -> dict[int, str]:
    """{event id: fragment} for ``rows`` (events without a kept fragment). A row whose render
    raises is left out (so is one whose winner failed and whose own render failed); the caller
    reads it from the log later."""
    found: dict[int, str] = {}
    client = _client()
    if client is None or not rows:
        _render_each(rows, render, found, None)
        return found
    try:
        pipe = client.pipeline(transaction=False)
        for row in rows:
            pipe.set(f"{_name(row)}:claim", os.getpid(), nx=True, px=CLAIM_MS)
        won = pipe.execute()
    except redis.RedisError as exc:
        _pause(exc)
        _render_each(rows, render, found, None)
        return found
    mine = [row for row, ok in zip(rows, won, strict=True) if ok]
    theirs = [row for row, ok in zip(rows, won, strict=True) if not ok]
    _render_each(mine, render, found, client)
    if theirs:
        found.update(_await(client, theirs))
        _render_each([row for row in theirs if row.pk not in found], render, found, None)
    return found


def _render_each(rows: Sequence[SessionEvent], render: Render, found: dict, client: redis.Redis | None) -> None:
    """Render ``rows`` in order; with ``client``, share each fragment as soon as it is ready, or
    give its claim up when the render fails (so nobody waits for it)."""
    for row in rows:
        try:
            html = render(row)
        except Exception:
            logger.warning("the fragment of event %s could not be rendered", row.pk, exc_info=True)
            _share(client, f"{_name(row)}:claim", None)
            continue
        found[row.pk] = html
        _share(client, f"{_name(row)}:html", html)


def _share(client: redis.Redis | None, name: str, html: str | None) -> None:
    if client is None:
        return
    try:
        if html is None:
            client.delete(name)
        else:
            client.set(name, html, px=KEEP_MS)
    except redis.RedisError as exc:
        _pause(exc)


def _await(client: redis.Redis, rows: Sequence[SessionEvent]) -> dict[int, str]:
    """The fragments other processes share for ``rows``, as they come, for at most
    ``LIVE_RENDER_WAIT_MS``; a row whose winner gave its claim up is not waited for."""
    deadline = time.monotonic() + settings.LIVE_RENDER_WAIT_MS / 1000
    waiting = {row.pk: _name(row) for row in rows}
    got: dict[int, str] = {}
    while waiting:
        try:
            pipe = client.pipeline(transaction=False)
            for name in waiting.values():
                pipe.get(f"{name}:html")
                pipe.exists(f"{name}:claim")
            answers = pipe.execute()
        except redis.RedisError as exc:
            _pause(exc)
            break
        for i, event_id in enumerate(list(waiting)):
            html, claimed = answers[2 * i], answers[2 * i + 1]
            if html is not None:
                got[event_id] = html.decode()
                del waiting[event_id]
            elif not claimed:  # its winner failed: render it here
                del waiting[event_id]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    return got
