"""Validation points (§7) as the engine opens and closes them at its gates.

A point opens with its session's policy: a quorum of the project's product owners, or named
approvers; an optional deadline whose expiry the dispatcher schedules. The people who may
answer it are emailed after commit. Answering a point is ``sessions_app.validation``'s job.
Precondition everywhere: the session row is locked (``state.session_lock``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from sessions_app import events
from sessions_app.diagrams.services import diagram_current_version
from sessions_app.engine.dispatch import dispatcher
from sessions_app.models import DesignSession, Round, Synthesis, ValidationPoint
from teams_app.links import absolute_url
from teams_app.models import Membership

logger = logging.getLogger("maestro.audit")


def product_owners(session: DesignSession):
    return [m.user for m in session.project.memberships.select_related("user").filter(role=Membership.Role.PRODUCT_OWNER)]


def validation_open(
    session: DesignSession, *, gate: str, kind: str, title: str, body: str, questions: list[str], round: Round | None = None
) -> ValidationPoint:
    """Open a point with the session's policy. Precondition: session row locked.
    The email to the people who may answer and the expiry check are sent on commit."""
    synthesis = Synthesis.objects.filter(session=session).order_by("-round__number").first()
    deadline = None
    if session.validation_deadline_hours:
        deadline = timezone.now() + timedelta(hours=session.validation_deadline_hours)
    owners = product_owners(session)
    quorum = session.approval_quorum
    if owners and kind == ValidationPoint.Kind.APPROVAL:
        quorum = max(1, min(quorum, len(owners)))  # a quorum larger than the team could never close
    point = ValidationPoint.objects.create(
        session=session, round=round, gate=gate, kind=kind, title=title, body=body, questions=questions,
        synthesis=synthesis, diagram_version=diagram_current_version(project=session.project),
        quorum=quorum if kind == ValidationPoint.Kind.APPROVAL else 1, deadline=deadline,
        expiry_action=session.expiry_action,
    )
    named = list(session.approvers.all())
    if named:
        point.approvers.set(named)
    events.event_emit(session_id=session.pk, event=events.ValidationOpened(point_id=point.pk))
    recipients = sorted({u.email for u in (named or owners) if u.email})
    transaction.on_commit(lambda: _notify(point.pk, recipients))
    if deadline is not None:
        dispatcher().validation_expiry(point.pk, deadline)
    return point


def _notify(point_id: int, recipients: list[str]) -> None:
    if not recipients:
        return
    point = ValidationPoint.objects.select_related("session__project").get(pk=point_id)
    url = absolute_url(reverse("session_detail", kwargs={"pk": point.session_id}) + f"#point-{point.pk}")
    deadline = f"\nPlease answer by {point.deadline:%Y-%m-%d %H:%M %Z}." if point.deadline else ""
    try:
        send_mail(
            subject=f"[Maestro] Waiting for you: {point.title}",
            message=(
                f"{point.session.project.name} · {point.session.title}\n\n{point.title}\n\n"
                f"Open it here: {url}{deadline}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    except Exception:  # a mail outage must not break the session; the dashboard still lists the point
        logger.warning("could not email validation point %s", point_id, exc_info=True)


def close_open_points(session: DesignSession, *, gate: str | None = None) -> None:
    """Cancel the session's open points, or only those of ``gate``: a gate that opens again
    replaces its point, and a session that ends (completed or cancelled) closes the points still
    open, such as the optional business-requirements input, so nobody's waiting list keeps them."""
    points = session.validation_points.filter(state=ValidationPoint.State.OPEN)
    if gate is not None:
        points = points.filter(gate=gate)
    for point in points:
        point.state, point.closed_at = ValidationPoint.State.CANCELLED, timezone.now()
        point.save(update_fields=["state", "closed_at"])
        events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))
