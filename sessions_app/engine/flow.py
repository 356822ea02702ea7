"""The Maestro's state machine: how a session begins and where it goes after each round.

Phases run Team Assembly → Pattern Discovery → Integration Design (with bounded discussion of
disputed key questions) → the design gate → Implementation Planning → Integration Validation
→ the validation gate. Plain Python over the ORM: every step records the events it causes and
hands specialist calls to the dispatcher, so the same code runs inline in tests (eager Celery)
and asynchronously in workers. Precondition everywhere: the session row is locked.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.design import services as design
from sessions_app.design.brief import brief_build, brief_text
from sessions_app.engine import messages
from sessions_app.engine.checklist import DISCOVERY_INPUT
from sessions_app.engine.consensus import key_questions_create, questions_note
from sessions_app.engine.context import SessionContext
from sessions_app.engine.gates import open_design_gate, open_validation_gate, session_complete
from sessions_app.engine.points import validation_open
from sessions_app.engine.rounds import open_round, round_number_next
from sessions_app.engine.state import attempts_latest, phase_set, session_lock, status_set
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Phase, Round, ValidationPoint

S = DesignSession.Status

PRD_QUESTION = "What PRD id/link should we attach?"


def begin(session: DesignSession) -> None:
    """Phase 1, Team Assembly: the Maestro's assembly message, then Pattern Discovery.

    Precondition: the session row is locked and has a PRD."""
    ctx = SessionContext.load(session)
    status_set(session, S.RUNNING)
    brief = brief_build(
        requirement=session.requirement, prd_reference=session.prd.reference, prd_title=session.prd.title,
        prd_body=session.prd.body or "", project_constraints=session.project.constraints, cluster=ctx.cluster,
    )
    design.brief_record(session=session, brief=brief)
    assembly = Round.objects.create(
        session=session, number=round_number_next(session), phase=Phase.ASSEMBLY, kind=Round.Kind.ASSEMBLY,
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
        brief=brief_text(brief),
    )
    assembly.brief = text
    assembly.save(update_fields=["brief"])
    maestro = Contribution.objects.create(
        session=session, round=assembly, author=Contribution.Author.MAESTRO, author_name="Maestro",
        text=text, status=Contribution.Status.DONE, provider="maestro", finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.ContributionFinished(contribution_id=maestro.pk, round_id=assembly.pk))
    phase_set(session, Phase.DISCOVERY)
    if any(m.get("is_user") for m in session.team):
        validation_open(
            session,
            gate=DISCOVERY_INPUT,
            kind=ValidationPoint.Kind.INPUT,
            title="Business requirements for the team",
            body=(
                f"USER, what business capability do we need?\n\nRequirement as stated: {session.requirement.strip()}\n\n"
                "Tell the team what must be true for this to solve your need: capabilities, expected load, latency, "
                "and anything the requirement leaves out. Your answer joins the next briefs."
                + ("\n\nThe brief leaves these open:\n" + "\n".join(f"- {q}" for q in brief.questions) if brief.questions else "")
            ),
            questions=[*brief.questions, "Which business capabilities must this provide?", "Performance or scaling expectations?"][:8],
            round=assembly,
        )
    open_round(session, kind=Round.Kind.ANALYSIS, ctx=ctx)


def after_round(*, round_id: int) -> None:
    """The session's next step after a round's synthesis was written, taken once: the round's
    ``advance_due`` mark is cleared under the session lock, so a delivery sent again (the sweeper,
    after a crash between the synthesis and this step) does nothing more. Takes the lock itself
    (unlike the rest of this module)."""
    with transaction.atomic():
        session = session_lock(Round.objects.values_list("session_id", flat=True).get(pk=round_id))
        with events.events_gathered(session.pk):  # the step's events (phase, questions, the next round) go in together
            _after_round_locked(session, round_id)


def _after_round_locked(session: DesignSession, round_id: int) -> None:
    if not Round.objects.filter(pk=round_id, status=Round.Status.DONE, advance_due=True).update(advance_due=False):
        return
    rnd = Round.objects.get(pk=round_id)
    if session.status in (S.CANCELLED, S.COMPLETED):
        return
    ctx = SessionContext.load(session)
    if session.mode == DesignSession.Mode.TASK:
        session_complete(session, ctx)  # a hub task is one specialist's answer; a failure is in its report
        return
    failed = [c for c in attempts_latest(rnd) if c.status == Contribution.Status.FAILED]
    if failed:
        names = ", ".join(c.author_name for c in failed)
        status_set(session, S.AWAITING_USER, f"{names} could not contribute. Re-run them, or continue without them.")
        return
    if session.status == S.PAUSED:
        return  # resuming takes the next step
    advance(session, ctx=ctx, after=rnd)


def advance(session: DesignSession, *, ctx: SessionContext, after: Round | None = None) -> None:
    """Move the session forward from wherever it stands. Precondition: session row locked."""
    if session.phase == Phase.DISCOVERY:
        phase_set(session, Phase.DESIGN)
        key_questions_create(session, ctx)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note=questions_note(session))
        return
    if session.phase == Phase.DESIGN and after is not None and after.kind == Round.Kind.FOLLOW_UP:
        _escalate_or_gate(session, ctx, discuss=False)
        return
    if session.phase == Phase.DESIGN:
        _escalate_or_gate(session, ctx, discuss=True)
        return
    if session.phase == Phase.PLANNING:
        phase_set(session, Phase.VALIDATION)
        open_round(session, kind=Round.Kind.VALIDATION, ctx=ctx, note=f"Proposal v{ctx.proposal.version if ctx.proposal else 0} and the plan of {len(session.plan)} tasks")
        return
    if session.phase == Phase.VALIDATION and after is not None and after.kind in (Round.Kind.FOLLOW_UP, Round.Kind.VALIDATION):
        open_validation_gate(session, ctx)


def _escalate_or_gate(session: DesignSession, ctx: SessionContext, *, discuss: bool) -> None:
    """Disputed questions get bounded discussion rounds, then go to the user; otherwise the
    design waits at its gate (open questions are listed there for the user to decide)."""
    conflicts = list(session.key_questions.filter(state=KeyQuestion.State.CONFLICT))
    discussable = [q for q in conflicts if discuss and q.discussion_rounds < session.discussion_limit]
    if discussable:
        for q in discussable:
            q.discussion_rounds += 1
            q.save(update_fields=["discussion_rounds"])
        open_round(session, kind=Round.Kind.DISCUSSION, ctx=ctx, note=questions_note(session, only=discussable))
        return
    if conflicts:
        refs = ", ".join(q.ref for q in conflicts)
        what = "it" if len(conflicts) == 1 else "them"
        status_set(session, S.AWAITING_USER, f"The team could not agree on {refs}. Decide {what} to continue.")
        return
    open_design_gate(session, ctx)
