"""The design on the session page (brief, proposal, plan and checklist panels, live), on
validation point cards (the proposed cluster and what changed since the version a person last
saw), on the diagram compare page and in the final report."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils.html import escape

from sessions_app.design.schema import EdgeChange, ProposalContent, ServiceChange
from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.engine.context import SessionContext
from sessions_app.engine.points import validation_open
from sessions_app.live import render_event
from sessions_app.models import Diagram, SessionEvent, ValidationPoint, ValidationResponse
from sessions_app.reports import final_report
from sessions_app.validation import validation_respond
from tests.sessions_app.design_factories import (
    BRIEF,
    PROPOSAL_V1,
    PROPOSAL_V2,
    design_round,
    design_session,
    proposal_add,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(demo):
    return design_session(demo, plan=True)


def page(client, user, session) -> str:
    client.force_login(user)
    response = client.get(reverse("session_detail", kwargs={"pk": session.pk}))
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    match = re.search(rf'<section id="{element_id}".*?</section>', html, re.S)
    assert match, f"no #{element_id}"
    return match.group(0)


def text(fragment: str) -> str:
    """The visible text, one space between words, none before punctuation."""
    flat = " ".join(re.sub(r"<[^>]+>", " ", fragment).split())
    return re.sub(r" ([:,.)])", r"\1", flat)


def open_gate(session, title="Design Before Development: confirm the design") -> ValidationPoint:
    with transaction.atomic():
        return validation_open(session, gate=DESIGN_GATE, kind="approval", title=title, body="Confirm the design.", questions=[])


# -- the session page ----------------------------------------------------------------------


def test_empty_panels_say_when_they_fill_in(client, demo, people):
    session = design_session(demo, brief=False)
    html = page(client, people["ada"], session)
    assert "The brief appears after Team Assembly" in section(html, "design-brief")
    assert "The proposal appears after Integration Design" in section(html, "design-proposal")
    plan = section(html, "design-plan")
    assert "The plan appears after Implementation Planning" in plan
    assert "derived from the proposal in Integration Validation" in plan


def test_the_brief_panel_shows_capabilities_services_constraints_conflicts_and_questions(client, session, people):
    brief = text(section(page(client, people["ada"], session), "design-brief"))
    assert "Payments and PCI" in brief and "Subscriptions and billing" in brief
    assert "billing [service]: Subscription cycles and invoices" in brief
    assert "payments [service] already exists: changed" in brief
    assert "“one-time payments” ↔ orders (requirement)" in brief and "“Stripe” ↔ stripe" in brief
    assert "latency 100 ms from the requirement conflicts" in brief
    assert "latency 300 ms from the prd conflicts" in brief
    assert "compliance PCI DSS from the requirement" in brief and "PCI DSS from the requirement conflicts" not in brief
    assert "Latency: 100 ms in the requirement, 300 ms in PRD-101." in brief
    assert "Questions for you" in brief and BRIEF.questions[0] in brief


def test_the_proposal_panel_shows_the_latest_version_its_content_and_what_changed(client, session, people):
    rnd = design_round(session, number=3)
    proposal_add(session, PROPOSAL_V1, reason="Integration Design merged four specialists", round=rnd)
    follow_up = design_round(session, number=5, kind="follow_up")
    v2 = proposal_add(session, PROPOSAL_V2, reason="hold stock while the payment runs", round=follow_up,
                      author_kind="specialist", author_name="Data Flow Analyst")
    html = section(page(client, people["ada"], session), "design-proposal")
    body = text(html)
    assert "Proposal v2" in body
    assert "Version 2 by Data Flow Analyst in round 5: hold stock while the payment runs" in body
    assert "change payments [service]: Charges through Stripe; the only service in PCI scope owns payments-db (postgres)" in body
    assert "add orders → payments REST sync authorise the payment at checkout" in body
    assert "add orders → inventory AMQP async" in body
    assert "inventory.reserved: inventory → orders fields: expires_at, order_id, sku" in body
    assert "payment.completed: payments → inventory, notifications, orders" in body
    assert "card tokens → payments" in body and "deduplicate by event id" in body
    # The diff against v1, with its marks (and words for screen readers).
    assert "Changed since v1" in body
    added = re.findall(r'<li class="diff-insert">.*?Added: </span>(.*?)</li>', html)
    changed = re.findall(r'<li class="diff-replace">.*?Changed: </span>(.*?)</li>', html)
    assert any("inventory.reserved" in line for line in added), added
    assert any("orders → inventory AMQP async" in line for line in added), added
    assert any("payment.completed" in line and "consumers +inventory" in line for line in changed), changed
    diagram = Diagram.objects.get(session=session, kind=Diagram.Kind.PROPOSED)
    compare = reverse("diagram_compare", kwargs={"slug": session.project.slug, "diagram_id": diagram.pk})
    assert f'href="{compare}?a=current&amp;b={v2.diagram_version.number}">Compare with current cluster</a>' in html
    assert f'href="{compare}?a=1&amp;b=2">Compare with v1</a>' in html
    assert "Proposed diagram</a>" in html


def test_the_plan_panel_lists_ordered_tasks_and_the_checklist(client, session, people):
    plan = section(page(client, people["ada"], session), "design-plan")
    items = re.findall(r'<li id="plan-item-(\d+)"', plan)
    assert items == ["1", "2", "3", "4", "5"]
    body = text(plan)
    assert "#2 · Integration Architect · payments Define the API contract orders → payments Depends on #1" in body
    assert "Acceptance: OpenAPI spec reviewed by the USER" in body
    assert "#4 · Security Guardian · payments Isolate the PCI network Depends on #3" in body
    assert '<a href="#plan-item-3">#3</a>' in plan
    assert "Can orders initiate payments via API? (orders → payments REST)" in body


def test_model_text_is_escaped_everywhere_it_is_shown(client, demo, people):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    brief = BRIEF.model_copy(update={"questions": [evil], "conflicts": [BRIEF.conflicts[0].model_copy(update={"text": evil})]})
    session = design_session(demo, plan=False)
    session.brief = brief.model_dump()
    session.plan = [{"order": 1, "specialist": "security-guardian", "service": "payments", "task": evil, "acceptance": evil}]
    session.checklist = [{"check": evil, "source": evil}]
    session.save()
    content = ProposalContent(
        services=[ServiceChange(name="pay<b>ments</b>", responsibility=evil, store=evil)],
        edges=[EdgeChange(source="orders", target="payments", protocol="<i>REST</i>", purpose=evil)],
        risks=[evil],
    )
    proposal_add(session, content, reason=evil, author_name=evil)
    html = page(client, people["ada"], session)
    for element in ("design-brief", "design-proposal", "design-plan"):
        fragment = section(html, element)
        assert "<script>" not in fragment and "<img" not in fragment and "<b>ments" not in fragment, element
        assert "&lt;script&gt;" in fragment, element
    assert "<i>REST</i>" not in html


def test_live_fragments_swap_the_panels_from_the_current_rows(session):
    from sessions_app import events

    with transaction.atomic():
        events.event_emit(session_id=session.pk, event=events.BriefReady())
        events.event_emit(session_id=session.pk, event=events.PlanUpdated(items=5, checks=2))
    proposal_add(session, PROPOSAL_V1, reason="first")
    proposal_add(session, PROPOSAL_V2, reason="hold stock")
    rows = {r.type: r for r in SessionEvent.objects.filter(session=session).order_by("seq")}
    brief = render_event(rows["brief.ready"])
    assert '<section id="design-brief"' in brief and 'hx-swap-oob="true"' in brief and "Payments and PCI" in brief
    plan = render_event(rows["plan.updated"])
    assert '<section id="design-plan"' in plan and "Isolate the PCI network" in plan
    first, second = SessionEvent.objects.filter(session=session, type="proposal.updated").order_by("seq")
    fragment = render_event(second)
    assert '<section id="design-proposal"' in fragment and "hx-swap-oob" in fragment
    assert 'id="user-panel"' in fragment  # open points' cards show the proposal too: each client refetches
    # State-based: replaying the v1 event shows the current version again, not v1.
    replay = render_event(first)
    strip = lambda html: re.sub(r'<div id="live-seq".*?</div>', "", html)  # noqa: E731
    assert strip(replay) == strip(fragment) and "Proposal <span class=\"badge\">v2</span>" in replay


# -- validation point cards ----------------------------------------------------------------


def test_the_card_shows_the_proposed_cluster_and_the_form_records_the_version_seen(client, session, people):
    rnd = design_round(session)
    proposal_add(session, PROPOSAL_V1, reason="first", round=rnd)
    point = open_gate(session)
    html = page(client, people["pete"], session)
    card = re.search(rf'<section class="card validation" id="point-{point.pk}">.*?</section>', html, re.S).group(0)
    assert "Proposal v1" in card and "Proposed Architecture:" in card and "payments*" in card
    assert "What changed since" not in card  # the first point: nothing seen before
    assert "Key decisions" not in card  # none agreed yet
    assert '<input type="hidden" name="proposal_seen" value="1">' in card

    url = reverse("validation_respond", kwargs={"pk": session.pk, "point_id": point.pk})
    response = client.post(url, {"verdict": "request_changes", "comment": "No inventory hold during processing",
                                 "proposal_seen": "1"})
    assert response.status_code == 302
    answer = ValidationResponse.objects.get(point=point)
    assert answer.proposal_seen.version == 1 and answer.verdict == "request_changes"


def test_an_unknown_proposal_version_is_refused_and_nothing_is_recorded(client, session, people):
    proposal_add(session, PROPOSAL_V1, reason="first")
    point = open_gate(session)
    client.force_login(people["pete"])
    url = reverse("validation_respond", kwargs={"pk": session.pk, "point_id": point.pk})
    response = client.post(url, {"verdict": "request_changes", "comment": "Hold stock", "proposal_seen": "7"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "no proposal version 7" in response.content.decode()
    assert not ValidationResponse.objects.filter(point=point).exists()
    assert ValidationPoint.objects.get(pk=point.pk).state == "open"


def test_the_next_point_shows_what_changed_since_the_version_each_person_last_saw(client, session, people):
    rnd = design_round(session)
    proposal_add(session, PROPOSAL_V1, reason="first", round=rnd)
    first = open_gate(session)
    validation_respond(point=first, user=people["pete"], verdict="request_changes",
                       comment="No inventory hold during processing", proposal_seen=1)
    assert ValidationPoint.objects.get(pk=first.pk).state == "changes_requested"
    proposal_add(session, PROPOSAL_V2, reason="reserve stock before charging", author_kind="specialist",
                 author_name="Data Flow Analyst")
    ValidationPoint.objects.filter(session=session, state="open").update(state="cancelled")
    second = open_gate(session)

    from sessions_app.models import KeyQuestion

    KeyQuestion.objects.create(session=session, ref="Q1", text="A separate payment database for PCI?",
                               options=["Yes: payments-db", "No: shared postgres"], state="decided", chosen="Yes: payments-db")
    for who in ("pete", "paula"):  # pete answered v1; paula never answered: the previous point showed v1
        html = page(client, people[who], session)
        card = re.search(rf'id="point-{second.pk}">.*?</section>', html, re.S).group(0)
        assert "Proposal v2" in card, who
        assert "What changed since v1, the version you last saw" in card, who
        added = re.findall(r'<li class="diff-insert">.*?Added: </span>(.*?)</li>', card)
        assert any("event inventory.reserved" in line for line in added), (who, added)
        assert any("orders → inventory AMQP async" in line for line in added), (who, added)
        assert '<input type="hidden" name="proposal_seen" value="2">' in card
        assert "A separate payment database for PCI? → Yes: payments-db (decided by the user)" in text(card)


# -- the compare page ----------------------------------------------------------------------


def test_compare_shows_the_current_cluster_against_the_proposal(client, session, people):
    v1 = proposal_add(session, PROPOSAL_V1, reason="first")
    diagram = v1.diagram_version.diagram
    client.force_login(people["ada"])
    url = reverse("diagram_compare", kwargs={"slug": session.project.slug, "diagram_id": diagram.pk})
    response = client.get(url)  # a proposed diagram compares with the current cluster by default
    assert response.status_code == 200
    html = response.content.decode()
    current = Diagram.objects.get(project=session.project, kind=Diagram.Kind.CLUSTER).versions.order_by("-number").first()
    assert f"<h3>Current cluster v{current.number}</h3>" in html and "<h3>v1</h3>" in html
    assert f"data-mermaid>{escape(current.mermaid)}</pre>" in html
    assert f"data-mermaid>{escape(v1.diagram_version.mermaid)}</pre>" in html
    assert "Proposal v1 against the current cluster" in html
    assert "add edge orders → payments REST sync" in html
    # The proposed side highlights what the proposal adds: a new link style in the diff.
    inserted = re.findall(r'<tr class="diff-(?:insert|replace)"><td><pre>.*?</pre></td><td><pre>(.*?)</pre></td></tr>', html)
    assert any("linkStyle" in line for line in inserted), inserted
    assert '<option value="current" selected>' in html


def test_compare_shows_one_proposal_version_against_the_next(client, session, people):
    proposal_add(session, PROPOSAL_V1, reason="first")
    v2 = proposal_add(session, PROPOSAL_V2, reason="hold stock")
    client.force_login(people["ada"])
    url = reverse("diagram_compare", kwargs={"slug": session.project.slug, "diagram_id": v2.diagram_version.diagram_id})
    response = client.get(url, {"a": 1, "b": 2})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Proposal v1 → v2" in html
    added = re.findall(r'<li class="diff-insert">.*?Added: </span>(.*?)</li>', html)
    assert any("inventory.reserved" in line for line in added), added
    assert client.get(url, {"a": "current", "b": 9}).status_code == 400


# -- the final report ----------------------------------------------------------------------


def test_the_report_has_the_approved_proposal_the_plan_the_checklist_and_the_proposed_cluster(session, people):
    proposal_add(session, PROPOSAL_V1, reason="first")
    report = final_report(session, SessionContext.load(session))
    assert "## Proposal (v1, not approved yet)" in report
    proposal_add(session, PROPOSAL_V2, reason="reserve stock before charging", author_name="Maestro")
    point = open_gate(session)
    ValidationPoint.objects.filter(pk=point.pk).update(state="approved", closed_at=point.opened_at.replace(year=2100))

    report = final_report(session, SessionContext.load(session))
    assert "## Approved proposal (v2)" in report
    assert "Version 2 by Maestro: reserve stock before charging" in report
    assert "- change `payments` [service]: Charges through Stripe; the only service in PCI scope (owns payments-db (postgres))" in report
    assert "- add `orders` → `inventory` AMQP async (reserve stock before charging)" in report
    assert "- add `inventory.reserved`: inventory → orders {expires_at, order_id, sku}" in report
    assert "| # | Specialist | Service | Task | Depends on | Acceptance |" in report
    assert "| 2 | Integration Architect | payments | Define the API contract orders → payments | #1 | OpenAPI spec reviewed by the USER |" in report
    assert "- [ ] Can orders initiate payments via API? (orders → payments REST)" in report
    block = report.split("## Proposed cluster", 1)[1].split("```")[1]
    assert block.lstrip("\n").startswith("Proposed Architecture:")
    assert "payments*" in block and "* new or changed" in block
    connections = block.split("Connections:", 1)[1]
    orders = connections.split("\n  orders ", 1)[1].split("\n  payments*", 1)[0]  # the edges from orders
    assert "──HTTP──▶ payments*" in orders and "──event──▶ inventory" in orders


def test_the_report_page_renders_the_design_sections(client, session, people):
    proposal_add(session, PROPOSAL_V1, reason="first")
    client.force_login(people["ada"])
    html = client.get(reverse("session_report", kwargs={"pk": session.pk})).content.decode()
    assert "<h2>Proposal (v1, not approved yet)</h2>" in html and "<h2>Implementation plan</h2>" in html
    assert "<table>" in html and "Proposed Architecture:" in html
