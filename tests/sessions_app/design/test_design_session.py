"""A whole session on the demo produces a design: brief, proposal versions with proposed
diagrams, a plan, an integration checklist, and feedback that changes the proposal."""

from __future__ import annotations

import pytest

from sessions_app import services
from sessions_app.design.models import DesignProposal
from sessions_app.engine.checklist import DESIGN_GATE, DISCOVERY_INPUT, VALIDATION_GATE
from sessions_app.models import DesignSession, SessionEvent
from sessions_app.validation import validation_respond
from teams_app.models import Membership, TeamTemplate

pytestmark = pytest.mark.django_db
PAY = "Add a payment service with Stripe: PCI scope isolated, latency under 100 ms, subscriptions and one-time payments"
HOLD = "Payment works but no inventory hold during processing"


@pytest.fixture
def po(demo, make_user):
    user = make_user("petra")
    Membership.objects.create(user=user, project=demo, role=Membership.Role.PRODUCT_OWNER)
    return user


@pytest.fixture
def at_design_gate(run_engine, demo, po):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = run_engine(services.session_start, project=demo, template=template, requirement=PAY, user=None, prd=demo.prds.get())
    for q in session.key_questions.filter(state="conflict"):  # renewals: Stripe's or our own scheduler
        run_engine(services.key_question_decide, question=q, option=q.options[0], user=po)
    return DesignSession.objects.get(pk=session.pk)


def test_the_brief_is_recorded_shown_to_the_team_and_asks_the_unknowns(at_design_gate):
    s = at_design_gate
    assert [c["key"] for c in s.brief["capabilities"]] == ["payments", "subscriptions"]
    assert SessionEvent.objects.filter(session=s, type="brief.ready").count() == 1
    assembly = s.rounds.get(number=1).contributions.get()
    assert "BRIEF:" in assembly.text and "100 ms" in assembly.text and "300 ms" in assembly.text
    assert assembly.text.rstrip().endswith('DO NOT BUILD YET."')
    point = s.validation_points.get(gate="discovery_input")
    assert any(q.startswith("Which latency target holds") for q in point.questions)
    brief_in_context = s.contributions.filter(round__number=2, specialist_slug="performance-engineer").get()
    assert "Latency 100 ms from requirement." in brief_in_context.text


def test_integration_design_gives_a_versioned_proposal_with_a_proposed_diagram(at_design_gate):
    s = at_design_gate
    v1 = s.proposals.get(version=1)
    assert v1.round.kind == "design" and v1.author_kind == "maestro" and "Integration Architect" in v1.contributors
    services_ = {x["name"]: x for x in v1.content["services"]}
    assert services_["payments"]["change"] == "change" and services_["subscriptions"]["change"] == "add"
    edges = {(e["source"], e["target"]) for e in v1.content["edges"]}
    assert {("orders", "payments"), ("cart", "payments"), ("stripe", "payments")} <= edges
    dv = v1.diagram_version
    assert dv.diagram.kind == "proposed" and dv.diagram.session_id == s.pk
    assert "class " in dv.mermaid and "highlight" in dv.mermaid and "subscriptions*" in dv.ascii
    assert SessionEvent.objects.filter(session=s, type="proposal.updated").exists()
    questions = {q.key: q for q in s.key_questions.all()}
    assert "PCI DSS" in questions["payments.store"].text
    # No ADR is accepted before a person approves; consensus only proposes.
    assert not s.decisions.filter(status="accepted").exists()
    gate = s.validation_points.get(gate=DESIGN_GATE, state="open")
    assert "Proposal v" in gate.body and "orders → payments REST sync" in gate.body
    assert "Latency: 100 ms in the requirement" in gate.body  # the brief's conflict goes to the USER


def test_plan_checklist_and_a_change_request_that_changes_the_design(run_engine, at_design_gate, po):
    s = at_design_gate
    design_point = s.validation_points.get(gate=DESIGN_GATE, state="open")
    requirements_input = s.validation_points.get(gate=DISCOVERY_INPUT, state="open")  # left unanswered
    run_engine(validation_respond, point=design_point, user=po, verdict="approve", comment="")
    s = DesignSession.objects.get(pk=s.pk)
    requirements_input.refresh_from_db()
    assert requirements_input.state == "cancelled", "the agreed design closes the input that can no longer shape it"
    owners = {p["specialist"] for p in s.plan if p["specialist"] != "user"}
    assert len(owners) >= 4
    orders = {p["order"]: p for p in s.plan}
    assert all(dep < p["order"] and dep in orders for p in s.plan for dep in p["depends_on"])
    assert any("API contracts of payments" in p["task"] for p in s.plan)
    assert any(p["specialist"] == "user" and "Review the API design" in p["task"] for p in s.plan)
    assert all(p["acceptance"] for p in s.plan)
    checks = [c["check"] for c in s.checklist]
    assert "Can initiate payments via API?" in checks and "Real-time status updates working?" in checks
    assert any("payment.completed" in c for c in checks)
    phase5 = s.validation_points.get(gate=VALIDATION_GATE, state="open")
    assert "Implementation plan" in phase5.body and "Integration checklist" in phase5.body
    assert "\n- #1 [" in phase5.body  # not "- 1.", which markdown shows as a list inside the bullet
    tasks = [p["task"] for p in s.plan]
    shortened = 0
    for c in s.contributions.filter(round__kind="planning", author="specialist", status="done"):
        for line in c.text.splitlines():
            for part in line.split(" — after: ", 1)[1].split("; ") if " — after: " in line else []:
                cut = part.removesuffix("…").rstrip()
                shortened += part != cut
                # A task named whole, or shortened at a word's end.
                assert part in tasks or any(t.startswith(cut) and t[len(cut)] == " " for t in tasks), part
    assert shortened
    assert phase5.body != design_point.body and "Open questions for you" not in phase5.body

    latest = s.proposals.order_by("-version").first().version
    planned = _task_order(s.plan)
    assert sum(len(after) for after in planned.values()) >= 3  # the plan has an order to keep
    run_engine(validation_respond, point=phase5, user=po, verdict="request_changes", comment=HOLD)
    s = DesignSession.objects.get(pk=s.pk)
    replanned = _task_order(s.plan)
    assert {task: replanned.get(task) for task in planned} == planned, "the approved tasks keep their order"
    orders = {p["order"]: p for p in s.plan}
    assert all(dep < p["order"] and dep in orders for p in s.plan for dep in p["depends_on"])
    follow_up = s.rounds.get(kind="follow_up")
    assert 1 <= len(follow_up.addressed_to) <= 3 and "data-flow-analyst" in follow_up.addressed_to
    assert follow_up.feedback == HOLD
    new = s.proposals.order_by("-version").first()
    assert new.version == latest + 1 and new.round_id == follow_up.pk and HOLD in new.reason
    assert any("inventory.reserved" in line for line in new.diff["added"])
    assert any("reservation step" in line for line in new.diff["added"])
    assert any("reservation" in p["task"].lower() for p in s.plan)  # the plan grew with the design
    reopened = s.validation_points.get(gate=VALIDATION_GATE, state="open")
    assert f"What changed since v{latest}, the version you last saw (now v{new.version})" in reopened.body
    assert "inventory.reserved" in reopened.body

    run_engine(validation_respond, point=reopened, user=po, verdict="approve")
    s = DesignSession.objects.get(pk=s.pk)
    assert s.status == "completed"


def _task_order(plan: list[dict]) -> dict[str, set[str]]:
    """Each task of the plan, with the tasks it comes after (by their text, not their numbers)."""
    task = {p["order"]: p["task"] for p in plan}
    return {p["task"]: {task[n] for n in p["depends_on"]} for p in plan}


def test_rounds_build_on_each_other_instead_of_repeating(run_engine, at_design_gate, po):
    s = at_design_gate
    run_engine(validation_respond, point=s.validation_points.get(gate=DESIGN_GATE, state="open"), user=po, verdict="approve")
    by_specialist: dict[str, list[str]] = {}
    for c in s.contributions.filter(author="specialist", status="done").order_by("round__number"):
        by_specialist.setdefault(c.specialist_slug, []).append(c.text)
    for slug, texts in by_specialist.items():
        assert len(texts) >= 3, slug
        for i, text in enumerate(texts[1:], start=1):
            earlier = {line.strip() for t in texts[:i] for line in t.splitlines() if line.strip()}
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            repeated = sum(1 for line in lines if line in earlier)
            assert repeated <= len(lines) / 3, (slug, i, repeated, len(lines))
    design = s.contributions.get(round__kind="design", specialist_slug="security-guardian")
    assert "SEC002" in design.text and "**CRITICAL**" not in design.text  # cited by id, not repeated


def test_a_message_at_the_gate_is_feedback_routed_like_a_change_request(run_engine, at_design_gate, po):
    s = at_design_gate
    before = s.proposals.count()
    run_engine(services.message_post, session=s, text="We also need the stock held while the payment runs", user=po)
    s = DesignSession.objects.get(pk=s.pk)
    follow_up = s.rounds.get(kind="follow_up")
    assert "data-flow-analyst" in follow_up.addressed_to and len(follow_up.addressed_to) <= 3
    assert s.proposals.count() == before + 1
    assert s.validation_points.filter(gate=DESIGN_GATE, state="open").count() == 1


def test_the_same_session_twice_gives_the_same_proposal(run_engine, demo, at_design_gate):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    again = run_engine(services.session_start, project=demo, template=template, requirement=PAY, user=None, prd=demo.prds.get())
    first = DesignProposal.objects.get(session=at_design_gate, version=1).content
    assert DesignProposal.objects.get(session=again, version=1).content == first


def test_an_open_question_is_offered_to_the_user_and_decided(run_engine, demo, po, client):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    s = run_engine(services.session_start, project=demo, template=template, user=None, prd=demo.prds.get(),
                   requirement="Add a subscriptions service that creates recurring orders through orders")
    q = s.key_questions.get(key="subscriptions.renewals")
    assert q.state == "open"  # one voice with evidence: a recommendation, not consensus
    client.force_login(po)
    html = client.get(s.get_absolute_url()).content.decode()
    assert f"Decide {q.ref}" in html and "Decide what the team could not settle" in html
    run_engine(services.key_question_decide, question=q, option=q.options[1], user=po)
    q.refresh_from_db()
    assert (q.state, q.chosen, q.decided_by) == ("decided", q.options[1], po)
    assert s.decisions.filter(title__icontains="renewals").exists()
    assert s.validation_points.filter(gate=DESIGN_GATE, state="open").count() == 1


def test_the_checklist_follows_a_changed_proposal(run_engine, at_design_gate, po):
    s = at_design_gate
    run_engine(validation_respond, point=s.validation_points.get(gate=DESIGN_GATE, state="open"), user=po, verdict="approve")
    point = DesignSession.objects.get(pk=s.pk).validation_points.get(gate=VALIDATION_GATE, state="open")
    run_engine(validation_respond, point=point, user=po, verdict="request_changes", comment=HOLD)
    s = DesignSession.objects.get(pk=s.pk)
    checks = [c["check"] for c in s.checklist]
    assert any("inventory.reserved" in c for c in checks)
    assert "Is stock held during payment processing and released on failure?" in checks
    point = s.validation_points.get(gate=VALIDATION_GATE, state="open")
    run_engine(validation_respond, point=point, user=po, verdict="approve")
    s = DesignSession.objects.get(pk=s.pk)
    latest = s.proposals.order_by("-version").first()
    assert f"## Approved proposal (v{latest.version})" in s.report
    assert "subscriptions-db" in str(latest.content["services"])


def test_a_requirement_outside_the_catalogue_still_ends_in_a_design(run_engine, demo):
    """A service the catalogue does not know, named by the requirement: the rule-based team
    designs it on the demo's cluster, and puts to the product owner what it cannot decide."""
    template = TeamTemplate.objects.get(slug="new-service-integration")
    requirement = "Add a loyalty points service that awards points for completed orders and lets customers redeem them at checkout"
    session = run_engine(services.session_start, project=demo, template=template, requirement=requirement, user=None, prd=demo.prds.get())
    v1 = DesignProposal.objects.get(session=session, version=1)
    assert {x["name"]: x["change"] for x in v1.content["services"]} == {"loyalty-points": "add", "loyalty-points-db": "add"}
    assert {("gateway", "loyalty-points"), ("orders", "loyalty-points")} <= {(e["source"], e["target"]) for e in v1.content["edges"]}
    disputed = session.key_questions.get(text__startswith="How should orders talk to loyalty-points?")
    assert disputed.state == "conflict" and len(disputed.options) == 2
    assert DesignSession.objects.get(pk=session.pk).status == DesignSession.Status.AWAITING_USER
