"""The Maestro's state machine: phases, rounds, synthesis, key questions and gates.

Plain Python over the ORM. Every write is a ``@transaction.atomic`` service that records the
events it causes (``event_emit``) and enqueues specialist calls on commit, so the same code is
driven synchronously in tests (eager Celery) and asynchronously by workers.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.engine import messages
from sessions_app.engine.context import SessionContext
from sessions_app.engine.gate import DESIGN_GATE, DISCOVERY_INPUT, VALIDATION_GATE, gate_state
from sessions_app.engine.questions import key_questions
from sessions_app.models import (
    Contribution,
    DesignSession,
    KeyQuestion,
    Phase,
    Position,
    Round,
    Synthesis,
    ValidationPoint,
)

S = DesignSession.Status
PRD_QUESTION = "What PRD id/link should we attach?"

ROUND_MISSIONS = {
    Round.Kind.ANALYSIS: (
        "Analyze the existing cluster from your role's perspective and report the patterns you see",
        "The established patterns, the integration points the requirement touches, and the risks for your role",
    ),
    Round.Kind.DESIGN: (
        "Design the integration for the requirement and take a position on each key question",
        "Your proposed design for your role and one position line per key question",
    ),
    Round.Kind.DISCUSSION: (
        "The team disagrees on the key questions listed below; weigh the other positions and restate yours",
        "Your position on each disputed question, with the trade-off that decides it for you",
    ),
    Round.Kind.PLANNING: (
        "Plan your part of the implementation of the agreed design; coordinate before building",
        "The steps, contracts and configuration your role owns, in order, with their dependencies",
    ),
    Round.Kind.FOLLOW_UP: (
        "Address the user's feedback on the design",
        "A concrete change to the design that answers the feedback, and what it affects",
    ),
}


# -- helpers ---------------------------------------------------------------------------------


def _lock(session_id: int) -> DesignSession:
    return (
        DesignSession.objects.select_for_update(of=("self",))
        .select_related("project", "prd", "inventory_revision", "template")
        .get(pk=session_id)
    )


def _set_status(session: DesignSession, status: str, reason: str = "") -> None:
    if session.status == status and session.status_reason == reason:
        return
    session.status, session.status_reason = status, reason
    session.save(update_fields=["status", "status_reason", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.StatusChanged(status=status, reason=reason))


def _set_phase(session: DesignSession, phase: str) -> None:
    if session.phase == phase:
        return
    session.phase = phase
    session.save(update_fields=["phase", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.PhaseChanged(phase=phase))


def _specialist_members(session: DesignSession) -> list[dict]:
    return [m for m in session.team if not m.get("is_user")]


def _next_round_number(session: DesignSession) -> int:
    last = session.rounds.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def refresh_gate(session: DesignSession, ctx: SessionContext | None = None) -> dict[str, bool]:
    gate = gate_state(session, ctx or SessionContext.load(session))
    if gate != session.gate:
        session.gate = gate
        session.save(update_fields=["gate", "updated_at"])
        events.event_emit(session_id=session.pk, event=events.GateChanged(gate=gate))
    return gate


def budget_spent(session: DesignSession) -> bool:
    if session.budget_tokens is not None and session.tokens_in + session.tokens_out >= session.budget_tokens:
        return True
    return session.budget_cost is not None and session.cost >= session.budget_cost


# -- start -----------------------------------------------------------------------------------


def begin(session: DesignSession) -> None:
    """Phase 1, Team Assembly: the Maestro's assembly message, then Pattern Discovery.

    Precondition: the session row is locked and has a PRD."""
    ctx = SessionContext.load(session)
    _set_status(session, S.RUNNING)
    assembly = Round.objects.create(
        session=session, number=_next_round_number(session), phase=Phase.ASSEMBLY, kind=Round.Kind.ASSEMBLY,
        status=Round.Status.DONE, finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.RoundStarted(round_id=assembly.pk))
    members = [(m["name"], m["role"]) for m in session.team]
    text = messages.assembly_message(
        team_name=session.team_name,
        requirement=session.requirement,
        cluster_line=ctx.cluster_line(),
        constraints=session.project.constraints,
        members=members,
        prd_reference=session.prd.reference,
    )
    assembly.brief = text
    assembly.save(update_fields=["brief"])
    maestro = Contribution.objects.create(
        session=session, round=assembly, author=Contribution.Author.MAESTRO, author_name="Maestro",
        text=text, status=Contribution.Status.DONE, provider="maestro", finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.ContributionFinished(contribution_id=maestro.pk, round_id=assembly.pk))
    _set_phase(session, Phase.DISCOVERY)
    if any(m.get("is_user") for m in session.team):
        open_point(
            session,
            gate=DISCOVERY_INPUT,
            kind=ValidationPoint.Kind.INPUT,
            title="Business requirements for the team",
            body=(
                f"USER, what business capability do we need?\n\nRequirement as stated: {session.requirement.strip()}\n\n"
                "Tell the team what must be true for this to solve your need: capabilities, expected load, latency, "
                "and anything the requirement leaves out. Your answer joins the next briefs."
            ),
            questions=["Which business capabilities must this provide?", "Performance or scaling expectations?"],
            round=assembly,
        )
    open_round(session, kind=Round.Kind.ANALYSIS, ctx=ctx)


# -- rounds ----------------------------------------------------------------------------------


def open_round(
    session: DesignSession,
    *,
    kind: str,
    ctx: SessionContext | None = None,
    addressed_to: list[str] | None = None,
    note: str = "",
) -> Round | None:
    """Create a round with one pending contribution per addressed specialist and fan out on commit.

    Precondition: session row locked. Returns None if the budget is spent (the session then
    waits at a human gate)."""
    if budget_spent(session):
        _set_status(session, S.AWAITING_USER, "The session's budget is spent. Raise it to continue.")
        return None
    ctx = ctx or SessionContext.load(session)
    members = _specialist_members(session)
    if addressed_to:
        members = [m for m in members if m["specialist"] in addressed_to] or members
    mission, report = ROUND_MISSIONS[kind]
    if note:
        # On a line of its own: a multi-line note ("Design agreed:" and its list) must not end
        # the mission's first line, which the rule-based provider quotes as the scope.
        mission = f"{_sentence(mission)}\n{note}"
    rnd = Round.objects.create(
        session=session, number=_next_round_number(session), phase=session.phase, kind=kind,
        addressed_to=[m["specialist"] for m in members], status=Round.Status.RUNNING,
        brief=f"{_sentence(mission)}\nReport: {_sentence(report)}",
    )
    events.event_emit(session_id=session.pk, event=events.RoundStarted(round_id=rnd.pk))
    involved = ctx.involved_services
    created = []
    for member in members:
        brief = messages.deployment_brief(
            agent=member["name"],
            team_name=session.team_name,
            feature=session.title,
            mission=f"{_sentence(member['role'])} {mission}",
            cluster_state=ctx.cluster_line(),
            patterns=ctx.patterns_line(),
            integrate_with=involved,
            report=report,
        )
        created.append(_pending_contribution(session, rnd, member, brief, attempt=1))
    events.event_emit(session_id=session.pk, event=events.RoundProgress(round_id=rnd.pk, done=0, total=len(created)))
    _set_status(session, S.RUNNING)
    from sessions_app.tasks import enqueue_contributions

    enqueue_contributions([c.pk for c in created])
    return rnd


def _pending_contribution(session: DesignSession, rnd: Round, member: dict, brief: str, *, attempt: int) -> Contribution:
    return Contribution.objects.create(
        session=session, round=rnd, author=Contribution.Author.SPECIALIST,
        specialist_id=member.get("specialist_id"), specialist_slug=member["specialist"],
        author_name=member["name"], color=member.get("color", ""), brief=brief,
        status=Contribution.Status.PENDING, attempt=attempt,
        idempotency_key=f"round:{rnd.pk}:{member['specialist']}:attempt:{attempt}",
    )


def round_progress(rnd: Round) -> tuple[int, int]:
    latest = _latest_attempts(rnd)
    done = sum(1 for c in latest if c.status in (Contribution.Status.DONE, Contribution.Status.FAILED))
    return done, len(latest)


def _latest_attempts(rnd: Round) -> list[Contribution]:
    by_slug: dict[str, Contribution] = {}
    for c in rnd.contributions.filter(author=Contribution.Author.SPECIALIST).order_by("attempt", "id"):
        by_slug[c.specialist_slug] = c
    return list(by_slug.values())


def round_maybe_complete(rnd: Round) -> bool:
    """Called after a contribution settles. Exactly one caller wins the running→synthesizing
    transition (a conditional UPDATE), and that caller enqueues the synthesis on commit."""
    done, total = round_progress(rnd)
    events.event_emit(session_id=rnd.session_id, event=events.RoundProgress(round_id=rnd.pk, done=done, total=total))
    if done < total:
        return False
    won = Round.objects.filter(pk=rnd.pk, status=Round.Status.RUNNING).update(status=Round.Status.SYNTHESIZING)
    if won:
        from sessions_app.tasks import enqueue_synthesis

        enqueue_synthesis(rnd.pk)
    return bool(won)


# -- synthesis and advancing ------------------------------------------------------------------


@transaction.atomic
def round_synthesize(*, round_id: int) -> Synthesis | None:
    rnd = Round.objects.select_related("session").get(pk=round_id)
    session = _lock(rnd.session_id)
    rnd.refresh_from_db()
    if rnd.status != Round.Status.SYNTHESIZING:
        return None  # a duplicate delivery, or the round was re-opened
    ctx = SessionContext.load(session)
    latest = _latest_attempts(rnd)
    failed = [c for c in latest if c.status == Contribution.Status.FAILED]
    synthesis = _write_synthesis(session, rnd, ctx, latest)
    rnd.status = Round.Status.DONE
    rnd.finished_at = timezone.now()
    rnd.save(update_fields=["status", "finished_at"])
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION):
        _tally_positions(session, rnd)
    refresh_gate(session, ctx)
    if session.status in (S.CANCELLED, S.COMPLETED):
        return synthesis
    if session.mode == DesignSession.Mode.TASK:
        session_complete(session, ctx)  # a hub task is one specialist's answer; a failure is in its report
        return synthesis
    if failed:
        names = ", ".join(c.author_name for c in failed)
        _set_status(
            session, S.AWAITING_USER,
            f"{names} could not contribute. Re-run them, or continue without them.",
        )
        return synthesis
    if session.status == S.PAUSED:
        return synthesis
    advance(session, ctx=ctx, after=rnd)
    return synthesis


def _write_synthesis(session: DesignSession, rnd: Round, ctx: SessionContext, latest: list[Contribution]) -> Synthesis:
    from sessions_app.diagrams.ascii import render_ascii

    findings: list[tuple[str, str]] = []
    for c in latest:
        if c.status == Contribution.Status.FAILED:
            findings.append((c.author_name, f"no contribution ({c.error})"))
            continue
        summary = (c.payload or {}).get("summary") or _first_line(c.text)
        findings.append((c.author_name, summary))
    for user_msg in Contribution.objects.filter(round=rnd, author=Contribution.Author.USER).values_list("text", flat=True):
        findings.append(("USER", _first_line(user_msg)))
    checks = pattern_checks(ctx)
    requested = sorted({c.author_name for c in latest if c.status == Contribution.Status.FAILED})
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION):
        conflicted = KeyQuestion.objects.filter(session=session, state=KeyQuestion.State.CONFLICT).exists()
        if conflicted:
            requested.append("USER (key questions in conflict)")
    plan = ctx.integration_plan()
    ascii_state = render_ascii(
        ctx.inventory, focus=session.title, highlight_services=set(), timestamp=timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    ) if ctx.inventory.services else "(no inventory imported)"
    text = messages.synthesis_message(
        number=rnd.number, ascii_state=ascii_state, findings=findings, pattern_checks=checks,
        integration_plan=plan, requested_from=requested,
    )
    synthesis, _ = Synthesis.objects.update_or_create(
        round=rnd,
        defaults={
            "session": session, "text": text, "ascii": ascii_state, "pattern_checks": checks,
            "integration_plan": plan, "requested_from": requested,
        },
    )
    events.event_emit(session_id=session.pk, event=events.SynthesisReady(round_id=rnd.pk, synthesis_id=synthesis.pk))
    return synthesis


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip().lstrip("#").strip()
        if line and not line.lower().startswith(("to ", "as part of")):
            return line[:240]
    return "(empty)"


def pattern_checks(ctx: SessionContext) -> list[dict]:
    checks: list[dict] = []
    pattern_findings = [f for f in ctx.findings if f.role == "pattern"]
    for f in pattern_findings:
        if f.severity == "info":
            checks.append({"ok": True, "text": f.why})
    for f in pattern_findings:
        if f.severity != "info":
            checks.append({"ok": False, "text": f.why})
    if not checks and ctx.inventory.services:
        checks.append({"ok": True, "text": f"Patterns consistent: {ctx.patterns_line()}"})
    return checks


def advance(session: DesignSession, *, ctx: SessionContext, after: Round | None = None) -> None:
    """Move the session forward from wherever it stands. Precondition: session row locked."""
    if session.phase == Phase.DISCOVERY:
        _set_phase(session, Phase.DESIGN)
        _create_key_questions(session, ctx)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note=_questions_note(session))
        return
    if session.phase == Phase.DESIGN:
        conflicts = list(session.key_questions.filter(state=KeyQuestion.State.CONFLICT))
        discussable = [q for q in conflicts if q.discussion_rounds < session.discussion_limit]
        if discussable:
            for q in discussable:
                q.discussion_rounds += 1
                q.save(update_fields=["discussion_rounds"])
            open_round(session, kind=Round.Kind.DISCUSSION, ctx=ctx, note=_questions_note(session, only=discussable))
            return
        if conflicts:
            refs = ", ".join(q.ref for q in conflicts)
            _set_status(session, S.AWAITING_USER, f"The team could not agree on {refs}. Decide them to continue.")
            return
        open_design_gate(session, ctx)
        return
    if session.phase == Phase.PLANNING:
        _set_phase(session, Phase.VALIDATION)
        open_validation_gate(session, ctx)
        return
    if session.phase == Phase.VALIDATION and after is not None and after.kind == Round.Kind.FOLLOW_UP:
        open_validation_gate(session, ctx)


# -- key questions -----------------------------------------------------------------------------


def _create_key_questions(session: DesignSession, ctx: SessionContext) -> None:
    if session.key_questions.exists():
        return
    slug = session.template.slug if session.template else ""
    for spec in key_questions(ctx, template_slug=slug):
        q = KeyQuestion.objects.create(session=session, ref=spec.ref, text=spec.text, options=list(spec.options))
        events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=q.state))


def _questions_note(session: DesignSession, only: list[KeyQuestion] | None = None) -> str:
    questions = only if only is not None else list(session.key_questions.all())
    lines = [f"{q.ref}: {q.text} Options: " + " | ".join(q.options) for q in questions]
    return "Key decisions needed:\n" + "\n".join(lines)


def _tally_positions(session: DesignSession, rnd: Round) -> None:
    threshold = session.consensus_threshold
    for q in session.key_questions.exclude(state=KeyQuestion.State.DECIDED):
        votes = Counter(Position.objects.filter(question=q, round=rnd).values_list("option", flat=True))
        total = sum(votes.values())
        if not total:
            continue
        ranked = votes.most_common()
        top_option, top_count = ranked[0]
        tie = len(ranked) > 1 and ranked[1][1] == top_count
        agreement = top_count / total
        state = KeyQuestion.State.AGREED if agreement >= threshold and not tie else KeyQuestion.State.CONFLICT
        chosen = top_option if state == KeyQuestion.State.AGREED else ""
        if (q.state, q.chosen, round(q.agreement, 4)) != (state, chosen, round(agreement, 4)):
            q.state, q.chosen, q.agreement = state, chosen, agreement
            q.save(update_fields=["state", "chosen", "agreement"])
            events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=state))
            if state == KeyQuestion.State.AGREED:
                from sessions_app.decisions.services import decision_from_key_question

                decision_from_key_question(question=q)  # consensus becomes a proposed ADR


def key_decisions(session: DesignSession) -> list[str]:
    decisions = []
    for q in session.key_questions.all():
        if q.state in (KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED):
            how = "decided by the user" if q.state == KeyQuestion.State.DECIDED else f"consensus {q.agreement:.0%}"
            rationale = (
                Position.objects.filter(question=q, option=q.chosen).exclude(rationale="").values_list("rationale", flat=True).first()
            )
            decisions.append(f"{q.text} → {q.chosen} ({how}){': ' + rationale if rationale else ''}")
    return decisions


# -- gates -------------------------------------------------------------------------------------


def open_point(
    session: DesignSession, *, gate: str, kind: str, title: str, body: str, questions: list[str], round: Round | None = None
) -> ValidationPoint:
    from sessions_app.validation import validation_open

    return validation_open(session, gate=gate, kind=kind, title=title, body=body, questions=questions, round=round)


def _cancel_open_points(session: DesignSession, gate: str) -> None:
    for point in session.validation_points.filter(gate=gate, state=ValidationPoint.State.OPEN):
        point.state = ValidationPoint.State.CANCELLED
        point.closed_at = timezone.now()
        point.save(update_fields=["state", "closed_at"])
        events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))


def _validation_body(session: DesignSession, ctx: SessionContext) -> str:
    synthesis = Synthesis.objects.filter(session=session).order_by("-round__number").first()
    diagram = "\n".join(ctx.integration_plan()) or (synthesis.ascii if synthesis else "(no diagram)")
    return messages.validation_message(feature=session.title, diagram=diagram, decisions=key_decisions(session))


APPROVAL_GATES = {
    DESIGN_GATE: (
        "Design Before Development: confirm the design",
        "The design waits for your validation before implementation planning.",
    ),
    VALIDATION_GATE: (
        "Integration Validation: does the planned integration work for you?",
        "The implementation plan waits for your validation.",
    ),
}


def _open_approval_gate(session: DesignSession, ctx: SessionContext, gate: str) -> ValidationPoint:
    """Replace any open point of this gate with a fresh one (the User Validation Points
    template on the latest synthesis) and wait for the people who may answer it."""
    title, reason = APPROVAL_GATES[gate]
    _cancel_open_points(session, gate)
    point = open_point(
        session, gate=gate, kind=ValidationPoint.Kind.APPROVAL, title=title,
        body=_validation_body(session, ctx), questions=list(messages.VALIDATION_QUESTIONS),
        round=session.rounds.order_by("-number").first(),
    )
    _set_status(session, S.AWAITING_USER, reason)
    return point


def open_design_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, DESIGN_GATE)


def open_validation_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, VALIDATION_GATE)


UNMET_GATE = "The design cannot be approved yet: {items}. Request changes so the team can close these gaps."


def gate_passed(
    session: DesignSession, point: ValidationPoint, verdict: str, feedback: str, user, *, response=None
) -> None:
    """The engine's gate API: a validation point closed with an outcome. Precondition: session locked."""
    ctx = SessionContext.load(session)
    if point.gate == DISCOVERY_INPUT:
        if feedback.strip():
            _user_message(session, feedback, user)
        return
    if verdict == "approve":
        if point.gate == DESIGN_GATE:
            if response is not None:
                from sessions_app.decisions.services import decisions_accept_from_validation

                approvers = [r.user for r in point.responses.filter(verdict="approve").select_related("user")]
                decisions_accept_from_validation(point=point, response=response, approvers=approvers)
            refresh_gate(session, ctx)
            _set_phase(session, Phase.PLANNING)
            open_round(session, kind=Round.Kind.PLANNING, ctx=ctx, note=_decisions_note(session))
        elif point.gate == VALIDATION_GATE:
            session_complete(session, ctx)
        return
    if feedback.strip():
        _user_message(session, feedback, user)
    if verdict == "reject":
        _set_phase(session, Phase.DESIGN)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note="The user rejected the design: " + feedback.strip())
        return
    from teams_app.router import route_feedback

    addressed = route_feedback(text=feedback, candidates=_specialist_members(session))
    open_round(session, kind=Round.Kind.FOLLOW_UP, ctx=ctx, addressed_to=addressed, note="USER: " + feedback.strip())


def unmet_gate_items(session: DesignSession, ctx: SessionContext) -> list[str]:
    from sessions_app.engine.gate import GATE_ITEMS

    gate = gate_state(session, ctx)
    return [label for key, label in GATE_ITEMS if key != "user_requirements_confirmed" and not gate[key]]


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (roles and missions may bring their own)."""
    text = text.rstrip()
    return text if text.endswith((".", ":", "!", "?")) else f"{text}."


def _decisions_note(session: DesignSession) -> str:
    decisions = key_decisions(session)
    return "Design agreed:\n" + "\n".join(f"- {d}" for d in decisions) if decisions else "Design agreed."


def _user_message(session: DesignSession, text: str, user) -> Contribution:
    rnd = session.rounds.order_by("-number").first()
    contribution = Contribution.objects.create(
        session=session, round=rnd, author=Contribution.Author.USER, user=user,
        author_name=f"USER ({user.get_username()})" if user else "USER", text=text.strip(),
        status=Contribution.Status.DONE, finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.MessagePosted(contribution_id=contribution.pk, round_id=rnd.pk))
    return contribution


def close_open_points(session: DesignSession) -> None:
    """A session that ends (completed or cancelled) closes the points still open, such as the
    optional business-requirements input, so nobody's waiting list keeps them.
    Precondition: session row locked."""
    for point in session.validation_points.filter(state=ValidationPoint.State.OPEN):
        point.state, point.closed_at = ValidationPoint.State.CANCELLED, timezone.now()
        point.save(update_fields=["state", "closed_at"])
        events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))


def session_complete(session: DesignSession, ctx: SessionContext) -> None:
    from sessions_app.reports import final_report

    close_open_points(session)
    _set_phase(session, Phase.COMPLETED)
    _set_status(session, S.COMPLETED)  # first, so the report and its continuation block say so
    session.completed_at = timezone.now()
    session.report = final_report(session, ctx)
    session.save(update_fields=["completed_at", "report", "updated_at"])


def add_usage(session_id: int, *, tokens_in: int, tokens_out: int, cost: Decimal) -> None:
    from django.db.models import F

    DesignSession.objects.filter(pk=session_id).update(
        tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out, cost=F("cost") + cost
    )

