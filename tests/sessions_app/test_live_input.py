"""What the session socket does with bad or abusive frames, unknown paths, and events the channel
layer never delivered."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from config.asgi import application
from sessions_app import delivery, events, services
from sessions_app.consumers import CLOSE_NOT_FOUND
from sessions_app.publisher import publisher
from tests.sessions_app import test_live
from tests.sessions_app.test_live import ORIGIN, SEQ, communicator, cookie_for, last_seq, paused_session, receive_until

shop, viewer = test_live.shop, test_live.viewer  # the same fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def test_deep_and_oversized_frames_get_an_error_and_the_socket_stays_usable(client, shop, viewer):
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        cases = {
            "[" * 100_000 + "]" * 100_000: "too large",
            "[" * 50 + "]" * 50: "nested too deeply",
            json.dumps({"type": "resume", "last_seq": 0, "pad": "x" * 10_000}): "too large",
            '{"type": "resume", "last_seq": 0, "HEADERS": {"a": "[[[[[[[[[[[[[["}}': None,  # brackets in a string
        }
        for frame, problem in cases.items():
            await comm.send_to(text_data=frame)
            reply = await comm.receive_from(timeout=5)
            if problem is None:
                assert SEQ.search(reply), "a valid resume with bracket characters in a string is served"
                continue
            assert 'id="live-error"' in reply and problem in reply
        # Still connected and serving: a resume from the start replays the log.
        await comm.send_json_to({"type": "resume", "last_seq": 0})
        seen: list[int] = []
        await receive_until(comm, await database_sync_to_async(last_seq)(session.pk), seen)
        assert seen[0] == 1
        await comm.disconnect()

    async_to_sync(scenario)()


def test_resume_is_paged_and_rate_limited_per_connection(client, shop, viewer, settings):
    settings.LIVE_RESUME_BURST, settings.LIVE_RESUME_INTERVAL, settings.LIVE_REPLAY_PAGE = 2, 60.0, 3
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    services.session_attach_prd(session=session, prd=shop.prds.get())
    total = last_seq(session.pk)
    assert total > 6

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        for _ in range(20):
            await comm.send_json_to({"type": "resume", "last_seq": 0})
        replays = refusals = 0
        pages: list[int] = []
        while not await comm.receive_nothing(timeout=0.5):
            frame = await comm.receive_from()
            if "asked to catch up too often" in frame:
                refusals += 1
            elif 'beforeend:#text-' not in frame:  # streamed text (off the log) may still be arriving
                seqs = [int(s) for s in SEQ.findall(frame)]
                pages.append(len(seqs))
                replays += seqs[-1] == total
        assert replays == 2 and refusals == 18
        assert max(pages) <= 3, "each frame holds at most one page of events"
        # Another connection has its own allowance.
        other = communicator(session.pk, cookie)
        assert (await other.connect())[0]
        await other.send_json_to({"type": "resume", "last_seq": total - 1})
        assert SEQ.findall(await other.receive_from(timeout=5)) == [str(total)]
        await comm.disconnect()
        await other.disconnect()

    async_to_sync(scenario)()


def test_events_the_channel_layer_never_delivered_arrive_through_the_heartbeat(client, shop, viewer, settings, monkeypatch):
    settings.LIVE_HEARTBEAT_SECONDS = 0.3
    session = paused_session(shop)
    services.session_attach_prd(session=session, prd=shop.prds.get())
    assert publisher.flush()  # what the run streamed has gone out before this page connects
    cookie = cookie_for(client, viewer)

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        start = await database_sync_to_async(last_seq)(session.pk)
        await comm.send_json_to({"type": "resume", "last_seq": start})
        assert await comm.receive_nothing(timeout=0.2)
        # The last events of a burst are written but never published (the layer is down).
        monkeypatch.setattr(delivery, "_announce", lambda row: None)
        await database_sync_to_async(services.message_post)(session=session, text="Weekly too", user=viewer)
        target = await database_sync_to_async(last_seq)(session.pk)
        assert target > start
        seen: list[int] = []
        await receive_until(comm, target, seen, timeout=3)
        assert seen == list(range(start + 1, target + 1))
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_gap_in_live_events_is_filled_from_the_log_before_the_next_one(client, shop, viewer, settings, monkeypatch):
    """Mid-connection: event N+1 is written but never published, N+2 arrives live. The page gets
    N+1 from the log, then N+2, in order and at once (the heartbeat is too slow to be the one)."""
    settings.LIVE_HEARTBEAT_SECONDS = 60.0
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    assert publisher.flush()
    real_announce = delivery._announce
    dropped: list[int] = []

    def publish_some(row):
        if row.type == "round.progress" and row.payload["done"] == 1:
            dropped.append(row.seq)
            return  # lost on the way
        real_announce(row)

    def emit(done: int) -> int:
        with transaction.atomic():
            return events.event_emit(session_id=session.pk, event=events.RoundProgress(round_id=0, done=done, total=2))

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        start = await database_sync_to_async(last_seq)(session.pk)
        await comm.send_json_to({"type": "resume", "last_seq": start})
        assert await comm.receive_nothing(timeout=0.3)
        monkeypatch.setattr(delivery, "_announce", publish_some)
        first = await database_sync_to_async(emit)(1)
        second = await database_sync_to_async(emit)(2)
        frames = []
        seen: list[int] = []
        while second not in seen:
            frames.append(await comm.receive_from(timeout=3))
            seen.extend(int(s) for s in SEQ.findall(frames[-1]))
        assert dropped == [first] and seen == [first, second]
        assert "2 of 2 specialists" in frames[-1]
        await comm.disconnect()

    async_to_sync(scenario)()


def test_the_events_of_one_commit_travel_as_one_message_render_together_and_reach_a_viewer_in_one_frame(client, shop, viewer, monkeypatch):
    """Three events committed together: the publisher sends them to the session's group as one
    batch message, the viewer's process renders them in one call, and the viewer gets them in
    one frame, in order."""
    import threading

    from channels.layers import get_channel_layer

    from sessions_app import fanout
    from sessions_app.publisher import BATCH_MESSAGE

    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    assert publisher.flush()
    render_calls: list[list[int]] = []
    fragments_by_id = fanout.fragments_by_id

    def recorded(event_ids):
        render_calls.append(list(event_ids))
        return fragments_by_id(event_ids)

    monkeypatch.setattr(fanout, "fragments_by_id", recorded)
    hold = threading.Event()

    def emit_together() -> list[int]:
        publisher.submit(lambda loop: hold.wait(5), expires=False)  # the publisher is busy a moment
        with transaction.atomic():
            seqs = events.events_emit(session_id=session.pk, events=[
                events.RoundProgress(round_id=900_001 + i, done=1, total=2) for i in range(3)
            ])
        hold.set()
        return seqs

    async def scenario():
        layer = get_channel_layer()
        listener = await layer.new_channel()
        await layer.group_add(events.session_group(session.pk), listener)
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume", "last_seq": await database_sync_to_async(last_seq)(session.pk)})
        assert await comm.receive_nothing(timeout=0.3)
        render_calls.clear()
        seqs = await database_sync_to_async(emit_together)()
        heard = await asyncio.wait_for(layer.receive(listener), 3)
        assert heard["type"] == BATCH_MESSAGE and [m["seq"] for m in heard["messages"]] == seqs
        frame = await comm.receive_from(timeout=3)
        assert [int(s) for s in SEQ.findall(frame)] == seqs, "one frame, in order"
        assert all(f"900{i:03d}" in frame for i in (1, 2, 3))
        assert len(render_calls) == 1 and len(render_calls[0]) == 3, "rendered in one call"
        await layer.group_discard(events.session_group(session.pk), listener)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_an_unknown_socket_path_is_closed_as_not_found(client, viewer):
    cookie = cookie_for(client, viewer)

    async def scenario():
        for path in ("/ws/nowhere/", "/ws/sessions/abc/", "/favicon.ico"):
            comm = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"cookie", cookie)])
            connected, _ = await comm.connect()
            assert connected
            assert (await comm.receive_output(timeout=2)) == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}

    async_to_sync(scenario)()


def test_a_replay_renders_each_card_and_the_header_once_and_keeps_every_seq(client, shop, viewer, monkeypatch):
    import re as regex

    from sessions_app import live

    session = paused_session(shop)
    services.session_attach_prd(session=session, prd=shop.prds.get())
    total = last_seq(session.pk)
    seq, html = live.render_events_after(session_id=session.pk, after=0, until=None, limit=10_000)
    assert seq == total
    assert [int(s) for s in SEQ.findall(html)] == list(range(1, total + 1)), "every event keeps its seq marker"
    assert html.count('id="session-header"') == 1
    monkeypatch.setattr(live, "_state_key", lambda row: None)  # every event rendered, as before
    _, every = live.render_events_after(session_id=session.pk, after=0, until=None, limit=10_000)
    cards = regex.compile(r'id="(card-[^"]+)"')
    assert len(cards.findall(html)) < len(cards.findall(every))
    assert set(cards.findall(html)) == set(cards.findall(every)), "the same cards, each shown as it is now"
    assert len(html) < 0.7 * len(every)


def test_live_events_are_rendered_for_the_process_not_per_viewer_and_kept_for_replays(client, shop, viewer, monkeypatch):
    """The feed renders each event's fragment once for all its viewers (a catch-up that reads
    the log while the live render runs may render it once more), and keeps what it rendered
    with the events (one write on the sockets' writing thread), so a later replay renders
    nothing."""
    from collections import Counter

    from sessions_app import live
    from sessions_app.models import SessionEvent

    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    prd = shop.prds.get()
    renders: Counter = Counter()
    render_event = live.render_event

    def counted(row, *rest):
        renders[row.pk] += 1
        return render_event(row, *rest)

    monkeypatch.setattr(live, "render_event", counted)
    from sessions_app import fanout

    live_order: list[int] = []  # the seqs the feed renders, in the order its renders run
    fragments_by_id = fanout.fragments_by_id

    def recorded(event_ids):
        seqs = dict(SessionEvent.objects.filter(pk__in=event_ids).values_list("pk", "seq"))
        live_order.extend(seqs[pk] for pk in event_ids)
        return fragments_by_id(event_ids)

    monkeypatch.setattr(fanout, "fragments_by_id", recorded)

    async def scenario():
        comms = [communicator(session.pk, cookie) for _ in range(5)]
        for comm in comms:
            assert (await comm.connect())[0]
            await comm.send_json_to({"type": "resume", "last_seq": await database_sync_to_async(last_seq)(session.pk)})
        await database_sync_to_async(services.session_attach_prd)(session=session, prd=prd)
        target = await database_sync_to_async(last_seq)(session.pk)
        for comm in comms:
            seen: list[int] = []
            await receive_until(comm, target, seen)
            assert sorted(set(seen)) == seen and seen[-1] == target, "in order, no duplicates"
        for comm in comms:
            await comm.disconnect()
        return target

    target = async_to_sync(scenario)()
    assert renders, "the burst was rendered live"
    assert max(renders.values()) <= 2, "rendered for the process, not for each of the five viewers"
    assert live_order and live_order == sorted(live_order), "one after another in sequence order: none shows older state"
    events = SessionEvent.objects.filter(session=session)
    deadline = time.monotonic() + 5
    while not events.get(seq=target).html and time.monotonic() < deadline:
        time.sleep(0.05)  # kept after the viewers have it
    assert events.get(seq=target).html, "the last event's fragment is kept with it"
    rendered_live = set(renders)
    renders.clear()
    seq, _ = live.render_events_after(session_id=session.pk, after=0, until=None, limit=10_000)
    assert seq == target
    assert len(set(renders) & rendered_live) < len(rendered_live) / 2, "a replay sends kept fragments instead of rendering"
