"""Live frames are built once per process (sessions_app.wire); the end-to-end path through a real
daphne is exercised by the browser and fault tests, which serve the pages with daphne."""

from __future__ import annotations

from functools import partial

from daphne.ws_protocol import WebSocketProtocol as DaphneSocket

from sessions_app import wire


def test_a_frame_is_prepared_once_as_one_unmasked_text_frame():
    text = "<div id=\"x\">héllo</div>" * 10  # 250 bytes: the 16-bit length form
    frame = wire.Frame(text)
    raw = frame.prepared.payloadHybi
    assert frame.prepared is frame.prepared, "built once, however many viewers"
    assert raw[0] == 0x81, "FIN and the text opcode"
    assert raw[1] == 126, "no mask bit (server to client); 126: a 16-bit length follows"
    length = int.from_bytes(raw[2:4], "big")
    assert raw[4:] == text.encode() and length == len(text.encode())


def test_only_daphnes_own_protocol_is_written_to_directly():
    async def reply(protocol, message):
        return None

    socket = DaphneSocket()
    assert wire.peer_of(partial(reply, socket)) is socket
    assert wire.peer_of(reply) is None, "another ASGI server's send: frames go through send"
    assert wire.peer_of(partial(reply, object())) is None
    wire.write(socket, wire.Frame("x"))  # not open (never connected): dropped, as daphne drops replies to a closed socket
