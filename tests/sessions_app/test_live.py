"""The session WebSocket: members only, typed events in order, resume with no gaps or duplicates
across a forced disconnect and across a restart of the channel layer's Redis."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.core.management import call_command

from config.asgi import application
from config.embedded_redis import EmbeddedRedis
from sessions_app import services
from sessions_app.models import DesignSession
from teams_app.models import Membership, Project, TeamTemplate

pytestmark = pytest.mark.django_db(transaction=True)
SEQ = re.compile(r'data-seq="(\d+)"')
ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture
def shop(eager_celery):
    call_command("seed_demo", verbosity=0)
    return Project.objects.get(slug="demo")


@pytest.fixture
def viewer(shop, make_user):
    user = make_user("vera")
    Membership.objects.create(user=user, project=shop, role=Membership.Role.VIEWER)
    return user


def cookie_for(client, user) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def paused_session(project) -> DesignSession:
    template = TeamTemplate.objects.get(slug="new-service-integration")
    return services.session_start(project=project, template=template, requirement="Add subscriptions to orders", user=None)


def communicator(session_id: int, cookie: bytes | None, origin=ORIGIN) -> WebsocketCommunicator:
    headers = [origin] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)


async def receive_until(comm: WebsocketCommunicator, last: int, seen: list[int], timeout: float = 10.0) -> None:
    """Collect sequence numbers from frames until ``last`` has been seen."""
    while not seen or seen[-1] < last:
        frame = await comm.receive_from(timeout=timeout)
        seen.extend(int(s) for s in SEQ.findall(frame))


def last_seq(session_id: int) -> int:
    return DesignSession.objects.get(pk=session_id).last_seq


def test_anonymous_and_non_members_are_refused(client, shop, make_user):
    session = paused_session(shop)
    outsider = make_user("olga")
    cookie = cookie_for(client, outsider)

    async def scenario():
        anonymous = communicator(session.pk, None)
        assert await anonymous.connect() == (False, 4401)
        stranger = communicator(session.pk, cookie)
        assert await stranger.connect() == (False, 4403)
        missing = communicator(999_999, cookie)
        assert (await missing.connect())[0] is False

    async_to_sync(scenario)()


def test_a_foreign_origin_is_refused(client, shop, viewer):
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)

    async def scenario():
        evil = communicator(session.pk, cookie, origin=(b"origin", b"https://evil.example"))
        connected, _ = await evil.connect()
        assert connected is False

    async_to_sync(scenario)()


def test_a_member_receives_every_event_in_order_then_resumes_after_a_disconnect(client, shop, viewer):
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    prd = shop.prds.get()

    async def scenario():
        comm = communicator(session.pk, cookie)
        connected, _ = await comm.connect()
        assert connected
        await comm.send_json_to({"type": "resume", "last_seq": 0})
        seen: list[int] = []
        await receive_until(comm, await database_sync_to_async(last_seq)(session.pk), seen)
        # The session runs: assembly, discovery and design, emitted live while we listen.
        await database_sync_to_async(services.session_attach_prd)(session=session, prd=prd)
        target = await database_sync_to_async(last_seq)(session.pk)
        await receive_until(comm, target, seen)
        assert seen == list(range(1, target + 1)), "in order, no gaps, no duplicates"
        await comm.disconnect()

        # While nobody listens, the session moves on.
        await database_sync_to_async(services.session_pause)(session=session)
        await database_sync_to_async(services.message_post)(session=session, text="Weekly cadence too", user=viewer)
        after = await database_sync_to_async(last_seq)(session.pk)
        assert after > target

        again = communicator(session.pk, cookie)
        assert (await again.connect())[0]
        await again.send_json_to({"type": "resume", "last_seq": target})
        resumed: list[int] = []
        await receive_until(again, after, resumed)
        assert resumed == list(range(target + 1, after + 1))
        assert await again.receive_nothing(timeout=0.3)
        await again.disconnect()

    async_to_sync(scenario)()


def test_fragments_carry_the_live_parts_of_the_page(client, shop, viewer):
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    prd = shop.prds.get()

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume", "last_seq": await database_sync_to_async(last_seq)(session.pk)})
        await comm.send_json_to({"type": "ready?"})  # answered in order: the resume is done when this is
        assert 'id="live-error"' in await comm.receive_from(timeout=10)
        await database_sync_to_async(services.session_attach_prd)(session=session, prd=prd)
        target = await database_sync_to_async(last_seq)(session.pk)
        frames = []
        while True:
            frame = await comm.receive_from(timeout=10)
            frames.append(frame)
            seqs = SEQ.findall(frame)
            if seqs and int(seqs[-1]) >= target:
                break
        while not await comm.receive_nothing(timeout=0.5):
            frames.append(await comm.receive_from())
        html = "".join(frames)
        # Streamed text comes in frames of its own, off the log: no sequence number, an offset.
        streamed = [f for f in frames if 'hx-swap-oob="beforeend:#text-' in f]
        assert streamed and not any(SEQ.findall(f) for f in streamed), [f[:80] for f in frames]
        assert all(re.search(r'beforeend:#text-\d+" data-at="\d+"', f) for f in streamed)
        assert 'hx-swap-oob="beforeend:#timeline"' in html  # new rounds appended
        assert 'id="progress-' in html and "of 6 specialists" in html  # round progress bar
        assert 'id="gate-checklist"' in html and "Integration points are mapped" in html
        assert 'id="key-questions"' in html
        assert "rule-based analysis" in html
        assert 'hx-get="/sessions/' in html  # per-viewer panels are fetched, not broadcast
        assert "csrfmiddlewaretoken" not in html
        await comm.disconnect()

    async_to_sync(scenario)()


def test_invalid_messages_get_a_clear_error_and_change_nothing(client, shop, viewer):
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)

    async def scenario():
        comm = communicator(session.pk, cookie)
        assert (await comm.connect())[0]
        for bad in ("not json", '{"type": "resume", "last_seq": -1}', '{"type": "delete"}'):
            await comm.send_to(text_data=bad)
            frame = await comm.receive_from(timeout=5)
            assert 'id="live-error"' in frame and "does not understand" in frame
        await comm.disconnect()

    before = last_seq(session.pk)
    async_to_sync(scenario)()
    assert last_seq(session.pk) == before


def test_resume_survives_a_restart_of_the_channel_layer_redis(client, shop, viewer, settings):
    redis_server = EmbeddedRedis()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_server.url], "prefix": "maestro-restart"},
        }
    }
    channel_layers.backends.clear()
    session = paused_session(shop)
    cookie = cookie_for(client, viewer)
    prd = shop.prds.get()
    try:

        async def scenario():
            comm = communicator(session.pk, cookie)
            assert (await comm.connect())[0]
            await comm.send_json_to({"type": "resume", "last_seq": 0})
            seen: list[int] = []
            await receive_until(comm, await database_sync_to_async(last_seq)(session.pk), seen)
            await comm.disconnect()

            redis_server.stop()  # the channel layer's Redis goes away
            await database_sync_to_async(services.session_attach_prd)(session=session, prd=prd)
            target = await database_sync_to_async(last_seq)(session.pk)
            redis_server.restart()
            channel_layers.backends.clear()

            again = communicator(session.pk, cookie)
            assert (await again.connect())[0]
            await again.send_json_to({"type": "resume", "last_seq": seen[-1]})
            await receive_until(again, target, seen)
            assert seen == list(range(1, target + 1))
            await again.disconnect()

        async_to_sync(scenario)()
    finally:
        redis_server.stop()
        channel_layers.backends.clear()
