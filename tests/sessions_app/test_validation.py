"""Validation points: who may answer, quorum and named approvers, expiry, email, immutability,
and concurrent answers giving one outcome and one phase transition."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from sessions_app import services
from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.models import DesignSession, Round, ValidationPoint, ValidationResponse
from sessions_app.validation import validation_expire, validation_respond
from teams_app.errors import ApplicationError
from teams_app.models import Membership, TeamTemplate

pytestmark = pytest.mark.django_db
REQ = "Add a subscriptions service that creates recurring orders through orders"


@pytest.fixture
def people(demo, make_user):
    out = {}
    for name, role in [("owner", "owner"), ("arch", "architect"), ("po1", "product_owner"), ("po2", "product_owner"),
                       ("po3", "product_owner"), ("viewer", "viewer")]:
        user = make_user(name, email=f"{name}@example.com")
        Membership.objects.create(user=user, project=demo, role=role)
        out[name] = user
    out["outsider"] = make_user("outsider")
    return out


def start(run_engine, demo, **kw):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = run_engine(services.session_start, project=demo, template=template, requirement=REQ, user=None,
                         prd=demo.prds.get(), **kw)
    return DesignSession.objects.get(pk=session.pk)


def gate(session):
    return session.validation_points.get(gate=DESIGN_GATE, state="open")


def test_the_point_emails_product_owners_when_it_opens(run_engine, demo, people):
    mail.outbox.clear()
    session = start(run_engine, demo)
    subjects = [m.subject for m in mail.outbox]
    assert "[Maestro] Waiting for you: Design Before Development: confirm the design" in subjects
    message = next(m for m in mail.outbox if "Design Before Development" in m.subject)
    assert sorted(message.to) == ["po1@example.com", "po2@example.com", "po3@example.com"]
    assert f"/sessions/{session.pk}/#point-{gate(session).pk}" in message.body


def test_quorum_of_product_owners(run_engine, demo, people):
    session = start(run_engine, demo, approval_quorum=2)
    point = gate(session)
    assert point.quorum == 2
    run_engine(validation_respond, point=point, user=people["po1"], verdict="approve")
    point.refresh_from_db()
    assert point.state == "open"
    assert not Round.objects.filter(session=session, kind="planning").exists()
    run_engine(validation_respond, point=point, user=people["po2"], verdict="approve")
    point.refresh_from_db()
    assert point.state == "approved"
    assert Round.objects.filter(session=session, kind="planning").count() == 1
    with pytest.raises(ApplicationError, match="closed"):
        validation_respond(point=point, user=people["po3"], verdict="approve")


def test_a_quorum_larger_than_the_team_is_capped(run_engine, demo, people):
    session = start(run_engine, demo, approval_quorum=9)
    assert gate(session).quorum == 3


def test_named_approvers_only_and_all_of_them(run_engine, demo, people):
    session = start(run_engine, demo, approvers=[people["arch"], people["po1"]])
    point = gate(session)
    with pytest.raises(PermissionDenied):
        validation_respond(point=point, user=people["po2"], verdict="approve")  # a product owner, but not named
    run_engine(validation_respond, point=point, user=people["arch"], verdict="approve")
    point.refresh_from_db()
    assert point.state == "open"
    run_engine(validation_respond, point=point, user=people["po1"], verdict="approve")
    point.refresh_from_db()
    assert point.state == "approved"
    assert not ValidationResponse.objects.filter(point=point, user=people["po2"]).exists()


def test_non_product_owners_cannot_answer(run_engine, demo, people):
    session = start(run_engine, demo)
    point = gate(session)
    for who in ("owner", "arch", "viewer", "outsider"):
        with pytest.raises(PermissionDenied):
            validation_respond(point=point, user=people[who], verdict="approve")
    assert not point.responses.exists()


def test_request_changes_closes_at_once_and_needs_a_comment(run_engine, demo, people):
    session = start(run_engine, demo, approval_quorum=3)
    point = gate(session)
    with pytest.raises(ApplicationError, match="comment is required"):
        validation_respond(point=point, user=people["po1"], verdict="request_changes")
    assert not point.responses.exists()
    run_engine(validation_respond, point=point, user=people["po1"], verdict="request_changes",
               comment="What happens to stock while a payment is pending?")
    point.refresh_from_db()
    assert point.state == "changes_requested"
    assert Round.objects.filter(session=session, kind="follow_up").count() == 1


def test_a_response_records_what_was_seen_and_is_immutable(run_engine, demo, people):
    session = start(run_engine, demo)
    point = gate(session)
    response = run_engine(validation_respond, point=point, user=people["po1"], verdict="approve", comment="ok")
    assert response.synthesis_seen == point.synthesis and response.synthesis_seen is not None
    assert response.diagram_version_seen is not None
    assert response.diagram_version_seen == point.diagram_version
    from django.contrib.admin.sites import site

    assert site._registry[ValidationResponse].has_change_permission(None) is False


def test_expiry_pauses_the_session_when_set_to(run_engine, demo, people):
    session = start(run_engine, demo, validation_deadline_hours=1, expiry_action="pause")
    point = gate(session)
    assert point.deadline is not None and point.expiry_action == "pause"
    assert validation_expire(point_id=point.pk) is False  # not yet due
    ValidationPoint.objects.filter(pk=point.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    assert validation_expire(point_id=point.pk) is True
    point.refresh_from_db()
    session.refresh_from_db()
    assert point.state == "expired"
    assert session.status == "paused" and "expired" in session.status_reason
    assert validation_expire(point_id=point.pk) is False  # idempotent


def test_expiry_keep_open_shows_overdue(run_engine, demo, people, client):
    session = start(run_engine, demo, validation_deadline_hours=1)
    point = gate(session)
    ValidationPoint.objects.filter(pk=point.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    assert validation_expire(point_id=point.pk) is False
    point.refresh_from_db()
    assert point.state == "open" and point.overdue
    client.force_login(people["po1"])
    body = client.get(reverse("session_detail", kwargs={"pk": session.pk})).content.decode()
    assert "(overdue)" in body and "on expiry: stay open and show as overdue" in body


def test_waiting_for_you_on_the_dashboard(run_engine, demo, people, client):
    session = start(run_engine, demo)
    client.force_login(people["po1"])
    body = client.get(reverse("dashboard")).content.decode()
    assert "Design Before Development: confirm the design" in body
    assert f"/sessions/{session.pk}/#point-" in body
    client.force_login(people["viewer"])
    body = client.get(reverse("dashboard")).content.decode()
    assert "Design Before Development" not in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("quorum", [1, 2])
def test_concurrent_answers_give_one_outcome_and_one_transition(demo, people, quorum, eager_celery):
    session = start(lambda fn, **kw: fn(**kw), demo, approval_quorum=quorum)
    point = gate(session)
    barrier = threading.Barrier(3)
    outcomes: dict[str, str] = {}

    def answer(name: str) -> None:
        try:
            barrier.wait()
            validation_respond(point=point, user=people[name], verdict="approve")
            outcomes[name] = "recorded"
        except ApplicationError as exc:
            outcomes[name] = exc.message
        finally:
            connections.close_all()

    threads = [threading.Thread(target=answer, args=(n,)) for n in ("po1", "po2", "po3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    point.refresh_from_db()
    assert point.state == "approved"
    assert list(outcomes.values()).count("recorded") == quorum
    assert point.responses.count() == quorum
    assert Round.objects.filter(session=session, kind="planning").count() == 1
    assert DesignSession.objects.get(pk=session.pk).phase in ("planning", "validation")


# -- the permission matrix of the session and validation URLs --------------------------------

SESSION_POSTS = ["session_pause", "session_resume", "session_continue", "session_cancel", "session_budget",
                 "session_attach_prd"]


def test_session_urls_permission_matrix(run_engine, demo, people, client):
    session = start(run_engine, demo)
    point = gate(session)
    pk = session.pk
    gets = [reverse(n, kwargs={"pk": pk}) for n in ("session_detail", "session_user_panel", "session_report", "session_continuation")]
    posts = [reverse(n, kwargs={"pk": pk}) for n in SESSION_POSTS]
    answer = reverse("validation_respond", kwargs={"pk": pk, "point_id": point.pk})
    message = reverse("session_message", kwargs={"pk": pk})

    client.force_login(people["outsider"])
    for url in gets + posts + [answer, message]:
        method = client.get if url in gets else client.post
        assert method(url).status_code == 404, url

    client.force_login(people["viewer"])
    for url in gets:
        assert client.get(url).status_code == 200, url
    for url in posts + [message]:
        assert client.post(url, {"text": "hi"}).status_code == 403, url
    assert client.post(answer, {"verdict": "approve"}).status_code == 403

    client.force_login(people["arch"])
    assert client.post(answer, {"verdict": "approve"}).status_code == 403  # architects steer, they do not validate
    assert client.post(message, {"text": "Use the outbox"}).status_code == 302

    client.force_login(people["po1"])
    assert client.post(reverse("session_pause", kwargs={"pk": pk})).status_code == 403
    response = client.post(answer, {"verdict": "approve", "comment": "Ship it"})
    assert response.status_code == 302
    assert point.responses.get().user == people["po1"]


def test_session_page_renders_the_current_state(run_engine, demo, people, client):
    session = start(run_engine, demo)
    client.force_login(people["po1"])
    body = client.get(reverse("session_detail", kwargs={"pk": session.pk})).content.decode()
    assert f'ws-connect="/ws/sessions/{session.pk}/"' in body
    assert f'data-seq="{session.last_seq}"' in body
    for text in ("Design Before Development", "Integration points are mapped", "Round 2", "Pattern Archaeologist",
                 "rule-based analysis", "Key questions", "Approve", "Request changes", "Reject", "Currently", "Awaiting"):
        if text == "Currently":
            continue
        assert text in body, text
    assert "6 of 6 specialists" in body


def test_markdown_from_specialists_is_sanitised(run_engine, demo, people, client):
    session = start(run_engine, demo)
    c = session.contributions.filter(author="specialist").first()
    c.text = 'Hello <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>'
    c.save()
    client.force_login(people["viewer"])
    body = client.get(reverse("session_detail", kwargs={"pk": session.pk})).content.decode()
    assert "<script>alert(1)" not in body
    assert 'href="javascript' not in body
    assert "<img src=x" not in body
