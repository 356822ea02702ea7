"""A live frame is serialised once per process and written straight to each viewer's socket.

The frames a daphne process sends for one session are the same bytes for every viewer. Sent
through Channels, each would be encoded and framed again per viewer, and pass through the
consumer's, daphne's and autobahn's checks each time. :class:`Frame` builds the WebSocket frame
once, with autobahn's own broadcast helper (``PreparedMessage``); :func:`peer_of` finds daphne's
protocol object behind a consumer's ASGI ``send``, and :func:`write` hands it the prepared frame:
one ``send`` per viewer. Behind another ASGI server, or Channels' test communicator, there is no
such object, and frames go through ``send`` as text.
"""

from __future__ import annotations

from functools import partial

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol

try:
    from daphne.ws_protocol import WebSocketProtocol as DaphneSocket
except ImportError:  # served by another ASGI server
    DaphneSocket = None


class Frame:
    """One text frame for many viewers: its text, and its WebSocket bytes once asked for."""

    __slots__ = ("text", "_prepared")

    def __init__(self, text: str) -> None:
        self.text = text
        self._prepared: PreparedMessage | None = None

    @property
    def prepared(self) -> PreparedMessage:
        if self._prepared is None:
            # Unmasked (server to client) and never compressed: daphne does not offer
            # permessage-deflate, and an uncompressed frame is valid where it is negotiated.
            self._prepared = PreparedMessage(self.text.encode(), False, False, True)
        return self._prepared


def peer_of(send) -> WebSocketProtocol | None:
    """daphne's WebSocket protocol behind a consumer's ASGI ``send`` (daphne passes its reply
    handler bound to the protocol), or None."""
    if DaphneSocket is not None and isinstance(send, partial) and send.args and isinstance(send.args[0], DaphneSocket):
        return send.args[0]
    return None


def write(peer: WebSocketProtocol, frame: Frame) -> None:
    """Send ``frame`` on an open socket. A socket closing or closed drops it silently, as
    daphne's own reply handler drops replies to a closed socket: its disconnect follows and
    removes the viewer, and a page that reconnects resumes from the last event it has."""
    if getattr(peer, "state", None) == WebSocketProtocol.STATE_OPEN:
        peer.sendPreparedMessage(frame.prepared)
