"""What the session engine calls: :func:`decision_from_key_question` when a key question reaches
consensus or the user decides it, and :func:`decisions_accept_from_validation` when a design gate
is approved. Imports only models and :mod:`.records`, so the engine may import it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from sessions_app.decisions.models import Decision, DecisionProvenance
from sessions_app.decisions.services.records import (
    MAESTRO,
    clean_list,
    lock_project,
    new_decision,
    record_status,
    user_label,
)
from sessions_app.models import (
    DesignSession,
    KeyQuestion,
    Position,
    Round,
    ValidationPoint,
    ValidationResponse,
)
from teams_app.errors import ApplicationError
from teams_app.inventory.types import ROLE_LABELS

D = Decision.Status

QUESTION_UNSETTLED = "Only a key question with consensus or a user's decision becomes a decision."
NOT_AN_APPROVAL = "Only an approving response to this validation point accepts decisions."


def _latest_positions(question: KeyQuestion) -> tuple[list[Position], list[Position]]:
    """(every position on the question, each specialist's latest one in the order they spoke)."""
    positions = list(
        Position.objects.filter(question=question)
        .select_related("round", "contribution")
        .order_by("round__number", "id")
    )
    latest: dict[str, Position] = {}
    for p in positions:
        latest.pop(p.specialist_slug, None)
        latest[p.specialist_slug] = p
    return positions, list(latest.values())


def _position_point(p: Position) -> str:
    rationale = " ".join((p.rationale or "").split())
    # A rationale may name the role it argues from (the rule-based designer's do): the point
    # names its author once, in front.
    named, colon, rest = rationale.partition(": ")
    if colon and named in {p.author_name, *ROLE_LABELS.values()}:
        rationale = rest
    return f"{p.author_name}: {rationale}" if rationale else f"{p.author_name} favours it"


def _justification(question: KeyQuestion, latest: list[Position]) -> str:
    chosen = question.chosen
    backers = [p.author_name for p in latest if p.option == chosen]
    others = [p for p in latest if p.option != chosen]
    if question.state == KeyQuestion.State.DECIDED:
        who = user_label(question.decided_by) or "the user"
        head = f"{who} decided it after the team could not agree ({question.agreement:.0%} agreement)."
    else:
        head = f"the team reached consensus with {question.agreement:.0%} agreement."
    lines = [head]
    if backers:
        lines.append(f"In favour: {', '.join(backers)}.")
    for p in others:
        lines.append(f'{p.author_name} preferred "{p.option}".')
    return " ".join(lines)


@transaction.atomic
def decision_from_key_question(*, question: KeyQuestion) -> Decision:
    """The proposed decision for a key question with consensus or a user's decision; one per
    question (idempotent: the existing one is returned). Decision makers stay empty until a
    validation point approves it (:func:`decisions_accept_from_validation`)."""
    question = (
        KeyQuestion.objects.select_for_update(of=("self",))
        .select_related("session__project", "session__prd", "session__template", "decided_by")
        .get(pk=question.pk)
    )
    existing = Decision.objects.filter(key_question=question).first()
    if existing is not None:
        return existing
    if question.state not in (KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED) or not question.chosen:
        raise ApplicationError(QUESTION_UNSETTLED, {"question": question.ref})
    session: DesignSession = question.session
    project = lock_project(session.project)
    positions, latest = _latest_positions(question)

    titles = list(question.options)
    for p in latest:
        if p.option not in titles:
            titles.append(p.option)
    if question.chosen not in titles:
        titles.append(question.chosen)
    options = []
    for title in titles:
        option: dict[str, Any] = {"title": title, "good": [], "neutral": [], "bad": []}
        option["good"] = [_position_point(p) for p in latest if p.option == title]
        if title == question.chosen:
            option["neutral"] = [f'{p.author_name} preferred "{p.option}"' for p in latest if p.option != title]
        options.append(option)

    rnd: Round | None = max((p.round for p in latest), key=lambda r: r.number, default=None)
    how = "decided by the user" if question.state == KeyQuestion.State.DECIDED else "team consensus"
    fields: dict[str, Any] = {
        "title": question.text,
        "context": f"{session.requirement.strip()}\n\n{question.text}",
        "chosen_option": question.chosen,
        "justification": _justification(question, latest),
        "consulted": [p.author_name for p in latest],
        "more_information": (
            f'Key question {question.ref} of the design session "{session.title}" ({how}), '
            f"recorded by the Maestro from the specialists' positions."
        ),
        "tags": [session.template.slug] if session.template_id else [session.team_name],
        "prd": session.prd,
        "prd_reference": session.prd.reference if session.prd_id else "",
        "session": session,
        "round": rnd,
    }
    decision = new_decision(
        project=project,
        user=None,
        status=D.PROPOSED,
        options=options,
        fields=fields,
        key_question=question,
        actor_label=MAESTRO,
        note=f"From key question {question.ref} ({how})",
    )
    seen: set[int] = set()
    rows = []
    for p in positions:
        if p.contribution_id in seen:
            continue
        seen.add(p.contribution_id)
        c = p.contribution
        rows.append(
            DecisionProvenance(
                decision=decision,
                contribution=c,
                specialist_slug=p.specialist_slug or c.specialist_slug,
                author_name=p.author_name or c.author_name,
                provider=c.provider,
                model=c.model,
                option=p.option,
            )
        )
    DecisionProvenance.objects.bulk_create(rows)
    return decision


@transaction.atomic
def decisions_accept_from_validation(
    *,
    point: ValidationPoint,
    response: ValidationResponse,
    approvers: list[AbstractBaseUser],
) -> list[Decision]:
    """An approved design gate accepts every proposed decision of its session: decision makers are
    the approvers, and each gets a StatusChange by ``response.user`` via ``response``. Settled key
    questions without a decision get one first. Idempotent: calling it again changes nothing and
    returns the same decisions (those this response accepted)."""
    if response.point_id != point.pk or response.verdict != ValidationResponse.Verdict.APPROVE:
        raise ApplicationError(NOT_AN_APPROVAL)
    settled = KeyQuestion.objects.filter(
        session_id=point.session_id,
        state__in=[KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED],
        decision__isnull=True,
    ).exclude(chosen="")
    for question in settled:
        decision_from_key_question(question=question)
    names = clean_list(user_label(u) for u in approvers)
    note = f'Approved at the validation point "{point.title}"'[:500]
    proposed = (
        Decision.objects.select_for_update().filter(session_id=point.session_id, status=D.PROPOSED).order_by("number")
    )
    today = timezone.localdate()
    for decision in proposed:
        decision.status = D.ACCEPTED
        decision.decision_makers = names
        decision.date = today
        decision.save(update_fields=["status", "decision_makers", "date", "updated_at"])
        record_status(
            decision, from_status=D.PROPOSED, to_status=D.ACCEPTED, actor=response.user, via=response, note=note
        )
    return list(Decision.objects.filter(status_changes__via=response).distinct().order_by("number"))
