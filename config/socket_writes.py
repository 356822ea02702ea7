"""A WebSocket frame from daphne costs one ``send``, not a reactor turn and a log line.

daphne hands each frame to autobahn, which hands it to Twisted. ``make bench broadcast`` (500
viewers, one event every 100 ms) put daphne at 57-63 µs of CPU per frame. Two things on that
path cost more than the send itself:

* **Twisted buffers every write** until the reactor reports the socket writable. Each frame
  registers the socket for writing (an ``epoll_ctl``), waits one turn of the event loop through
  Twisted's logging context, sends, then unregisters the socket (another ``epoll_ctl``).
  asyncio's own transports try the ``send`` first and buffer only what the kernel did not take.
  :func:`install` gives Twisted's plain TCP connections the same behaviour.
* **autobahn's ``sendData`` formats a debug line for every frame**, whether or not anything
  logs it. The arguments are coloured strings (``hltype``/``hlval``, four ``click.style`` calls).
  Frames of an open WebSocket go straight to the transport instead, with the same traffic
  counter. Queued, chopped or synchronous sends, octet logging and frames of a handshake still
  take autobahn's own path.

Order is kept: the immediate ``send`` is tried only when nothing is buffered. Everything else
takes Twisted's own path, which buffers, reports a lost connection and closes as before: TLS
started on the connection (``startTLS``), a connection closing, aborted or half-closed, data
already waiting, a send the kernel refuses. (Behind an ``ssl:`` endpoint, the TLS layer writes
its ciphertext to a plain connection, which sends it at once like any other bytes.) A pull
producer registered on the connection itself would only be asked for more when a write waited
for the reactor; daphne registers none (Twisted's web server wraps pull producers into
streaming ones).
"""

from __future__ import annotations

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet import tcp

_twisted_write = tcp.Connection.write
_autobahn_send_data = WebSocketProtocol.sendData


def _write(self: tcp.Connection, data: bytes) -> None:
    if (
        data
        and type(data) is bytes
        and not self.TLS
        and self.connected
        and not self.disconnected
        and not self._aborting
        and not self.disconnecting
        and not self._writeDisconnecting
        and not self._writeDisconnected
        and not self._tempDataBuffer
        and self.offset == len(self.dataBuffer)
    ):
        sent = self.writeSomeData(data)  # an int, or the exception of a lost connection
        if isinstance(sent, int):
            if sent == len(data):
                return
            data = data[sent:]  # the kernel's buffer is full: Twisted sends the rest when it drains
    _twisted_write(self, data)


def _send_data(self: WebSocketProtocol, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
    if sync or chopsize or self.send_queue or self.logOctets or self.state != WebSocketProtocol.STATE_OPEN:
        _autobahn_send_data(self, data, sync, chopsize)
        return
    self.transport.write(data)
    self.trafficStats.outgoingOctetsWireLevel += len(data)


def install() -> None:
    """Use both for every connection of this process (idempotent)."""
    tcp.Connection.write = _write
    WebSocketProtocol.sendData = _send_data


def installed() -> bool:
    return tcp.Connection.write is _write and WebSocketProtocol.sendData is _send_data
