"""A bench viewer's WebSocket: the ``websockets`` package's Sans-I/O client protocol on a plain
asyncio protocol, for client processes that hold hundreds of sockets.

The package's asyncio connection hands each message to a reader task through a queue and a
future: three wake-ups per message, about 60 µs of CPU each on a small machine, in a process
that shares the cores with the daphnes it measures. Here the frames parsed from one read of the
socket are handed to ``on_frame(arrival, text)`` at once, in the socket's callback, all with the
moment that read returned.

While a measure runs, a viewer can keep what it reads instead (:meth:`ViewerSocket.defer`):
each read of the socket with the moment it returned (and the end of the stream, in its place),
parsed afterwards (:meth:`ViewerSocket.parse_kept`) into the same frames with the same arrival
times, so that several hundred viewers in one process take next to no CPU from the daphnes they
measure. A ping the server sends meanwhile is answered only then: the caller keeps a deferral
well within the server's ping timeout.

Daphne sends each message as one frame; a fragmented one is joined all the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

OnFrame = Callable[[float, str], None]


class ViewerSocket(asyncio.Protocol):
    def __init__(self, url: str, *, origin: str, cookie: str, on_frame: OnFrame) -> None:
        self.protocol = ClientProtocol(parse_uri(url), origin=Origin(origin), max_size=None)
        self.request = self.protocol.connect()
        self.request.headers["Cookie"] = cookie
        self.on_frame = on_frame
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.parts: list[bytes] = []  # a fragmented message so far
        self.kept: list[tuple[float, bytes | None]] | None = None  # reads not parsed yet (None: the end); see defer

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.kept is not None:
            self.kept.append((now, data))
            return
        self._parse(now, data)

    def _parse(self, now: float, data: bytes | None) -> None:
        if data is None:
            self._end()
            return
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self._fail(self.protocol.handshake_exc)
                elif not self.opened.done():
                    self.opened.set_result(None)
            elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self.parts.append(event.data)
                if event.fin:
                    data_, self.parts = b"".join(self.parts), []
                    self.on_frame(now, data_.decode())
        self._flush()

    def eof_received(self) -> bool | None:
        if self.kept is not None:
            self.kept.append((time.time(), None))  # after the reads before it
            return None
        self._end()
        return None

    def _end(self) -> None:
        if self.protocol.state is not State.CLOSED:
            self.protocol.receive_eof()
            self._flush()
        self._fail(self.protocol.handshake_exc or ConnectionError("the server closed the connection"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(self.protocol.handshake_exc or exc or ConnectionError("the server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- what the client does --------------------------------------------------------------

    def defer(self) -> None:
        """From now on keep each read (with its arrival) instead of parsing it."""
        if self.kept is None:
            self.kept = []

    def parse_kept(self) -> None:
        """Parse what was kept, read by read, as it would have been parsed on arrival; then
        parse as reads come again."""
        kept, self.kept = self.kept or [], None
        for now, data in kept:
            self._parse(now, data)

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close()
                self._flush()
        finally:
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()  # the protocol's end of the conversation

    def _fail(self, exc: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
            self.opened.exception()  # retrieved: a failed open is reported by the caller's await
            if self.transport is not None:
                self.transport.close()


async def open_viewer(url: str, *, origin: str, cookie: str, on_frame: OnFrame, timeout: float) -> ViewerSocket:
    """A connected viewer socket (handshake done); raises on a refused or dropped handshake."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()

    async def opening() -> ViewerSocket:
        transport, socket = await loop.create_connection(
            lambda: ViewerSocket(url, origin=origin, cookie=cookie, on_frame=on_frame), uri.host, uri.port,
        )
        try:
            await socket.opened
        except BaseException:  # refused, dropped, timed out or cancelled: no socket left open
            transport.close()
            raise
        return socket

    return await asyncio.wait_for(opening(), timeout)
