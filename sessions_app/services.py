"""Writes people make on sessions: start, PRD, steering, messages, decisions, validation."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from sessions_app import events
from sessions_app.decisions.services.hooks import decision_from_key_question
from sessions_app.engine import consensus, flow, gates, points, rounds, state
from sessions_app.engine.context import SessionContext
from sessions_app.engine.dispatch import dispatcher
from sessions_app.models import (
    CONTRIBUTION_WAITING,
    Contribution,
    DesignSession,
    KeyQuestion,
    Phase,
    Round,
    ValidationPoint,
)
from teams_app.errors import ApplicationError
from teams_app.models import PRD, Project, Specialist, TeamTemplate
from teams_app.selectors import inventory_latest, team_snapshot

S = DesignSession.Status
REQUIREMENT_EMPTY = "Describe the requirement the team should design for."
NOT_PAUSED_PRD = "This session is not waiting for a PRD."
SESSION_CLOSED = "This session has ended."
NOT_FAILED = "Only a failed specialist can be re-run."
NOT_LATEST_ROUND = "Only specialists of the latest round can be re-run."
MESSAGE_EMPTY = "Write a message first."
MESSAGE_TOO_LONG = "Messages are limited to 5,000 characters."
BAD_OPTION = "Choose one of the question's options."
QUESTION_NOT_IN_CONFLICT = "This question is already settled: only open or disputed questions wait for your decision."
NOT_PAUSED = "Only a paused session can be resumed."
CANNOT_PAUSE = "Only a running session or one waiting for you can be paused."
NOTHING_TO_CONTINUE = "The session is not waiting to continue."
BUDGET_INVALID = "The budget must be a positive number."


@transaction.atomic
def session_start(
    *,
    project: Project,
    template: TeamTemplate,
    requirement: str,
    user: AbstractBaseUser | None,
    title: str = "",
    prd: PRD | None = None,
    provider: str = "",
    budget_tokens: int | None = None,
    approval_quorum: int = 1,
    approvers: list | None = None,
    validation_deadline_hours: int | None = None,
    expiry_action: str = DesignSession.ExpiryAction.KEEP_OPEN,
) -> DesignSession:
    from django.conf import settings

    requirement = (requirement or "").strip()
    if not requirement:
        raise ApplicationError(REQUIREMENT_EMPTY, {"field": "requirement"})
    if prd is not None and prd.project_id != project.pk:
        raise ApplicationError("That PRD belongs to another project.", {"field": "prd"})
    session = DesignSession.objects.create(
        project=project, template=template, team_name=template.name, mission=template.mission,
        team=team_snapshot(source=template), title=(title or requirement.splitlines()[0])[:200], requirement=requirement,
        prd=prd, provider=provider, budget_tokens=budget_tokens, created_by=user,
        discussion_limit=settings.MAESTRO_DISCUSSION_ROUNDS, consensus_threshold=settings.MAESTRO_CONSENSUS_THRESHOLD,
        inventory_revision=inventory_latest(project=project), approval_quorum=max(1, approval_quorum or 1),
        validation_deadline_hours=validation_deadline_hours, expiry_action=expiry_action,
    )
    if approvers:
        outsiders = [u for u in approvers if not project.memberships.filter(user=u).exists()]
        if outsiders:
            raise ApplicationError("Named approvers must be members of the project.", {"field": "approvers"})
        session.approvers.set(approvers)
    session = state.session_lock(session.pk)
    if prd is None:
        state.status_set(session, S.PAUSED_PRD, flow.PRD_QUESTION)
        return session
    flow.begin(session)
    return session


@transaction.atomic
def task_session_start(
    *,
    project: Project,
    specialist: Specialist,
    summary: str,
    prd: PRD,
    details: str = "",
    user: AbstractBaseUser | None = None,
    title: str = "",
) -> DesignSession:
    """A one-specialist run (the hub's ``run_task`` and ``*_assist`` tools): the same rounds,
    Celery path, providers and live page as a design session, finished by its final report."""
    summary = (summary or "").strip()
    if not summary:
        raise ApplicationError(REQUIREMENT_EMPTY, {"field": "summary"})
    requirement = summary + (f"\n\n{details.strip()}" if details.strip() else "")
    session = DesignSession.objects.create(
        project=project, mode=DesignSession.Mode.TASK, team_name=f"{specialist.name} (hub task)",
        mission="Answer one task routed by the orchestrator hub", team=team_snapshot(source=specialist), title=(title or summary)[:200],
        requirement=requirement, prd=prd, created_by=user, phase="discovery",
        inventory_revision=inventory_latest(project=project),
    )
    session = state.session_lock(session.pk)
    state.status_set(session, S.RUNNING)
    rounds.open_round(session, kind="analysis")
    return session


@transaction.atomic
def session_attach_prd(*, session: DesignSession, prd: PRD) -> DesignSession:
    session = state.session_lock(session.pk)
    if session.status != S.PAUSED_PRD:
        raise ApplicationError(NOT_PAUSED_PRD)
    if prd.project_id != session.project_id:
        raise ApplicationError("That PRD belongs to another project.", {"field": "prd"})
    session.prd = prd
    session.save(update_fields=["prd", "updated_at"])
    flow.begin(session)
    return session


def _require_active(session: DesignSession) -> None:
    if session.status in (S.COMPLETED, S.CANCELLED):
        raise ApplicationError(SESSION_CLOSED)


@transaction.atomic
def session_pause(*, session: DesignSession) -> DesignSession:
    session = state.session_lock(session.pk)
    if session.status not in (S.RUNNING, S.AWAITING_USER):
        raise ApplicationError(CANNOT_PAUSE)
    state.status_set(session, S.PAUSED, "Paused by a team member.")
    return session


@transaction.atomic
def session_resume(*, session: DesignSession) -> DesignSession:
    session = state.session_lock(session.pk)
    if session.status != S.PAUSED:
        raise ApplicationError(NOT_PAUSED)
    _continue(session)
    return session


def _continue(session: DesignSession) -> None:
    """Pick up where the session stands: a running round continues by itself; a finished
    round advances; an open validation point keeps waiting for its answer."""
    latest = session.rounds.order_by("-number").first()
    if latest and latest.advance_due:  # the step after its synthesis is taken here, not again later
        Round.objects.filter(pk=latest.pk).update(advance_due=False)
    if latest and latest.status in (latest.Status.RUNNING, latest.Status.SYNTHESIZING):
        state.status_set(session, S.RUNNING)
        return
    if session.validation_points.filter(state=ValidationPoint.State.OPEN, kind=ValidationPoint.Kind.APPROVAL).exists():
        state.status_set(session, S.AWAITING_USER, "A validation point waits for your answer.")
        return
    conflicts = session.key_questions.filter(state=KeyQuestion.State.CONFLICT)
    if session.phase == "design" and conflicts.exists() and all(q.discussion_rounds >= session.discussion_limit for q in conflicts):
        state.status_set(session, S.AWAITING_USER, "Decide the key questions the team could not agree on.")
        return
    if state.budget_spent(session):
        state.status_set(session, S.AWAITING_USER, "The session's budget is spent. Raise it to continue.")
        return
    state.status_set(session, S.RUNNING)
    flow.advance(session, ctx=SessionContext.load(session), after=latest)


@transaction.atomic
def session_continue(*, session: DesignSession) -> DesignSession:
    """Go on after failed specialists or a spent budget, without re-running them."""
    session = state.session_lock(session.pk)
    if session.status != S.AWAITING_USER:
        raise ApplicationError(NOTHING_TO_CONTINUE)
    _continue(session)
    return session


@transaction.atomic
def session_set_budget(*, session: DesignSession, budget_tokens: int | None) -> DesignSession:
    session = state.session_lock(session.pk)
    _require_active(session)
    if budget_tokens is not None and budget_tokens <= 0:
        raise ApplicationError(BUDGET_INVALID, {"field": "budget_tokens"})
    session.budget_tokens = budget_tokens
    session.save(update_fields=["budget_tokens", "updated_at"])
    return session


@transaction.atomic
def session_cancel(*, session: DesignSession) -> DesignSession:
    session = state.session_lock(session.pk)
    _require_active(session)
    pending = list(  # the calls no worker has taken yet: they never start
        Contribution.objects.filter(CONTRIBUTION_WAITING, session=session).order_by("pk").values_list("pk", "round_id")
    )
    # One append and one message for the whole cancellation: pages get it as one burst.
    with events.events_gathered(session.pk):
        if pending:
            Contribution.objects.filter(pk__in=[pk for pk, _ in pending]).update(status=Contribution.Status.CANCELLED)
        events.events_emit(session_id=session.pk, events=[
            events.ContributionFailed(contribution_id=pk, round_id=round_id, error="Cancelled.") for pk, round_id in pending
        ])
        points.close_open_points(session)
        state.status_set(session, S.CANCELLED, "Cancelled by a team member.")
    return session


@transaction.atomic
def message_post(*, session: DesignSession, text: str, user: AbstractBaseUser) -> Contribution:
    session = state.session_lock(session.pk)
    _require_active(session)
    text = (text or "").strip()
    if not text:
        raise ApplicationError(MESSAGE_EMPTY, {"field": "text"})
    if len(text) > 5000:
        raise ApplicationError(MESSAGE_TOO_LONG, {"field": "text"})
    if not session.rounds.exists():
        raise ApplicationError("The session has not started yet: attach a PRD first.")
    contribution = rounds.user_message_record(session, text, user)
    waiting_at_gate = session.status == S.AWAITING_USER and session.validation_points.filter(
        state=ValidationPoint.State.OPEN, kind=ValidationPoint.Kind.APPROVAL
    ).exists()
    if waiting_at_gate and not session.rounds.filter(status__in=[Round.Status.RUNNING, Round.Status.SYNTHESIZING]).exists():
        # The design is waiting on people: the message is feedback, routed like a change request.
        gates.follow_up(session, SessionContext.load(session), text)
    return contribution


@transaction.atomic
def contribution_rerun(*, contribution: Contribution) -> Contribution:
    session = state.session_lock(contribution.session_id)
    _require_active(session)
    contribution = Contribution.objects.select_for_update().get(pk=contribution.pk)
    if contribution.status != Contribution.Status.FAILED or contribution.author != Contribution.Author.SPECIALIST:
        raise ApplicationError(NOT_FAILED)
    rnd = contribution.round
    if session.rounds.order_by("-number").first() != rnd:
        raise ApplicationError(NOT_LATEST_ROUND)
    member = next((m for m in session.team if m.get("specialist") == contribution.specialist_slug), None)
    if member is None:
        raise ApplicationError(NOT_FAILED)
    try:
        with transaction.atomic():
            fresh = rounds.contribution_pending(session, rnd, member, contribution.brief, attempt=contribution.attempt + 1)
    except IntegrityError:
        raise ApplicationError("This specialist is already being re-run.") from None
    rnd.status = rnd.Status.RUNNING
    rnd.save(update_fields=["status"])
    done, total = state.round_progress(rnd)
    events.event_emit(session_id=session.pk, event=events.RoundProgress(round_id=rnd.pk, done=done, total=total))
    state.status_set(session, S.RUNNING)
    dispatcher().contributions([fresh.pk])
    return fresh


@transaction.atomic
def key_question_decide(*, question: KeyQuestion, option: str, user: AbstractBaseUser) -> KeyQuestion:
    session = state.session_lock(question.session_id)
    _require_active(session)
    question = KeyQuestion.objects.select_for_update().get(pk=question.pk)
    if question.state not in (KeyQuestion.State.CONFLICT, KeyQuestion.State.OPEN):
        raise ApplicationError(QUESTION_NOT_IN_CONFLICT)
    if option not in question.options:
        raise ApplicationError(BAD_OPTION, {"field": "option"})
    question.state, question.chosen, question.decided_by = KeyQuestion.State.DECIDED, option, user
    question.save(update_fields=["state", "chosen", "decided_by"])
    events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=question.pk, state=question.state))
    decision_from_key_question(question=question)
    ctx = SessionContext.load(session)
    consensus.apply_decided_edges(session, ctx, user=user)
    if not session.key_questions.filter(state=KeyQuestion.State.CONFLICT).exists() and session.phase == Phase.DESIGN:
        if session.status == S.AWAITING_USER:
            gates.open_design_gate(session, ctx)
    return question
