"""Specialist calls on real Celery workers with a real Redis broker, against a local server
that speaks the OpenAI wire format (the only stand-in: the model vendor)."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from django.core.management import call_command

from sessions_app import services
from sessions_app.models import Contribution, DesignSession
from sessions_app.tasks import run_contribution
from teams_app.models import Project, Specialist, TeamTemplate
from tests.support.processes import Worker, wait_for
from tests.support.vendors import LLMServer, openai_error

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
REQ = "Add a subscriptions service that creates recurring orders through orders"


@pytest.fixture
def llm():
    server = LLMServer(delay=lambda index, body: 1.0).start()
    yield server
    server.stop()


@pytest.fixture
def workers():
    started: list[Worker] = []

    def start(name: str, **env: str) -> Worker:
        worker = Worker(name, env)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def shop(llm):
    call_command("seed_demo", verbosity=0)
    project = Project.objects.get(slug="demo")
    project.provider = "openai"
    project.save()
    return project


def test_a_round_fans_out_to_every_specialist_in_parallel(shop, llm, workers):
    workers("w1", OPENAI_BASE_URL=llm.base_url)
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=shop, template=template, requirement=REQ, user=None, prd=shop.prds.get())
    analysis = session.rounds.get(kind="analysis")
    wait_for(lambda: analysis.__class__.objects.get(pk=analysis.pk).status == "done", 60, what="analysis round")
    calls = [c for c in llm.calls if c.index < 6]
    assert len(calls) == 6
    # All six calls were in flight at once: the last one started before the first one finished.
    assert max(c.started for c in calls) < min(c.finished for c in calls)
    done = Contribution.objects.filter(round=analysis, status="done")
    assert done.count() == 6
    assert all(c.provider == "openai" and c.tokens_in == 100 and c.latency_ms >= 1000 for c in done)
    wait_for(lambda: DesignSession.objects.get(pk=session.pk).status == "awaiting_user", 60, what="the design gate")


def test_a_duplicated_delivery_produces_one_contribution_and_one_call(shop, llm, workers):
    workers("w1", OPENAI_BASE_URL=llm.base_url)
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=shop, template=template, requirement=REQ, user=None, prd=shop.prds.get())
    analysis = session.rounds.get(kind="analysis")
    target = analysis.contributions.get(specialist_slug="security-guardian")
    run_contribution.delay(target.pk)  # the broker delivers the same task a second time
    wait_for(lambda: analysis.__class__.objects.get(pk=analysis.pk).status == "done", 60, what="analysis round")
    run_contribution.delay(target.pk)  # and once more after it finished
    wait_for(lambda: DesignSession.objects.get(pk=session.pk).status == "awaiting_user", 60, what="the design gate")
    security_calls = [c for c in llm.calls if c.user.startswith("To Security Guardian") and "Analyze the existing cluster" in c.user]
    assert len(security_calls) == 1
    rows = Contribution.objects.filter(round=analysis, specialist_slug="security-guardian")
    assert rows.count() == 1
    assert rows.get().status == "done" and rows.get().tries == 1


def test_a_killed_workers_task_completes_after_redelivery(shop, workers):
    hanging = LLMServer(delay=lambda index, body: 60.0 if index == 0 else 0.2).start()
    try:
        fast_redelivery = {
            "OPENAI_BASE_URL": hanging.base_url, "CELERY_VISIBILITY_TIMEOUT": "3", "CELERY_RESTORE_INTERVAL": "1",
            "CELERY_RESTORE_THROTTLE": "1", "SPECIALIST_TIME_LIMIT": "2", "SPECIALIST_SOFT_TIME_LIMIT": "1",
            "SPECIALIST_LEASE_SECONDS": "2", "SPECIALIST_HEARTBEAT_SECONDS": "0.5", "MAESTRO_SWEEP_INTERVAL": "1",
        }
        first = workers("doomed", **fast_redelivery)
        specialist = Specialist.objects.get(slug="database-engineer")
        session = services.task_session_start(
            project=shop, specialist=specialist, summary="Design the subscriptions schema", prd=shop.prds.get()
        )
        contribution = Contribution.objects.get(session=session, author="specialist")
        wait_for(lambda: len(hanging.calls) == 1, 30, what="the first call")
        assert Contribution.objects.get(pk=contribution.pk).status == "running"
        first.kill()  # the worker dies mid-call; its message was never acknowledged
        workers("rescuer", **fast_redelivery)
        wait_for(lambda: Contribution.objects.get(pk=contribution.pk).status == "done", 60, what="redelivery")
        finished = Contribution.objects.get(pk=contribution.pk)
        assert finished.tries == 2 and len(hanging.calls) == 2
        assert "local model" in finished.text
        wait_for(lambda: DesignSession.objects.get(pk=session.pk).status == "completed", 30, what="the task report")
    finally:
        hanging.stop()


def test_a_transient_error_in_a_rounds_batch_is_retried_alone_while_the_others_finish(shop, llm, workers):
    # The round's calls go to the worker in one message; the first call to reach the server is
    # told to come back later (429 with retry-after), the others answer after a second.
    llm.script(openai_error(429, "Slow down", error_type="rate_limit_error", headers={"retry-after": "1"}))
    workers("w1", OPENAI_BASE_URL=llm.base_url)
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=shop, template=template, requirement=REQ, user=None, prd=shop.prds.get())
    analysis = session.rounds.get(kind="analysis")
    wait_for(lambda: analysis.__class__.objects.get(pk=analysis.pk).status == "done", 60, what="analysis round")
    rows = list(Contribution.objects.filter(round=analysis))
    assert len(rows) == 6 and all(c.status == "done" for c in rows)
    retried = [c for c in rows if c.tries == 2]
    assert len(retried) == 1, "only the refused call ran again"
    assert sorted(c.tries for c in rows) == [1, 1, 1, 1, 1, 2]
    analysis_calls = [c for c in llm.calls if "Analyze the existing cluster" in c.user]
    assert len(analysis_calls) == 7
    refused = min(analysis_calls, key=lambda c: c.index)
    again = [c for c in analysis_calls if c.user == refused.user]
    assert len(again) == 2 and again[1].started - refused.finished >= 0.9, "the retry waited for retry-after"
    # The other five were not held up by the retry: they finished about a second after the round began.
    others = [c for c in analysis_calls if c.user != refused.user]
    assert max(c.finished for c in others) < again[1].finished



def test_a_rounds_calls_are_sent_to_the_workers_as_one_message(shop, settings):
    # No worker here: the message waits in the real Redis broker, where it is read as it was sent.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    try:
        template = TeamTemplate.objects.get(slug="new-service-integration")
        session = services.session_start(project=shop, template=template, requirement=REQ, user=None, prd=shop.prds.get())
        ids = sorted(session.rounds.get(kind="analysis").contributions.values_list("pk", flat=True))
        sent = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
        tasks = [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in sent]
        assert [name for name, _ in tasks] == ["sessions_app.tasks.run_contributions"]
        assert sorted(tasks[0][1][0]) == ids and len(ids) == 6
    finally:
        broker.delete(queue)
