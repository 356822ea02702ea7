"""Decisions written by hand: create, edit (draft and proposed only), change the status of,
supersede and link. An accepted decision is superseded or deprecated, never rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from sessions_app.decisions.models import Decision, DecisionLink
from sessions_app.decisions.services.records import (
    apply_fields,
    full_clean_decision,
    lock_project,
    new_decision,
    record_status,
    replace_options,
    user_label,
)
from sessions_app.models import ValidationResponse
from teams_app.errors import ApplicationError
from teams_app.models import Project

D = Decision.Status

ACCEPTED_IS_FINAL = "An accepted decision is not rewritten: supersede it instead."
CLOSED_IS_FINAL = "A {status} decision is part of the record and cannot be edited."
BAD_TRANSITION = "A {from_label} decision cannot become {to_label}."
UNCHANGED_STATUS = "The decision is already {label}."
BAD_INITIAL_STATUS = "A new decision starts as a draft or proposed (or accepted when it supersedes another)."
NOT_SUPERSEDABLE = "Only an accepted (or already superseded) decision can be superseded."
OTHER_PROJECT = "Both decisions must belong to the same project."
LINK_SELF = "A decision cannot link to itself."
BAD_LINK_KIND = "Links are supersedes, amends or relates."

# Allowed transitions. Superseding goes through decision_supersede, which links the successor.
TRANSITIONS: dict[str, frozenset[str]] = {
    D.DRAFT: frozenset({D.PROPOSED}),
    D.PROPOSED: frozenset({D.ACCEPTED, D.REJECTED}),
    D.ACCEPTED: frozenset({D.DEPRECATED, D.SUPERSEDED}),
    D.REJECTED: frozenset(),
    D.DEPRECATED: frozenset(),
    D.SUPERSEDED: frozenset(),
}


@transaction.atomic
def decision_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    status: str = D.DRAFT,
    options: Sequence[dict[str, Any]] | None = None,
    **fields: Any,
) -> Decision:
    """A decision written by hand, numbered next in its project. ``fields`` are the MADR content
    fields (``CONTENT_FIELDS``); ``options`` are dicts with title, description, good, neutral, bad."""
    if status not in (D.DRAFT, D.PROPOSED):
        raise ApplicationError(BAD_INITIAL_STATUS, {"field": "status"})
    project = lock_project(project)
    return new_decision(project=project, user=user, status=status, options=options, fields=fields)


def _require_editable(decision: Decision) -> None:
    if decision.status == D.ACCEPTED:
        raise ApplicationError(ACCEPTED_IS_FINAL)
    if not decision.is_editable:
        raise ApplicationError(CLOSED_IS_FINAL.format(status=decision.get_status_display().lower()))


def _lock(decision: Decision) -> Decision:
    return Decision.objects.select_for_update(of=("self",)).select_related("project").get(pk=decision.pk)


@transaction.atomic
def decision_update(
    *,
    decision: Decision,
    user: AbstractBaseUser | None,
    options: Sequence[dict[str, Any]] | None = None,
    **fields: Any,
) -> Decision:
    """Edit a draft or proposed decision. Refused once accepted (supersede it instead) or closed."""
    decision = _lock(decision)
    _require_editable(decision)
    apply_fields(decision, fields)
    if "date" not in fields:
        decision.date = timezone.localdate()
    full_clean_decision(decision)
    decision.save()
    if options is not None:
        replace_options(decision, options)
    return decision


@transaction.atomic
def decision_set_status(
    *,
    decision: Decision,
    to_status: str,
    actor: AbstractBaseUser | None,
    via: ValidationResponse | None = None,
    note: str = "",
    actor_label: str = "",
) -> Decision:
    """Move a decision along draft → proposed → accepted / rejected, accepted → deprecated /
    superseded, writing a StatusChange. Accepting by hand names the actor a decision maker."""
    decision = _lock(decision)
    if to_status not in D.values:
        raise ApplicationError(
            BAD_TRANSITION.format(from_label=decision.get_status_display().lower(), to_label=to_status)
        )
    if decision.status == to_status:
        raise ApplicationError(UNCHANGED_STATUS.format(label=decision.get_status_display().lower()))
    if to_status not in TRANSITIONS[decision.status]:
        raise ApplicationError(
            BAD_TRANSITION.format(
                from_label=decision.get_status_display().lower(), to_label=D(to_status).label.lower()
            ),
            {"allowed": sorted(TRANSITIONS[decision.status])},
        )
    from_status = decision.status
    decision.status = to_status
    decision.status_label = ""  # an imported file's own wording described the old status
    decision.date = timezone.localdate()
    update = ["status", "status_label", "date", "updated_at"]
    if to_status == D.ACCEPTED and actor is not None:
        name = user_label(actor)
        if name not in decision.decision_makers:
            decision.decision_makers = [*decision.decision_makers, name]
            update.append("decision_makers")
    decision.save(update_fields=update)
    record_status(
        decision, from_status=from_status, to_status=to_status, actor=actor, actor_label=actor_label, via=via, note=note
    )
    return decision


@transaction.atomic
def decision_link(
    *,
    from_decision: Decision,
    to_decision: Decision,
    kind: str,
    user: AbstractBaseUser | None = None,
) -> DecisionLink:
    """``from_decision`` supersedes / amends / relates to ``to_decision``; idempotent. Links do
    not change statuses: superseding with a status change is :func:`decision_supersede`."""
    if kind not in DecisionLink.Kind.values:
        raise ApplicationError(BAD_LINK_KIND, {"field": "kind"})
    if from_decision.project_id != to_decision.project_id:
        raise ApplicationError(OTHER_PROJECT)
    if from_decision.pk == to_decision.pk:
        raise ApplicationError(LINK_SELF)
    link, _ = DecisionLink.objects.get_or_create(
        from_decision=from_decision, to_decision=to_decision, kind=kind, defaults={"created_by": user}
    )
    return link


@transaction.atomic
def decision_supersede(
    *,
    old: Decision,
    user: AbstractBaseUser | None,
    status: str = D.PROPOSED,
    options: Sequence[dict[str, Any]] | None = None,
    note: str = "",
    **fields: Any,
) -> Decision:
    """Create the successor of ``old``, link it (successor supersedes old) and mark ``old``
    superseded with a StatusChange. A decision may be superseded several times (split in two, for
    instance): an already superseded one gets another successor without a second status change."""
    project = lock_project(old.project)
    old = _lock(old)
    if old.status not in (D.ACCEPTED, D.SUPERSEDED):
        raise ApplicationError(NOT_SUPERSEDABLE)
    if status not in (D.DRAFT, D.PROPOSED, D.ACCEPTED):
        raise ApplicationError(BAD_INITIAL_STATUS, {"field": "status"})
    new = new_decision(
        project=project,
        user=user,
        status=status,
        options=options,
        fields=fields,
        note=f"Created to supersede {old.adr_id}",
    )
    if status == D.ACCEPTED and user is not None and not new.decision_makers:
        new.decision_makers = [user_label(user)]
        new.save(update_fields=["decision_makers"])
    DecisionLink.objects.create(from_decision=new, to_decision=old, kind=DecisionLink.Kind.SUPERSEDES, created_by=user)
    if old.status != D.SUPERSEDED:
        from_status = old.status
        old.status = D.SUPERSEDED
        old.status_label = ""
        old.save(update_fields=["status", "status_label", "updated_at"])
        record_status(
            old,
            from_status=from_status,
            to_status=D.SUPERSEDED,
            actor=user,
            note=note or f"Superseded by {new.adr_id}",
        )
    return new
