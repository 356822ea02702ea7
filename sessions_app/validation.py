"""Validation points (§7) answered by product owners; the engine opens them at its gates
(``sessions_app.engine.points``).

Policy per point, copied from its session when it opens: a quorum of the project's product
owners, or named approvers (all of whom must approve); an optional deadline with a visible
expiry action. A request for changes or a rejection closes the point at once; approvals close
it when the quorum is reached, and the engine's gate moves the session on. Responses are
immutable and record what the person saw.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.engine import gates, state
from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.engine.context import SessionContext
from sessions_app.models import DesignProposal, DesignSession, ValidationPoint, ValidationResponse
from teams_app.errors import ApplicationError
from teams_app.models import Membership

logger = logging.getLogger("maestro.audit")
S = DesignSession.Status
V = ValidationResponse.Verdict
P = ValidationPoint.State

POINT_CLOSED = "This validation point is closed."
ALREADY_ANSWERED = "You have already answered this validation point."
BAD_VERDICT = "Choose approve, request changes or reject."
COMMENT_NEEDED = "Say what should change: a comment is required when you request changes or reject."
ANSWER_NEEDED = "Answer at least one question."
NOT_ELIGIBLE = "Only the product owners or the named approvers of this point may answer it."
UNKNOWN_PROPOSAL = "This session has no proposal version {version}: reload the page to see the current one."

VERDICT_STATE = {V.APPROVE: P.APPROVED, V.REQUEST_CHANGES: P.CHANGES_REQUESTED, V.REJECT: P.REJECTED, V.ANSWER: P.ANSWERED}


def validation_eligible(*, point: ValidationPoint, user: AbstractBaseUser) -> bool:
    if not user.is_authenticated:
        return False
    named = list(point.approvers.values_list("pk", flat=True))
    if named:
        return user.pk in named
    return point.session.project.memberships.filter(user=user, role=Membership.Role.PRODUCT_OWNER).exists()


def required_approvals(point: ValidationPoint) -> int:
    named = point.approvers.count()
    return named if named else max(1, point.quorum)


def _proposal_seen(session: DesignSession, version: int | None) -> DesignProposal | None:
    """The version the person saw (the form sends it); without one, the latest."""
    proposals = DesignProposal.objects.filter(session=session)
    if version is None:
        return proposals.order_by("-version").first()
    seen = proposals.filter(version=version).first()
    if seen is None:
        raise ApplicationError(UNKNOWN_PROPOSAL.format(version=version), {"field": "proposal_seen"})
    return seen


@transaction.atomic
def validation_respond(
    *, point: ValidationPoint, user: AbstractBaseUser, verdict: str, comment: str = "", answers: dict | None = None,
    proposal_seen: int | None = None,
) -> ValidationResponse:
    """Record one immutable response and, when it decides the point, close it and move the engine.

    The session row is locked first, then the point: concurrent answers serialise; exactly one
    of them closes the point and makes the phase transition, later ones see it closed."""
    session = state.session_lock(point.session_id)
    point = ValidationPoint.objects.select_for_update().get(pk=point.pk)
    if not validation_eligible(point=point, user=user):
        logger.warning("refused validation answer: user=%s point=%s", getattr(user, "pk", None), point.pk)
        raise PermissionDenied(NOT_ELIGIBLE)
    if point.state != P.OPEN or session.status in (S.COMPLETED, S.CANCELLED):
        raise ApplicationError(POINT_CLOSED)
    if point.kind == ValidationPoint.Kind.INPUT:
        verdict = V.ANSWER
    elif verdict not in (V.APPROVE, V.REQUEST_CHANGES, V.REJECT):
        raise ApplicationError(BAD_VERDICT, {"field": "verdict"})
    comment = (comment or "").strip()
    answers = {str(k)[:200]: str(v).strip()[:5000] for k, v in (answers or {}).items() if str(v).strip()}
    if verdict in (V.REQUEST_CHANGES, V.REJECT) and not comment:
        raise ApplicationError(COMMENT_NEEDED, {"field": "comment"})
    if verdict == V.ANSWER and not (comment or answers):
        raise ApplicationError(ANSWER_NEEDED, {"field": "comment"})
    if verdict == V.APPROVE and point.gate == DESIGN_GATE:
        unmet = gates.unmet_gate_items(session, SessionContext.load(session))
        if unmet:
            raise ApplicationError(gates.UNMET_GATE.format(items=", ".join(unmet).lower()))
    if point.responses.filter(user=user).exists():
        raise ApplicationError(ALREADY_ANSWERED)
    seen = _proposal_seen(session, proposal_seen)
    response = ValidationResponse.objects.create(
        point=point, user=user, verdict=verdict, comment=comment, answers=answers,
        synthesis_seen=point.synthesis, diagram_version_seen=point.diagram_version, proposal_seen=seen,
    )
    events.event_emit(session_id=session.pk, event=events.ValidationAnswered(point_id=point.pk, response_id=response.pk))
    if verdict == V.APPROVE and point.responses.filter(verdict=V.APPROVE).count() < required_approvals(point):
        return response  # waiting for more approvals
    point.state, point.closed_at = VERDICT_STATE[verdict], timezone.now()
    point.save(update_fields=["state", "closed_at"])
    events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))
    feedback = "\n".join([comment, *(f"{q} {a}" for q, a in answers.items())]).strip()
    gates.gate_passed(session, point, verdict, feedback, user, response=response)
    return response


@transaction.atomic
def validation_expire(*, point_id: int) -> bool:
    """Apply the point's expiry action once its deadline has passed. Idempotent."""
    point = ValidationPoint.objects.filter(pk=point_id).first()
    if point is None:
        return False
    session = state.session_lock(point.session_id)
    point = ValidationPoint.objects.select_for_update().get(pk=point_id)
    if point.state != P.OPEN or point.deadline is None or point.deadline > timezone.now():
        return False
    if point.expiry_action != DesignSession.ExpiryAction.PAUSE:
        return False  # it stays open; pages show it as overdue
    point.state, point.closed_at = P.EXPIRED, timezone.now()
    point.save(update_fields=["state", "closed_at"])
    events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))
    if session.status in (S.RUNNING, S.AWAITING_USER):
        state.status_set(session, S.PAUSED, f"“{point.title}” expired without enough answers. Resume to ask again.")
    return True
