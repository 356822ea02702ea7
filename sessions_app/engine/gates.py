"""The human gates: validation points at the design and integration gates, what a closed
point does to the session, follow-up rounds for feedback, and the session's completion.
(What the design gate requires, its checklist and the anti-pattern checks, is ``engine.checklist``.)

Precondition everywhere: the session row is locked (``state.session_lock``).
"""

from __future__ import annotations

from django.utils import timezone

from sessions_app.decisions.services.hooks import decisions_accept_from_validation
from sessions_app.design import services as design
from sessions_app.design.drafts import feedback_drafts, route_by_design
from sessions_app.design.proposal import diff_is_empty, proposal_diff, proposal_lines
from sessions_app.engine import messages
from sessions_app.engine.checklist import DESIGN_GATE, DISCOVERY_INPUT, GATE_ITEMS, VALIDATION_GATE, gate_state
from sessions_app.engine.consensus import key_decisions
from sessions_app.engine.context import SessionContext
from sessions_app.engine.points import close_open_points, validation_open
from sessions_app.engine.rounds import open_round, user_message_record
from sessions_app.engine.state import gate_refresh, phase_set, specialist_members, status_set
from sessions_app.models import DesignSession, KeyQuestion, Phase, Round, Synthesis, ValidationPoint
from sessions_app.reports import final_report
from teams_app.router import route_feedback

S = DesignSession.Status

MAX_FOLLOW_UP_SPECIALISTS = 3

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

UNMET_GATE = "The design cannot be approved yet: {items}. Request changes so the team can close these gaps."


def _seen_version(session: DesignSession) -> int:
    """The proposal version shown at the latest closed approval point (what a person last saw)."""
    point = (
        session.validation_points.filter(kind=ValidationPoint.Kind.APPROVAL)
        .exclude(state__in=[ValidationPoint.State.OPEN, ValidationPoint.State.CANCELLED])
        .order_by("-opened_at").first()
    )
    if point is None:
        return 0
    return (
        session.proposals.filter(created_at__lte=point.opened_at).order_by("-version").values_list("version", flat=True).first() or 0
    )


def _validation_body(session: DesignSession, ctx: SessionContext, gate: str = DESIGN_GATE) -> str:
    proposal = ctx.proposal
    if proposal is not None and proposal.diagram_version is not None:
        diagram = proposal.diagram_version.ascii
    else:
        synthesis = Synthesis.objects.filter(session=session).order_by("-round__number").first()
        diagram = "\n".join(ctx.integration_plan()) or (synthesis.ascii if synthesis else "(no diagram)")
    sections: list[tuple[str, list[str]]] = []
    content = design.proposal_content(proposal)
    seen = _seen_version(session)
    if proposal is not None and seen and seen < proposal.version:
        old = design.proposal_content(session.proposals.filter(version=seen).first())
        diff = proposal_diff(old, content)
        if not diff_is_empty(diff):
            sections.append((
                f"What changed since v{seen}, the version you last saw (now v{proposal.version})",
                [f"+ {x}" for x in diff["added"]] + [f"~ {x}" for x in diff["changed"]] + [f"- {x}" for x in diff["removed"]],
            ))
    if gate == DESIGN_GATE:
        if proposal is not None:
            sections.append((f"Proposal v{proposal.version} ({proposal.reason})", proposal_lines(content)))
        undecided = session.key_questions.filter(state__in=[KeyQuestion.State.OPEN, KeyQuestion.State.CONFLICT])
        sections.append(("Open questions for you (decide them on the key questions panel)",
                         [f"{q.ref}: {q.text} Options: {' | '.join(q.options)}" for q in undecided]))
        brief = ctx.brief
        if brief is not None:
            sections.append(("Conflicts in the brief", [c.text for c in brief.conflicts]))
    else:
        sections.append((f"Implementation plan ({len(session.plan)} tasks)", [
            # "#n", not "n.": in a bullet, markdown would read "n." as a list of its own.
            f"#{p['order']} [{p['specialist'] or 'team'}] {p['service']}: {p['task']}"
            + (f" (after {', '.join(f'#{n}' for n in p['depends_on'])})" if p.get("depends_on") else "")
            for p in session.plan
        ]))
        sections.append(("Integration checklist", [f"[ ] {c['check']}" for c in session.checklist]))
        if proposal is not None:
            sections.append((f"Proposal v{proposal.version}", [f"{len(content.services)} services, {len(content.edges)} edges, {len(content.events)} events changed; risks: " + ("; ".join(content.risks) or "none")]))
    return messages.validation_message(feature=session.title, diagram=diagram, decisions=key_decisions(session), sections=sections)


def _open_approval_gate(session: DesignSession, ctx: SessionContext, gate: str) -> ValidationPoint:
    """Replace any open point of this gate with a fresh one (the User Validation Points
    template on the latest synthesis) and wait for the people who may answer it."""
    title, reason = APPROVAL_GATES[gate]
    close_open_points(session, gate=gate)
    point = validation_open(
        session, gate=gate, kind=ValidationPoint.Kind.APPROVAL, title=title,
        body=_validation_body(session, ctx, gate), questions=list(messages.VALIDATION_QUESTIONS),
        round=session.rounds.order_by("-number").first(),
    )
    status_set(session, S.AWAITING_USER, reason)
    return point


def open_design_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, DESIGN_GATE)


def open_validation_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, VALIDATION_GATE)


def gate_passed(
    session: DesignSession, point: ValidationPoint, verdict: str, feedback: str, user, *, response=None
) -> None:
    """The engine's gate API: a validation point closed with an outcome. Precondition: session locked."""
    ctx = SessionContext.load(session)
    if point.gate == DISCOVERY_INPUT:
        if feedback.strip():
            user_message_record(session, feedback, user)
        return
    if verdict == "approve":
        if point.gate == DESIGN_GATE:
            if response is not None:
                approvers = [r.user for r in point.responses.filter(verdict="approve").select_related("user")]
                decisions_accept_from_validation(point=point, response=response, approvers=approvers)
            gate_refresh(session, ctx)
            # The design is agreed: the optional input on its requirements can no longer shape it.
            close_open_points(session, gate=DISCOVERY_INPUT)
            phase_set(session, Phase.PLANNING)
            open_round(session, kind=Round.Kind.PLANNING, ctx=ctx, note=_decisions_note(session))
        elif point.gate == VALIDATION_GATE:
            session_complete(session, ctx)
        return
    if feedback.strip():
        user_message_record(session, feedback, user)
    if verdict == "reject":
        phase_set(session, Phase.DESIGN)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note="The user rejected the design: " + feedback.strip())
        return
    follow_up(session, ctx, feedback)


def _decisions_note(session: DesignSession) -> str:
    decisions = key_decisions(session)
    return "Design agreed:\n" + "\n".join(f"- {d}" for d in decisions) if decisions else "Design agreed."


def follow_up(session: DesignSession, ctx: SessionContext, feedback: str) -> Round | None:
    """A follow-up round for the USER's feedback, addressed to the specialists it concerns
    (the router, on the feedback and the parts of the proposal it names), at most three."""
    members = specialist_members(session)
    brief = ctx.brief
    addressed = route_by_design(feedback_drafts(brief, ctx.cluster, feedback), members) if brief else []
    if not addressed:
        content = design.proposal_content(ctx.proposal)
        words = [w for w in feedback.lower().split() if len(w) > 4]
        named = [line for line in proposal_lines(content) if any(w in line.lower() for w in words)]
        addressed = route_feedback(text=" ".join([feedback, *named[:6]]), candidates=members)
    return open_round(
        session, kind=Round.Kind.FOLLOW_UP, ctx=ctx, addressed_to=addressed[:MAX_FOLLOW_UP_SPECIALISTS],
        note="USER: " + feedback.strip(), feedback=feedback,
    )


def unmet_gate_items(session: DesignSession, ctx: SessionContext) -> list[str]:
    gate = gate_state(session, ctx)
    return [label for key, label in GATE_ITEMS if key != "user_requirements_confirmed" and not gate[key]]


def session_complete(session: DesignSession, ctx: SessionContext) -> None:
    close_open_points(session)
    phase_set(session, Phase.COMPLETED)
    status_set(session, S.COMPLETED)  # first, so the report and its continuation block say so
    session.completed_at = timezone.now()
    session.report = final_report(session, ctx)
    session.save(update_fields=["completed_at", "report", "updated_at"])
