"""Details of the engine: token coalescing, provider choice, anti-patterns, the command line, dispatch."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command

from sessions_app import services
from sessions_app.engine.checklist import anti_patterns
from sessions_app.engine.context import SessionContext
from sessions_app.engine.dispatch import dispatcher, dispatcher_set
from sessions_app.engine.runner import Claim, DeltaWriter, provider_name_for
from sessions_app.events import session_group
from sessions_app.models import Contribution, DesignSession, SessionEvent
from sessions_app.publisher import BATCH_MESSAGE, publisher
from sessions_app.streaming import TEXT_MESSAGE
from sessions_app.tasks import CeleryDispatcher
from teams_app.models import Project, Specialist, TeamTemplate

pytestmark = pytest.mark.django_db
REQ = "Add a subscriptions service that creates recurring orders through orders"


def start(run_engine, project, **kw):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    prd = kw.pop("prd", project.prds.first())
    s = run_engine(services.session_start, project=project, template=template, requirement=REQ, user=None, prd=prd, **kw)
    return DesignSession.objects.get(pk=s.pk)


@pytest.mark.django_db(transaction=True)
def test_streamed_text_is_coalesced_into_frames_off_the_log(run_engine, demo, monkeypatch):
    session = start(run_engine, demo)
    assert publisher.flush()  # what the start streamed has gone out
    c = session.contributions.filter(author="specialist").first()
    Contribution.objects.filter(pk=c.pk).update(status="running", text="")
    logged = SessionEvent.objects.filter(session=session).count()
    last_seq = DesignSession.objects.get(pk=session.pk).last_seq
    clock = {"t": 0.0}
    monkeypatch.setattr("sessions_app.engine.runner.time", SimpleNamespace(monotonic=lambda: clock["t"]))
    writer = DeltaWriter(Claim(c.pk, session.pk, c.round_id), frame_ms=50, save_ms=200)
    saved: list[str] = []

    def stream() -> None:
        for i in range(100):  # 100 tokens over 0.5 s: about 10 frames of 50 ms
            clock["t"] = i * 0.005
            writer(f"t{i} ")
            saved.append(Contribution.objects.get(pk=c.pk).text)
        writer.flush()

    async def scenario() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(session_group(session.pk), channel)
        await sync_to_async(stream, thread_sensitive=False)()
        frames = []
        while sum(len(f["text"]) for f in frames) < len(writer.text):
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            # Frames queued together travel as one batch, read as the pages' feed reads it.
            for one in message["messages"] if message["type"] == BATCH_MESSAGE else [message]:
                if one["type"] == TEXT_MESSAGE:  # (events of the session's start may still be going out)
                    frames.append(one)
        await layer.group_discard(session_group(session.pk), channel)
        return frames

    frames = async_to_sync(scenario)()
    whole = "".join(f"t{i} " for i in range(100))
    assert 9 <= len(frames) <= 11
    assert "".join(f["text"] for f in frames) == whole  # in order, nothing lost
    assert [f["at"] for f in frames] == [sum(len(f["text"]) for f in frames[:i]) for i in range(len(frames))]
    assert {f["contribution_id"] for f in frames} == {c.pk}
    # Nothing in the log, no lock on the session row: the text is kept on the contribution, now and then.
    assert SessionEvent.objects.filter(session=session).count() == logged
    assert DesignSession.objects.get(pk=session.pk).last_seq == last_seq
    kept = sorted(set(saved), key=len)
    assert 2 <= len(kept) <= 4 and all(whole.startswith(t) for t in kept)


@pytest.mark.django_db(transaction=True)
def test_text_of_calls_ending_together_goes_out_as_one_message(demo):
    """A round's calls that end at once each send their last text frame: the frames queued
    together reach the session's group as one batch, in order, not one message each."""
    import threading

    from sessions_app import streaming

    session_id = 424_242
    hold = threading.Event()

    async def scenario() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(session_group(session_id), channel)
        publisher.submit(lambda loop: hold.wait(5), expires=False)  # the publisher is busy a moment
        for cid in (1, 2, 3):
            streaming.text_streamed(session_id=session_id, contribution_id=cid, at=0, text=f"end of call {cid}")
        hold.set()
        heard = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard(session_group(session_id), channel)
        return heard

    heard = async_to_sync(scenario)()
    assert heard["type"] == BATCH_MESSAGE
    assert [(m["type"], m["contribution_id"], m["text"]) for m in heard["messages"]] == [
        (TEXT_MESSAGE, cid, f"end of call {cid}") for cid in (1, 2, 3)
    ]


def test_saves_of_streamed_text_count_from_the_first_token_not_from_the_call(demo, monkeypatch):
    """A reply that comes after a long wait and streams briefly is not written half-way: every
    call of a round answering at the same moment would otherwise write its first token just as
    the round's results are recorded. A longer stream is saved a ``save_ms`` after its first token."""
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=demo, template=template, requirement=REQ, user=None, prd=demo.prds.first())
    c = session.contributions.filter(author="specialist").first()
    Contribution.objects.filter(pk=c.pk).update(status="running", text="")
    monkeypatch.setattr("sessions_app.engine.runner.streaming", SimpleNamespace(text_streamed=lambda **_kw: None))
    clock = {"t": 0.0}
    monkeypatch.setattr("sessions_app.engine.runner.time", SimpleNamespace(monotonic=lambda: clock["t"]))
    writer = DeltaWriter(Claim(c.pk, session.pk, c.round_id), frame_ms=50, save_ms=1000)
    clock["t"] = 3.0  # the model thinks for 3 s, then answers in 0.5 s
    for i in range(10):
        clock["t"] = 3.0 + i * 0.05
        writer(f"t{i} ")
    assert Contribution.objects.get(pk=c.pk).text == "", "nothing written before the result"
    clock["t"] = 4.1  # the stream goes on past a second after its first token
    writer("late ")
    assert Contribution.objects.get(pk=c.pk).text == "".join(f"t{i} " for i in range(10)) + "late "


def test_provider_precedence_specialist_then_session_then_project_then_site(demo, settings):
    settings.MAESTRO_PROVIDER = "rules"
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=demo, template=template, requirement=REQ, user=None, prd=None)
    spec = Specialist.objects.get(slug="security-guardian")
    assert provider_name_for(session, spec) == "rules"
    session.project.provider = "openai"
    assert provider_name_for(session, spec) == "openai"
    session.provider = "anthropic"
    assert provider_name_for(session, spec) == "anthropic"
    spec.provider = "rules"
    assert provider_name_for(session, spec) == "rules"


def test_service_in_isolation_without_an_inventory(run_engine, builtin_specialists, make_user):
    project = Project.objects.create(name="Greenfield", slug="greenfield")
    project.prds.create(reference="PRD-1", title="First")
    session = start(run_engine, project)
    ctx = SessionContext.load(session)
    keys = {a.key for a in anti_patterns(session, ctx)}
    assert "service_in_isolation" in keys
    assert session.gate["integration_points_mapped"] is False
    assert "no inventory imported yet" in session.rounds.get(number=1).contributions.get().text


def test_pattern_proliferation_until_justified(run_engine, demo):
    session = start(run_engine, demo)
    ctx = SessionContext.load(session)
    warning = next(a for a in anti_patterns(session, ctx) if a.key == "pattern_proliferation")
    assert "inventory" in warning.detail  # inventory speaks gRPC in a REST cluster
    services.message_post(session=session, text="inventory uses gRPC for its stock streaming; keep it", user=None)
    ctx = SessionContext.load(DesignSession.objects.get(pk=session.pk))
    assert "inventory" not in next(
        (a.detail for a in anti_patterns(session, ctx) if a.key == "pattern_proliferation"), ""
    )


def test_assumption_based_integration_flags_undeclared_events(run_engine, demo):
    session = start(run_engine, demo)
    c = session.contributions.filter(author="specialist").first()
    c.text = "Payments should listen to subscription.upgraded and call POST /orders/recurring on orders."
    c.save()
    ctx = SessionContext.load(session)
    warning = next(a for a in anti_patterns(session, ctx) if a.key == "assumption_based_integration")
    assert "subscription.upgraded" in warning.detail and "POST /orders/recurring" in warning.detail


@pytest.mark.django_db(transaction=True)
def test_start_session_command_waits_and_prints_json(demo, eager_celery, capsys):
    call_command("start_session", "--project", "demo", "--team", "new-service-integration",
                 "--requirement", REQ, "--prd", "PRD-101", "--wait", "--json")
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    session = DesignSession.objects.get(pk=out["session"])
    assert out["status"] == session.status == "awaiting_user"
    assert out["phase"] == "design"
    assert [(r["kind"], r["contributions"]) for r in out["rounds"]] == [("assembly", 0), ("analysis", 6), ("design", 6)]


def test_start_session_command_without_prd_pauses(demo, capsys):
    call_command("start_session", "--project", "demo", "--team", "service-refactoring", "--requirement", REQ, "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "paused_prd" and out["reason"] == "What PRD id/link should we attach?"


def test_start_session_command_rejects_unknown_team(demo):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no team template 'ghosts'"):
        call_command("start_session", "--project", "demo", "--team", "ghosts", "--requirement", REQ)
    assert not DesignSession.objects.exists()


def test_host_names_file_names_and_abbreviations_are_not_events():
    from sessions_app.engine.checklist import cited_integrations

    text = ("Pull ghcr.io/acme/orders:1.4 as in docker-compose.yml, e.g. with www.example.com; "
            "payments emits payment.completed and serves GET /payments/{id}.")
    assert cited_integrations(text) == {"payment.completed", "GET /payments/{id}"}


def test_the_rule_based_team_makes_no_assumption_warning_on_the_demo(run_engine, demo):
    session = start(run_engine, demo)
    ctx = SessionContext.load(session)
    assert "assumption_based_integration" not in {a.key for a in anti_patterns(session, ctx)}


def test_the_app_registers_the_celery_dispatcher_for_the_engine():
    assert isinstance(dispatcher(), CeleryDispatcher)


def test_without_a_dispatcher_the_engine_refuses_work_and_keeps_nothing(demo):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    previous = dispatcher_set(None)
    try:
        with pytest.raises(RuntimeError, match="No dispatcher is registered"):
            services.session_start(project=demo, template=template, requirement=REQ, user=None, prd=demo.prds.first())
    finally:
        dispatcher_set(previous)
    assert not DesignSession.objects.filter(requirement=REQ).exists()  # the start rolled back with the error
