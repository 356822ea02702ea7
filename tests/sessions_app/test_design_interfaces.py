"""The design for scripts: one export document (``manage.py export_session`` and
``GET /sessions/<id>/export.json``), ``manage.py validation_respond`` with the form's checks,
and ``start_session --wait --json`` carrying the proposal and the plan."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from sessions_app.decisions.models import Decision
from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.engine.points import validation_open
from sessions_app.models import Contribution, DesignSession, KeyQuestion, ValidationPoint, ValidationResponse
from sessions_app.validation import validation_respond
from tests.sessions_app.design_factories import (
    PROPOSAL_V1,
    PROPOSAL_V2,
    REQUIREMENT,
    design_round,
    design_session,
    proposal_add,
)

pytestmark = pytest.mark.django_db

EXPORT_KEYS = {
    "session", "status", "phase", "requirement", "brief", "rounds", "proposal", "proposal_versions", "plan",
    "key_questions", "decisions", "validation_points",
}


@pytest.fixture
def full_session(demo, people):
    """A session at the design gate: a design round with two contributions, two proposal
    versions, a key question with its ADR, and one answered and one open point."""
    session = design_session(demo, plan=True)
    rnd = design_round(session)
    Contribution.objects.create(session=session, round=rnd, author="specialist", specialist_slug="integration-architect",
                                author_name="Integration Architect", text="orders → payments over REST, 800 ms timeout.")
    Contribution.objects.create(session=session, round=rnd, author="user", author_name="pete", user=people["pete"],
                                text="Keep PCI scope inside payments.")
    proposal_add(session, PROPOSAL_V1, reason="Integration Design", round=rnd)
    q = KeyQuestion.objects.create(session=session, ref="Q1", text="A separate payment database for PCI?",
                                   options=["Yes: payments-db", "No: shared postgres"], state="open")
    Decision.objects.create(project=demo, number=1, slug="payment-database", title="A separate payment database",
                            session=session, key_question=q, status="proposed")
    with transaction.atomic():
        first = validation_open(session, gate=DESIGN_GATE, kind="approval", title="Design gate", body="Confirm.", questions=[])
    validation_respond(point=first, user=people["pete"], verdict="request_changes", comment="No inventory hold", proposal_seen=1)
    proposal_add(session, PROPOSAL_V2, reason="hold stock", author_kind="specialist", author_name="Data Flow Analyst")
    ValidationPoint.objects.filter(session=session, state="open").update(state="cancelled")
    with transaction.atomic():
        validation_open(session, gate=DESIGN_GATE, kind="approval", title="Design gate again", body="Confirm.", questions=[])
    DesignSession.objects.filter(pk=session.pk).update(status="awaiting_user")  # as the engine leaves it at a gate
    session.refresh_from_db()
    return session


def export_command(session_id: int) -> dict:
    out = StringIO()
    call_command("export_session", "--session", str(session_id), "--json", stdout=out)
    return json.loads(out.getvalue())


# -- the export document -------------------------------------------------------------------


def test_the_export_document_has_every_part_of_the_design(full_session):
    doc = export_command(full_session.pk)
    assert EXPORT_KEYS <= set(doc)
    assert (doc["session"], doc["status"], doc["phase"], doc["requirement"]) == (
        full_session.pk, "awaiting_user", "design", REQUIREMENT)
    assert doc["brief"]["constraints"][0]["value"] == "100 ms"
    assert doc["brief"]["conflicts"][0]["text"] == "Latency: 100 ms in the requirement, 300 ms in PRD-101."

    design = doc["rounds"][0]
    assert (design["number"], design["kind"], design["phase"]) == (3, "design", "design")
    assert design["contributions"][:2] == [
        {"specialist": "integration-architect", "author": "Integration Architect", "author_kind": "specialist",
         "status": "done", "text": "orders → payments over REST, 800 ms timeout."},
        {"specialist": "", "author": "pete", "author_kind": "user", "status": "done", "text": "Keep PCI scope inside payments."},
    ]
    assert [r["number"] for r in doc["rounds"]] == sorted(r["number"] for r in doc["rounds"])

    proposal = doc["proposal"]
    assert proposal["version"] == 2 and proposal["author"] == "Data Flow Analyst" and proposal["author_kind"] == "specialist"
    assert proposal["services"] == [{
        "name": "payments", "change": "change", "kind": "service",
        "responsibility": "Charges through Stripe; the only service in PCI scope", "store": "payments-db (postgres)",
    }]
    assert {"source": "orders", "target": "payments", "protocol": "REST", "mode": "sync", "change": "add"} in proposal["edges"]
    assert {"source": "orders", "target": "inventory", "protocol": "AMQP", "mode": "async", "change": "add"} in proposal["edges"]
    events = {e["name"]: e for e in proposal["events"]}
    assert events["payment.completed"]["producer"] == "payments"
    assert events["payment.completed"]["consumers"] == ["inventory", "notifications", "orders"]
    assert events["inventory.reserved"]["consumers"] == ["orders"]
    assert proposal["risks"] == ["Stripe webhooks can arrive twice: deduplicate by event id"]

    versions = doc["proposal_versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["round"] == 3 and versions[0]["reason"] == "Integration Design"
    assert any("inventory.reserved" in line for line in versions[1]["diff"]["added"])

    assert [p["order"] for p in doc["plan"]] == [1, 2, 3, 4, 5]
    assert doc["plan"][1] == {
        "order": 2, "specialist": "integration-architect", "service": "payments",
        "task": "Define the API contract orders → payments", "depends_on": [1], "acceptance": "OpenAPI spec reviewed by the USER",
    }
    assert doc["key_questions"] == [{"ref": "Q1", "text": "A separate payment database for PCI?",
                                     "options": ["Yes: payments-db", "No: shared postgres"], "state": "open", "chosen": None}]
    assert doc["decisions"] == [{"ref": "ADR-0001", "title": "A separate payment database", "status": "proposed"}]
    points = doc["validation_points"]
    assert [(p["title"], p["state"]) for p in points] == [("Design gate", "changes_requested"), ("Design gate again", "open")]
    assert points[0]["responses"] == [
        {"user": "pete", "verdict": "request_changes", "comment": "No inventory hold", "proposal_seen": 1}]


def test_the_http_export_is_the_same_document_for_members_and_404_for_others(client, full_session, people):
    url = reverse("session_export", kwargs={"pk": full_session.pk})
    client.force_login(people["ada"])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == export_command(full_session.pk)
    client.force_login(people["outsider"])
    assert client.get(url).status_code == 404
    assert client.get(reverse("session_export", kwargs={"pk": 9999})).status_code == 404


def test_export_of_an_unknown_session_is_a_clear_error():
    with pytest.raises(CommandError, match="There is no session 4242"):
        call_command("export_session", "--session", "4242", "--json")


def test_export_of_a_session_without_a_design_yet(demo):
    session = design_session(demo, brief=False)
    doc = export_command(session.pk)
    assert EXPORT_KEYS <= set(doc)
    assert (doc["brief"], doc["proposal"], doc["proposal_versions"], doc["plan"]) == (None, None, [], [])


# -- validation_respond --------------------------------------------------------------------


def respond(*args: str) -> str:
    out = StringIO()
    call_command("validation_respond", *args, stdout=out)
    return out.getvalue()


def test_validation_respond_answers_the_open_point_as_the_user(full_session, people):
    point = full_session.validation_points.get(state="open")
    out = respond("--session", str(full_session.pk), "--user", "paula", "--answer", "request_changes",
                  "--comment", "Reserve stock for at most 10 minutes", "--json")
    outcome = json.loads(out)
    answer = ValidationResponse.objects.get(point=point)
    assert outcome == {
        "session": full_session.pk, "point": point.pk, "title": "Design gate again", "response": answer.pk, "user": "paula",
        "answer": "request_changes", "point_state": "changes_requested", "status": outcome["status"],
        "phase": outcome["phase"], "proposal_seen": 2,
    }
    assert (answer.user, answer.verdict, answer.comment) == (people["paula"], "request_changes",
                                                              "Reserve stock for at most 10 minutes")
    assert ValidationPoint.objects.get(pk=point.pk).state == "changes_requested"


def test_validation_respond_without_json_says_what_happened(full_session, people):
    out = respond("--session", str(full_session.pk), "--user", "paula", "--answer", "reject", "--comment", "Not now")
    assert "paula answered “Design gate again”: Reject." in out and "point rejected" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody", "--answer", "approve"], "There is no active user 'nobody'"),
        (["--user", "outsider", "--answer", "approve"], "outsider is not a member of project 'demo'"),
        (["--user", "ada", "--answer", "approve"], "Only the product owners or the named approvers"),
        (["--user", "paula", "--answer", "request_changes"], "a comment is required"),
        (["--user", "pete", "--answer", "reject", "--comment", "twice?"], None),  # pete answered the first point only
    ],
)
def test_validation_respond_refuses_bad_input_and_changes_nothing(full_session, people, args, message):
    point = full_session.validation_points.get(state="open")
    before = (ValidationResponse.objects.count(), full_session.last_seq)
    if message is None:  # a valid answer, to show the parametrisation's refusals are about their input
        respond("--session", str(full_session.pk), *args)
        assert ValidationResponse.objects.filter(point=point).count() == 1
        return
    with pytest.raises(CommandError, match=message):
        respond("--session", str(full_session.pk), *args)
    full_session.refresh_from_db()
    assert (ValidationResponse.objects.count(), full_session.last_seq) == before
    assert ValidationPoint.objects.get(pk=point.pk).state == "open"


def test_validation_respond_without_an_open_point_or_session(full_session, people):
    ValidationPoint.objects.filter(session=full_session, state="open").update(state="cancelled")
    with pytest.raises(CommandError, match=f"Session {full_session.pk} has no open validation point"):
        respond("--session", str(full_session.pk), "--user", "pete", "--answer", "approve")
    with pytest.raises(CommandError, match="There is no session 4242"):
        respond("--session", "4242", "--user", "pete", "--answer", "approve")
    with pytest.raises(CommandError, match="invalid choice"):
        respond("--session", str(full_session.pk), "--user", "pete", "--answer", "maybe")


def test_a_command_error_exits_non_zero():
    import subprocess
    import sys

    from tests.support.processes import ROOT, subprocess_env

    env = subprocess_env()
    done = subprocess.run(
        [sys.executable, "manage.py", "validation_respond", "--session", "4242", "--user", "nobody", "--answer", "approve"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "There is no session 4242" in done.stderr


# -- start_session --wait --json -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_start_session_json_includes_the_proposal_and_the_plan(demo, eager_celery):
    out = StringIO()
    call_command("start_session", "--project", "demo", "--team", "new-service-integration", "--requirement",
                 REQUIREMENT, "--prd", "PRD-101", "--wait", "--timeout", "60", "--json", stdout=out)
    outcome = json.loads(out.getvalue().strip().splitlines()[-1])
    assert outcome["status"] == "awaiting_user"
    assert {"proposal", "plan"} <= set(outcome)
    from sessions_app.design.selectors import plan_document, proposal_document, proposal_latest

    session = DesignSession.objects.get(pk=outcome["session"])
    assert outcome["proposal"] == proposal_document(proposal_latest(session))
    assert outcome["plan"] == plan_document(session)
