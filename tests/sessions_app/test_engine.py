"""The Maestro's engine, phase by phase, driven synchronously (Celery eager, on-commit run inline)."""

from __future__ import annotations

import pytest

from sessions_app import services
from sessions_app.decisions.models import Decision
from sessions_app.engine.checklist import DESIGN_GATE, DISCOVERY_INPUT, VALIDATION_GATE
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Position, Round, SessionEvent, Synthesis
from sessions_app.tasks import synthesize_round
from sessions_app.validation import validation_respond
from teams_app.errors import ApplicationError
from teams_app.models import Membership, TeamTemplate

pytestmark = pytest.mark.django_db
REQ = "Add a subscriptions service that creates recurring orders through orders and charges through payments"
REQ_PAY = "Add a payment service with Stripe: PCI scope isolated, latency under 100 ms, subscriptions and one-time payments"
S = DesignSession.Status


@pytest.fixture
def nsi(demo):
    return TeamTemplate.objects.get(slug="new-service-integration")


@pytest.fixture
def po(demo, make_user):
    user = make_user("petra")
    Membership.objects.create(user=user, project=demo, role=Membership.Role.PRODUCT_OWNER)
    return user


def start(run_engine, demo, template, **kw):
    prd = kw.pop("prd", demo.prds.get())
    return run_engine(services.session_start, project=demo, template=template, requirement=REQ, user=None, prd=prd, **kw)


def fresh(session):
    return DesignSession.objects.get(pk=session.pk)


def test_without_prd_the_session_pauses_and_asks(run_engine, demo, nsi):
    session = start(run_engine, demo, nsi, prd=None)
    session = fresh(session)
    assert session.status == S.PAUSED_PRD
    assert session.status_reason == "What PRD id/link should we attach?"
    assert not session.rounds.exists()
    run_engine(services.session_attach_prd, session=session, prd=demo.prds.get())
    session = fresh(session)
    assert session.prd.reference == "PRD-101"
    assert session.rounds.count() == 3 and session.phase == "design"


def test_attaching_a_prd_to_a_running_session_is_refused(run_engine, demo, nsi):
    session = start(run_engine, demo, nsi)
    with pytest.raises(ApplicationError, match="not waiting for a PRD"):
        services.session_attach_prd(session=session, prd=demo.prds.get())


def test_team_assembly_message(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    assembly = session.rounds.get(number=1)
    assert assembly.kind == Round.Kind.ASSEMBLY and assembly.phase == "assembly"
    text = assembly.contributions.get(author=Contribution.Author.MAESTRO).text
    assert "New Service Integration Team assembling" in text
    assert "14 services" in text and "postgres" in text  # grounded in the demo inventory
    assert "PRD-101" in text
    for member in ("Pattern Archaeologist", "DevOps Specialist", "USER: Business capability validator"):
        assert member in text
    assert text.rstrip('"').endswith("DO NOT BUILD YET.")


def test_pattern_discovery_fans_out_to_every_specialist_with_deployment_briefs(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    analysis = session.rounds.get(number=2)
    assert analysis.kind == Round.Kind.ANALYSIS and analysis.phase == "discovery" and analysis.status == "done"
    contributions = list(analysis.contributions.filter(author="specialist"))
    assert len(contributions) == 6
    for c in contributions:
        assert c.status == "done" and c.provider == "rules"
        assert c.brief.startswith(f'To {c.author_name}:\n"As part of New Service Integration Team')
        assert "CONSTRAINT: Follow existing cluster patterns unless justified" in c.brief
        assert "rule-based designer" in c.text.lower()
        assert c.idempotency_key == f"round:{analysis.pk}:{c.specialist_slug}:attempt:1"
    security = analysis.contributions.get(specialist_slug="security-guardian")
    assert "SEC001" in security.text  # grounded: postgres is published on a host port
    # The USER is asked for business requirements through an input point.
    point = session.validation_points.get(gate=DISCOVERY_INPUT)
    assert point.kind == "input" and point.state == "open"


def test_synthesis_follows_the_template(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    synthesis = session.rounds.get(number=2).synthesis
    assert synthesis.text.startswith('"CLUSTER ARCHITECTURE ROUND 2:')
    for heading in ("CURRENT STATE:", "FINDINGS:", "PATTERN CONSISTENCY:", "INTEGRATION PLAN:", "Requesting input from:"):
        assert heading in synthesis.text
    assert "┌" in synthesis.ascii and "[CLUSTER-SESSION:" in synthesis.ascii
    assert any(not check["ok"] for check in synthesis.pattern_checks)  # the gRPC deviation of inventory
    assert any("orders" in line for line in synthesis.integration_plan)
    assert "- Pattern Archaeologist:" in synthesis.text


def test_integration_design_key_questions_positions_and_gate(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    design = session.rounds.get(number=3)
    assert design.kind == "design" and design.phase == "design"
    questions = {q.key: q for q in session.key_questions.order_by("ref")}
    # From the requirement (subscriptions, payments) and the cluster, not a fixed list.
    assert set(questions) == {"payments.store", "payments.webhooks", "payments.sync", "subscriptions.store", "subscriptions.renewals"}
    assert "PCI DSS" in questions["payments.store"].text  # the project's constraints name PCI DSS
    assert "stripe" in questions["payments.webhooks"].text and "gateway" in questions["payments.webhooks"].options[0]
    for q in questions.values():
        positions = list(Position.objects.filter(question=q, round=design))
        if q.state == "agreed":
            assert len(positions) >= 2 and q.chosen in q.options and q.agreement >= session.consensus_threshold
            assert all(p.rationale for p in positions)
    # Only the Data Flow Analyst has evidence on renewals: one voice is not consensus, the USER decides.
    renewals = questions["subscriptions.renewals"]
    assert renewals.state == "open" and renewals.chosen == ""
    assert Position.objects.filter(question=renewals).count() == 1
    assert session.gate == {
        "integration_points_mapped": True, "data_flow_understood": True,
        "pattern_consistency_verified": True, "user_requirements_confirmed": False,
    }
    gate = session.validation_points.get(gate=DESIGN_GATE)
    assert gate.state == "open" and session.status == S.AWAITING_USER
    for phrase in ("USER VALIDATION NEEDED", "Key Design Decisions:", "Does this meet business requirements?",
                   "Any missing capabilities?", "Performance concerns?", "Proposal v1", "Open questions for you",
                   f"{renewals.ref}: What drives renewals?"):
        assert phrase in gate.body
    assert "takes the first one" not in gate.body


def test_gate_blocks_planning_until_the_design_is_approved(run_engine, demo, nsi, po):
    session = fresh(start(run_engine, demo, nsi))
    assert session.phase == "design"
    assert not session.rounds.filter(kind="planning").exists()
    gate = session.validation_points.get(gate=DESIGN_GATE)
    run_engine(validation_respond, point=gate, user=po, verdict="approve", comment="Looks right")
    session = fresh(session)
    assert session.gate["user_requirements_confirmed"] is True
    planning = session.rounds.get(kind="planning")
    assert planning.phase == "planning" and planning.status == "done"
    # Planning synthesised, then Integration Validation opens its point.
    assert session.phase == "validation"
    assert session.validation_points.get(gate=VALIDATION_GATE).state == "open"


def test_approving_validation_completes_with_a_report(run_engine, demo, nsi, po):
    session = fresh(start(run_engine, demo, nsi))
    run_engine(validation_respond, point=session.validation_points.get(gate=DESIGN_GATE), user=po, verdict="approve")
    point = session.validation_points.get(gate=VALIDATION_GATE)
    run_engine(validation_respond, point=point, user=po, verdict="approve")
    session = fresh(session)
    assert session.status == S.COMPLETED and session.phase == "completed"
    assert session.report.startswith("# Final report:")
    for part in ("PRD-101", "## Key decisions", "## Follow-ups and risks", "## Next steps", "Currently Active Team:"):
        assert part in session.report
    assert "[ADR-0001](/projects/demo/decisions/1/)" in session.report  # made absolute where it leaves the site
    assert "(accepted)" in session.report


def test_request_changes_opens_a_follow_up_round_for_the_concerned_specialists(run_engine, demo, nsi, po):
    session = fresh(start(run_engine, demo, nsi))
    run_engine(validation_respond, point=session.validation_points.get(gate=DESIGN_GATE), user=po, verdict="approve")
    point = session.validation_points.get(gate=VALIDATION_GATE)
    run_engine(
        validation_respond, point=point, user=po, verdict="request_changes",
        comment="Payment works but no inventory hold during processing: we need a data flow and events for the stock reservation",
    )
    session = fresh(session)
    follow_up = session.rounds.get(kind="follow_up")
    assert "data-flow-analyst" in follow_up.addressed_to
    assert len(follow_up.addressed_to) < 6
    assert set(follow_up.contributions.filter(author="specialist").values_list("specialist_slug", flat=True)) == set(follow_up.addressed_to)
    assert follow_up.contributions.filter(author="user").exists() or session.contributions.filter(author="user").exists()
    # After the follow-up the validation point is opened again.
    assert session.validation_points.filter(gate=VALIDATION_GATE, state="open").count() == 1
    assert session.status == S.AWAITING_USER


def test_conflicts_get_bounded_discussion_then_escalate_to_the_user(run_engine, demo, nsi, po, settings):
    settings.MAESTRO_DISCUSSION_ROUNDS = 1
    # With Stripe named, the Integration Architect favours Stripe's subscriptions and the Data Flow
    # Analyst a scheduler of our own: a real disagreement on renewals.
    session = fresh(run_engine(services.session_start, project=demo, template=nsi, requirement=REQ_PAY, user=None, prd=demo.prds.get()))
    conflicts = list(session.key_questions.filter(state="conflict"))
    assert [q.key for q in conflicts] == ["subscriptions.renewals"]
    assert session.rounds.filter(kind="discussion").count() == 1
    assert all(q.discussion_rounds == 1 for q in conflicts)
    assert session.status == S.AWAITING_USER
    assert "could not agree" in session.status_reason
    assert not session.validation_points.filter(gate=DESIGN_GATE).exists()
    for q in conflicts:
        run_engine(services.key_question_decide, question=q, option=q.options[-1], user=po)
    session = fresh(session)
    assert all(q.state in ("agreed", "decided") for q in session.key_questions.all())
    assert session.validation_points.get(gate=DESIGN_GATE).state == "open"


def test_deciding_with_an_unknown_option_changes_nothing(run_engine, demo, nsi, po, settings):
    settings.MAESTRO_DISCUSSION_ROUNDS = 0
    session = fresh(run_engine(services.session_start, project=demo, template=nsi, requirement=REQ_PAY, user=None, prd=demo.prds.get()))
    q = session.key_questions.filter(state="conflict").first()
    with pytest.raises(ApplicationError, match="Choose one of"):
        services.key_question_decide(question=q, option="Something else", user=po)
    assert KeyQuestion.objects.get(pk=q.pk).state == "conflict"


def _discussion_round(session, votes):
    """A discussion round whose specialists have spoken: ``votes`` maps each option to how many
    of the session's specialists take it on the disputed question. The engine synthesizes it."""
    question = session.key_questions.get(state="conflict")
    members = iter(m for m in session.team if not m["is_user"])
    number = session.rounds.order_by("-number").first().number + 1
    rnd = Round.objects.create(session=session, number=number, phase=session.phase, kind="discussion", status="synthesizing")
    for option, count in votes:
        for _ in range(count):
            member = next(members)
            c = Contribution.objects.create(
                session=session, round=rnd, author="specialist", specialist_slug=member["specialist"],
                author_name=member["name"], text=f"I favour {option}.", status="done",
            )
            Position.objects.create(question=question, round=rnd, contribution=c, specialist_slug=member["specialist"],
                                    author_name=member["name"], option=option, rationale="the evidence")
    return question, rnd


def test_a_tie_in_positions_stays_disputed_even_where_half_would_be_consensus(run_engine, demo, nsi, po, settings):
    settings.MAESTRO_DISCUSSION_ROUNDS = 1
    settings.MAESTRO_CONSENSUS_THRESHOLD = 0.5  # half the voices would do: only the tie keeps it open
    session = fresh(run_engine(services.session_start, project=demo, template=nsi, requirement=REQ_PAY, user=None, prd=demo.prds.get()))
    renewals = session.key_questions.get(key="subscriptions.renewals")
    assert (renewals.state, renewals.chosen, renewals.agreement) == ("conflict", "", 0.5)
    splits = [sorted(Position.objects.filter(question=renewals, round=r).values_list("option", flat=True))
              for r in session.rounds.filter(kind__in=["design", "discussion"]).order_by("number")]
    assert len(splits) == 2 and all(len(s) == 2 and s[0] != s[1] for s in splits)  # 1-1, twice
    assert not Decision.objects.filter(key_question=renewals).exists()
    assert session.status == S.AWAITING_USER and "could not agree on Q4" in session.status_reason

    first, second = renewals.options[:2]
    question, rnd = _discussion_round(session, [(first, 2), (second, 2)])
    run_engine(synthesize_round, rnd.pk)
    question.refresh_from_db()
    assert (question.state, question.chosen, question.agreement) == ("conflict", "", 0.5)
    assert not Decision.objects.filter(key_question=question).exists()

    question, rnd = _discussion_round(fresh(session), [(second, 2), (first, 1)])
    run_engine(synthesize_round, rnd.pk)
    question.refresh_from_db()
    assert (question.state, question.chosen) == ("agreed", second)
    assert round(question.agreement, 2) == 0.67
    assert Decision.objects.get(key_question=question).chosen_option == second
    assert fresh(session).validation_points.get(gate=DESIGN_GATE).state == "open"


def test_user_message_joins_the_next_briefs(run_engine, demo, nsi, po):
    session = fresh(start(run_engine, demo, nsi))
    services.message_post(session=session, text="Subscriptions must support weekly cadence", user=po)
    run_engine(validation_respond, point=session.validation_points.get(gate=DESIGN_GATE), user=po, verdict="approve")
    planning = fresh(session).rounds.get(kind="planning")
    from sessions_app.engine.context import SessionContext

    ctx = SessionContext.load(fresh(session))
    assert "Subscriptions must support weekly cadence" in ctx.as_text(focus=[], round=planning)


def test_pause_resume_and_cancel(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    services.session_pause(session=session)
    assert fresh(session).status == S.PAUSED
    with pytest.raises(ApplicationError):
        services.session_pause(session=session)
    run_engine(services.session_resume, session=session)
    session = fresh(session)
    assert session.status == S.AWAITING_USER  # the design gate still waits
    services.session_cancel(session=session)
    session = fresh(session)
    assert session.status == S.CANCELLED
    assert not session.validation_points.filter(state="open").exists()
    with pytest.raises(ApplicationError, match="ended"):
        services.message_post(session=session, text="hello", user=None)


def test_budget_spent_pauses_at_a_human_gate(run_engine, demo, nsi):
    session = start(run_engine, demo, nsi, prd=None, budget_tokens=10)
    DesignSession.objects.filter(pk=session.pk).update(tokens_in=11)
    run_engine(services.session_attach_prd, session=fresh(session), prd=demo.prds.get())
    session = fresh(session)
    assert session.status == S.AWAITING_USER and "budget" in session.status_reason
    assert not session.rounds.filter(kind="analysis").exists()
    services.session_set_budget(session=session, budget_tokens=10_000)
    run_engine(services.session_continue, session=fresh(session))
    assert fresh(session).rounds.filter(kind="design").exists()


def test_events_are_gap_free_and_ordered(run_engine, demo, nsi):
    session = fresh(start(run_engine, demo, nsi))
    seqs = list(SessionEvent.objects.filter(session=session).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert session.last_seq == seqs[-1]
    types = list(SessionEvent.objects.filter(session=session).order_by("seq").values_list("type", flat=True))
    first_started = types.index("contribution.started")
    first_specialist_finish = types.index("contribution.finished", first_started)
    assert types.index("round.started", 2) < first_started < first_specialist_finish
    assert types.index("synthesis.ready") > first_specialist_finish
    assert "phase.changed" in types and "gate.changed" in types and "validation.opened" in types


def test_cross_service_feature_asks_about_coordination(run_engine, demo):
    template = TeamTemplate.objects.get(slug="cross-service-feature")
    session = fresh(start(run_engine, demo, template))
    q1 = session.key_questions.get(ref="Q1")
    assert q1.options == ["Orchestration service", "Event choreography"]


def test_failed_specialist_can_be_rerun(run_engine, demo, nsi, settings, monkeypatch):
    from sessions_app.providers import rules as rules_provider
    from sessions_app.providers.base import ProviderError

    original = rules_provider.RulesProvider.run
    calls = {"n": 0}

    def flaky(self, request, on_delta):
        if request.specialist_slug == "security-guardian" and calls["n"] == 0:
            calls["n"] += 1
            raise ProviderError("The model rejected the API key.", transient=False)
        return original(self, request, on_delta)

    monkeypatch.setattr(rules_provider.RulesProvider, "run", flaky)
    session = fresh(start(run_engine, demo, nsi))
    failed = session.contributions.get(specialist_slug="security-guardian", status="failed")
    assert failed.error == "The model rejected the API key."
    assert session.status == S.AWAITING_USER and "Security Guardian could not contribute" in session.status_reason
    assert session.phase == "discovery"  # does not advance past a failure on its own
    first = Synthesis.objects.get(round=failed.round)
    assert "no contribution (The model rejected the API key.)" in first.text
    rerun = run_engine(services.contribution_rerun, contribution=failed)
    assert rerun.attempt == 2 and rerun.idempotency_key.endswith(":attempt:2")
    session = fresh(session)
    assert session.contributions.get(pk=rerun.pk).status == "done"
    assert session.phase == "design"  # the round completed and the session advanced
    again = Synthesis.objects.get(round=failed.round)  # written again in place: one per round
    assert (again.pk, again.created_at) == (first.pk, first.created_at) and "no contribution" not in again.text
    with pytest.raises(ApplicationError):
        services.contribution_rerun(contribution=Contribution.objects.get(pk=rerun.pk))


def test_transient_errors_are_retried_then_succeed(run_engine, demo, nsi, monkeypatch, eager_celery):
    from sessions_app import tasks

    eager_celery.conf.task_eager_propagates = False  # an eager retry re-runs inline and reports RETRY
    from sessions_app.providers import rules as rules_provider
    from sessions_app.providers.base import ProviderError

    monkeypatch.setattr(tasks, "_backoff", lambda retries, retry_after: 0)
    original = rules_provider.RulesProvider.run
    failures = {"n": 0}

    def rate_limited(self, request, on_delta):
        if request.specialist_slug == "devops-specialist" and failures["n"] < 2:
            failures["n"] += 1
            raise ProviderError("Rate limited (HTTP 429).", transient=True, retry_after=0)
        return original(self, request, on_delta)

    monkeypatch.setattr(rules_provider.RulesProvider, "run", rate_limited)
    session = fresh(start(run_engine, demo, nsi))
    devops = session.contributions.filter(specialist_slug="devops-specialist").order_by("round__number").first()
    assert devops.status == "done" and devops.tries == 3
    assert session.phase == "design"


def test_consensus_becomes_proposed_decisions_accepted_by_the_design_gate(run_engine, demo, nsi, po):
    from sessions_app.decisions.models import Decision

    session = fresh(start(run_engine, demo, nsi))
    agreed = list(session.key_questions.filter(state="agreed"))
    decisions = list(Decision.objects.filter(session=session).order_by("number"))
    assert len(decisions) == len(agreed) > 0
    assert all(d.status == "proposed" and d.key_question in agreed for d in decisions)
    first = decisions[0]
    assert first.provenance.count() >= 1  # the specialists' contributions it cites
    response = run_engine(
        validation_respond, point=session.validation_points.get(gate=DESIGN_GATE), user=po, verdict="approve"
    )
    for d in Decision.objects.filter(session=session):
        assert d.status == "accepted"
        assert d.decision_makers == ["petra"]
        change = d.status_changes.order_by("at").last()
        assert change.to_status == "accepted" and change.via == response and change.actor == po


def test_the_final_report_says_the_session_is_completed(run_engine, demo, nsi, po):
    session = fresh(start(run_engine, demo, nsi))
    run_engine(validation_respond, point=session.validation_points.get(gate=DESIGN_GATE), user=po, verdict="approve")
    run_engine(validation_respond, point=session.validation_points.get(gate=VALIDATION_GATE), user=po, verdict="approve")
    report = fresh(session).report
    assert "**Status**: Completed" in report
    assert "Awaiting: nothing: the design is complete" in report


def test_the_first_round_of_specialists_reads_nothing_from_before_it(run_engine, demo, nsi):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sessions_app.engine.runner import round_basis

    session = fresh(start(run_engine, demo, nsi))
    analysis = session.contributions.filter(round__kind="analysis", author="specialist").first()
    design = session.contributions.filter(round__kind="design", author="specialist").first()

    with CaptureQueriesContext(connection) as first:
        basis = round_basis(analysis)
        text = basis.ctx.as_text(focus=[], round=analysis.round)
    with CaptureQueriesContext(connection) as later:
        after = round_basis(design)
        later_text = after.ctx.as_text(focus=[], round=design.round)

    assert analysis.round.opens_the_work and not design.round.opens_the_work
    assert basis.reported == [] and "PREVIOUS SYNTHESIS" not in text
    assert not any("sessions_app_synthesis" in q["sql"] for q in first.captured_queries)  # none can exist yet
    assert after.reported and "PREVIOUS SYNTHESIS (round 2)" in later_text  # the analysis round's rules and synthesis
    assert any("sessions_app_synthesis" in q["sql"] for q in later.captured_queries)
