"""The live bench's viewers keep their frames and read them after the measure (``_frames_read``):
what it finds in them is what reading each frame as it came would have found."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Response

from bench.live import _frames_read, _seq_marker
from bench.viewer import open_viewer


def _delta(cid: int, text: str) -> str:
    return f'<div hx-swap-oob="beforeend:#text-{cid}" data-at="0">{text}</div>'


def _event(seq: int) -> str:
    return f'<div id="card-1"></div><div id="live-seq" hx-swap-oob="true" {_seq_marker(seq)} hidden></div>'


def test_stamps_and_events_are_found_with_their_arrival():
    frames = [
        (1.0, _event(7)),  # read during the resume: found, not counted
        (2.0, _delta(5, "[ts:100] a [ts:1") + _delta(6, "[ts:100] b ")),
        (3.0, _delta(5, "01] c ") + _event(8) + _event(9)),
        (4.0, _event(8) + _delta(6, "[ts:100] b again ")),
    ]
    stats: Counter = Counter()
    seqs, stamps = _frames_read([frames], stats, since=[1])
    assert seqs == [{7: 1.0, 8: 3.0, 9: 3.0}]
    # a stamp cut between two fragments of its card is joined; the same stamp on two cards is two stamps
    assert stamps == [{("5", 100): 2.0, ("5", 101): 3.0, ("6", 100): 2.0}]
    assert stats["frames"] == 3
    assert stats["duplicate_seqs"] == 1 and stats["duplicate_stamps"] == 1
    assert stats["multi_event_frames"] == 1


def test_the_marker_of_a_seq_is_not_found_in_a_longer_one():
    assert _seq_marker(10) not in _event(100)
    assert _seq_marker(100) in _event(100)


def _serve(handler, **kwargs):
    """A websockets server on a free local port (the bench viewers' counterpart, standing in for daphne)."""
    from websockets.asyncio.server import serve

    return serve(handler, "127.0.0.1", 0, **kwargs)


def test_a_deferred_viewer_gets_every_frame_sent_before_the_server_closed():
    async def scenario():
        async def handler(ws):
            await ws.recv()  # the viewer's resume
            await ws.send("one")
            await ws.send("two " * 5000)  # several reads
            ws.transport.close()  # the end of the stream, without a closing handshake (a server that went away)

        got: list[tuple[float, str]] = []
        async with _serve(handler) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/ws/sessions/1/"
            viewer = await open_viewer(url, origin=f"http://127.0.0.1:{port}", cookie="sessionid=x",
                                       on_frame=lambda now, text: got.append((now, text)), timeout=5)
            viewer.defer()
            viewer.send('{"type": "resume", "last_seq": 0}')
            await asyncio.wait_for(asyncio.shield(viewer.closed), 5)
            assert got == [], "kept, not parsed, while deferred"
            viewer.parse_kept()
        return got

    got = asyncio.run(scenario())
    assert [text for _, text in got] == ["one", "two " * 5000]
    assert got[0][0] <= got[1][0]


def test_a_refused_handshake_raises_with_the_servers_answer():
    async def scenario():
        def refuse(connection, request):
            return Response(403, "Forbidden", Headers(), b"no")

        async def handler(ws):  # never reached
            await ws.send("nope")

        async with _serve(handler, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(Exception) as refused:
                await open_viewer(f"ws://127.0.0.1:{port}/ws/sessions/1/", origin=f"http://127.0.0.1:{port}",
                                  cookie="", on_frame=lambda now, text: None, timeout=5)
            return refused.value

    assert "403" in str(asyncio.run(scenario()))


def test_a_handshake_that_times_out_leaves_no_socket_open():
    async def scenario():
        closed = asyncio.Event()

        async def silent(reader, writer):  # takes the connection, never answers the handshake
            await reader.read()  # until the viewer closes it
            closed.set()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(TimeoutError):
            await open_viewer(f"ws://127.0.0.1:{port}/ws/sessions/1/", origin=f"http://127.0.0.1:{port}",
                              cookie="", on_frame=lambda now, text: None, timeout=0.3)
        await asyncio.wait_for(closed.wait(), 2)
        server.close()

    asyncio.run(scenario())
