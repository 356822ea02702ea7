"""Database work of the live sockets, on a thread pool of their own.

Django's synchronous code in an ASGI process shares one thread (``thread_sensitive``): page
views, and by default every ``database_sync_to_async`` call of Channels. Sign-ins, access
checks and replays for hundreds of reconnecting viewers would queue there behind each other and
behind pages. They run here instead, on ``LIVE_DB_THREADS`` threads.

These threads live as long as the process, so each keeps its database connection between calls
for ``LIVE_DB_CONN_MAX_AGE`` seconds, checked before each call's first query (a restarted
database is reconnected, not an error), as a worker's threads do. Without that, every read,
render and write of the sockets opened a connection of its own: a new PostgreSQL server
process, about a fifth of a busy daphne's CPU in ``make bench broadcast``. SQLite connections are
cheap and stay per call. :func:`pools_close` closes them (the tests' database is dropped at the end).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

from channels.auth import get_user
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.db import close_old_connections, connections

from config.db import connection_kept

_executor: ThreadPoolExecutor | None = None
_writer: ThreadPoolExecutor | None = None
_renderer: ThreadPoolExecutor | None = None
_sizes: dict[ThreadPoolExecutor, int] = {}


def _connections_kept() -> None:
    """A new thread of the pools: its connections to a database server outlive each call."""
    for connection in connections.all():
        if connection.vendor != "sqlite":
            connection.settings_dict = connection_kept(connection.settings_dict, settings.LIVE_DB_CONN_MAX_AGE)


def _new_pool(threads: int, name: str) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name, initializer=_connections_kept)
    _sizes[pool] = threads
    return pool


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = _new_pool(max(1, settings.LIVE_DB_THREADS), "live-db")
    return _executor


def _writing() -> ThreadPoolExecutor:
    global _writer
    if _writer is None:
        _writer = _new_pool(1, "live-db-write")
    return _writer


def _rendering() -> ThreadPoolExecutor:
    global _renderer
    if _renderer is None:
        _renderer = _new_pool(max(1, settings.LIVE_DB_THREADS), "live-render")
    return _renderer


def pools_close() -> None:
    """Stop the pools' threads and close their connections (new threads start on the next call)."""
    global _executor, _writer, _renderer
    pools = [pool for pool in (_executor, _writer, _renderer) if pool is not None]
    _executor = _writer = _renderer = None
    for pool in pools:
        threads = _sizes.pop(pool)
        everyone = threading.Barrier(threads)  # one task per thread: each closes its own connections
        for _ in range(threads):
            pool.submit(_close_mine, everyone)
        pool.shutdown(wait=True)


def _close_mine(everyone: threading.Barrier) -> None:
    try:
        everyone.wait(timeout=5)
    finally:
        connections.close_all()


def _call(fn, args, kwargs):
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def socket_db(fn, *args, **kwargs):
    """Run the synchronous ``fn`` on the sockets' threads and return its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_call, fn, args, kwargs))


async def socket_render(fn, *args, **kwargs):
    """:func:`socket_db` for the feeds' renders, on threads of their own: a render may wait for
    another process's fragment (:mod:`sessions_app.render_share`), and that wait must not hold
    up sign-ins, access checks and replays."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_rendering(), functools.partial(_call, fn, args, kwargs))


async def socket_db_write(fn, *args, **kwargs):
    """:func:`socket_db` for writes the sockets can do later, on a thread of their own: a write
    may wait for the database (SQLite lets one writer in at a time, and a worker's transaction
    can hold it for tens of milliseconds), and must not hold up the reads and renders that
    viewers are waiting for."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_writing(), functools.partial(_call, fn, args, kwargs))


RECENT_SECONDS = 2.0
_recent: dict[tuple, tuple[float, object]] = {}
_asking: dict[tuple, asyncio.Future] = {}


async def socket_db_recent(key: tuple, fn, *args, **kwargs):
    """:func:`socket_db`, but a result read less than ``RECENT_SECONDS`` ago for the same ``key``
    is reused, and callers asking while it is being read wait for that read: a crowd reconnecting
    at once (a daphne restart) asks the same questions (who is this cookie, may this user see that
    session) hundreds of times within a second, and would otherwise all ask the database before
    the first answer came back. A sign-out, a removed membership or a new one therefore reaches
    new sockets within that time. A read that fails is not kept: the next caller asks again."""
    now = time.monotonic()
    hit = _recent.get(key)
    if hit is not None and now - hit[0] < RECENT_SECONDS:
        return hit[1]
    loop = asyncio.get_running_loop()
    asking = _asking.get(key)
    if asking is None or asking.get_loop() is not loop:  # (a future of another, finished loop is not waited for)
        asking = _asking[key] = loop.create_task(socket_db(fn, *args, **kwargs))
        asking.add_done_callback(functools.partial(_answered, key, now))
    # Shielded: a caller that goes away (its socket closed) does not cancel the others' answer.
    return await asyncio.shield(asking)


def _answered(key: tuple, asked_at: float, asking: asyncio.Future) -> None:
    if _asking.get(key) is asking:
        del _asking[key]
    if asking.cancelled() or asking.exception() is not None:
        return
    if len(_recent) > 10_000:
        _recent.clear()
    _recent[key] = (asked_at, asking.result())


def _signed_in(session_key: str | None):
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    scope = {"session": session}
    return session, get_user.func(scope)  # Channels' own lookup, without its thread hop


class _SessionAuth:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        session, user = await socket_db_recent(("signed-in", key), _signed_in, key)
        return await self.inner(dict(scope, session=session, user=user), receive, send)


def SocketAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    """Channels' cookie parsing, then the session and the signed-in user read on the sockets'
    threads. Sockets never write the session, so ``send`` is passed through unwrapped (Channels'
    session middleware inspects the session on every frame sent)."""
    return CookieMiddleware(_SessionAuth(inner))
