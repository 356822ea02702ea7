"""Writes of the decision log (§8).

The engine calls :func:`decision_from_key_question` when a key question reaches consensus or the
user decides it, and :func:`decisions_accept_from_validation` when a design gate is approved.
People create, edit (draft and proposed only), change the status of, supersede and link decisions
by hand. History is append-only: every status change writes a :class:`StatusChange`, and an
accepted decision is superseded or deprecated, never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from sessions_app.decisions import madr
from sessions_app.decisions.models import (
    Decision,
    DecisionLink,
    DecisionOption,
    DecisionProvenance,
    StatusChange,
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
from teams_app.models import PRD, Project

D = Decision.Status

ACCEPTED_IS_FINAL = "An accepted decision is not rewritten: supersede it instead."
CLOSED_IS_FINAL = "A {status} decision is part of the record and cannot be edited."
BAD_TRANSITION = "A {from_label} decision cannot become {to_label}."
UNCHANGED_STATUS = "The decision is already {label}."
TITLE_REQUIRED = "Give the decision a title."
BAD_INITIAL_STATUS = "A new decision starts as a draft or proposed (or accepted when it supersedes another)."
NOT_SUPERSEDABLE = "Only an accepted (or already superseded) decision can be superseded."
OTHER_PROJECT = "Both decisions must belong to the same project."
LINK_SELF = "A decision cannot link to itself."
BAD_LINK_KIND = "Links are supersedes, amends or relates."
PRD_OTHER_PROJECT = "That PRD belongs to another project."
SESSION_OTHER_PROJECT = "That session belongs to another project."
QUESTION_UNSETTLED = "Only a key question with consensus or a user's decision becomes a decision."
NOT_AN_APPROVAL = "Only an approving response to this validation point accepts decisions."
BAD_OPTIONS = "Each option needs a title."

# Allowed transitions. Superseding goes through decision_supersede, which links the successor.
TRANSITIONS: dict[str, frozenset[str]] = {
    D.DRAFT: frozenset({D.PROPOSED}),
    D.PROPOSED: frozenset({D.ACCEPTED, D.REJECTED}),
    D.ACCEPTED: frozenset({D.DEPRECATED, D.SUPERSEDED}),
    D.REJECTED: frozenset(),
    D.DEPRECATED: frozenset(),
    D.SUPERSEDED: frozenset(),
}

CONTENT_FIELDS = (
    "title",
    "date",
    "decision_makers",
    "consulted",
    "informed",
    "context",
    "decision_drivers",
    "chosen_option",
    "justification",
    "consequences",
    "confirmation",
    "more_information",
    "tags",
    "prd_reference",
    "prd",
    "session",
    "round",
)
LIST_FIELDS = ("decision_makers", "consulted", "informed", "decision_drivers", "tags")
MAESTRO = "Maestro"


# -- helpers -------------------------------------------------------------------------------------


def user_label(user: AbstractBaseUser | None) -> str:
    if user is None:
        return ""
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


def clean_list(values: Iterable[Any] | str | None) -> list[str]:
    """Trimmed, single-line, non-empty, de-duplicated strings in their given order."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        text = " ".join(str(value).split())
        if text and text not in out:
            out.append(text)
    return out


def clean_tags(values: Iterable[Any] | str | None) -> list[str]:
    if isinstance(values, str):
        values = values.split(",")
    return clean_list(slugify(str(v)) for v in values or [])


def _slug(title: str) -> str:
    return slugify(title)[:60].strip("-") or "decision"


def _clean_options(options: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for option in options:
        title = " ".join(str(option.get("title", "")).split())
        if not title:
            raise ApplicationError(BAD_OPTIONS, {"field": "options"})
        cleaned.append(
            {
                "title": title[:300],
                "description": str(option.get("description") or "").strip(),
                "good": clean_list(option.get("good")),
                "neutral": clean_list(option.get("neutral")),
                "bad": clean_list(option.get("bad")),
            }
        )
    return cleaned


def _apply_fields(decision: Decision, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown decision fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        if name == "tags":
            value = clean_tags(value)
        elif name in LIST_FIELDS:
            value = clean_list(value)
        elif name == "title":
            value = " ".join(str(value or "").split())
        elif name == "chosen_option":
            value = " ".join(str(value or "").split())
        elif name in ("context", "justification", "consequences", "confirmation", "more_information"):
            value = str(value or "").replace("\r\n", "\n").strip()
        elif name == "prd_reference":
            value = str(value or "").strip()
        setattr(decision, name, value)
    if "prd" in fields and decision.prd is not None:
        if decision.prd.project_id != decision.project_id:
            raise ApplicationError(PRD_OTHER_PROJECT, {"field": "prd"})
        if "prd_reference" not in fields or not decision.prd_reference:
            decision.prd_reference = decision.prd.reference
    if "session" in fields and decision.session is not None and decision.session.project_id != decision.project_id:
        raise ApplicationError(SESSION_OTHER_PROJECT, {"field": "session"})
    if not decision.title:
        raise ApplicationError(TITLE_REQUIRED, {"field": "title"})


def _full_clean(decision: Decision) -> None:
    try:
        decision.full_clean(exclude=["project", "number", "search_vector"], validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()), {"fields": exc.message_dict}
        ) from None


def _replace_options(decision: Decision, options: Sequence[dict[str, Any]]) -> None:
    decision.options.all().delete()
    rows = [DecisionOption(decision=decision, order=i, **option) for i, option in enumerate(_clean_options(options), 1)]
    for row in rows:
        row.full_clean(exclude=["decision"])
    DecisionOption.objects.bulk_create(rows)


def _next_number(project: Project) -> int:
    """Precondition: the project row is locked (select_for_update) by the caller's transaction."""
    last = Decision.objects.filter(project=project).order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _lock_project(project: Project) -> Project:
    # Serialises numbering per project on PostgreSQL; SQLite serialises writers anyway.
    return Project.objects.select_for_update().get(pk=project.pk)


def _record_status(
    decision: Decision,
    *,
    from_status: str,
    to_status: str,
    actor: AbstractBaseUser | None,
    actor_label: str = "",
    via: ValidationResponse | None = None,
    note: str = "",
) -> StatusChange:
    return StatusChange.objects.create(
        decision=decision,
        actor=actor,
        actor_label=(actor_label or user_label(actor) or MAESTRO)[:150],
        from_status=from_status,
        to_status=to_status,
        via=via,
        note=note[:500],
    )


def _new_decision(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    status: str,
    options: Sequence[dict[str, Any]] | None,
    fields: dict[str, Any],
    number: int | None = None,
    slug: str = "",
    key_question: KeyQuestion | None = None,
    actor_label: str = "",
    note: str = "",
) -> Decision:
    """Precondition: inside a transaction that holds the project lock."""
    decision = Decision(project=project, status=status, created_by=user, key_question=key_question)
    _apply_fields(decision, fields)
    decision.number = number if number is not None else _next_number(project)
    decision.slug = slugify(slug)[:80] if slug else _slug(decision.title)
    _full_clean(decision)
    decision.save()
    if options:
        _replace_options(decision, options)
    _record_status(
        decision, from_status="", to_status=status, actor=user, actor_label=actor_label, note=note or "Created"
    )
    return decision


# -- by hand -------------------------------------------------------------------------------------


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
    project = _lock_project(project)
    return _new_decision(project=project, user=user, status=status, options=options, fields=fields)


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
    _apply_fields(decision, fields)
    if "date" not in fields:
        decision.date = timezone.localdate()
    _full_clean(decision)
    decision.save()
    if options is not None:
        _replace_options(decision, options)
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
    _record_status(
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
    project = _lock_project(old.project)
    old = _lock(old)
    if old.status not in (D.ACCEPTED, D.SUPERSEDED):
        raise ApplicationError(NOT_SUPERSEDABLE)
    if status not in (D.DRAFT, D.PROPOSED, D.ACCEPTED):
        raise ApplicationError(BAD_INITIAL_STATUS, {"field": "status"})
    new = _new_decision(
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
        _record_status(
            old,
            from_status=from_status,
            to_status=D.SUPERSEDED,
            actor=user,
            note=note or f"Superseded by {new.adr_id}",
        )
    return new


# -- from the engine -----------------------------------------------------------------------------


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
    project = _lock_project(session.project)
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
    decision = _new_decision(
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
        _record_status(
            decision, from_status=D.PROPOSED, to_status=D.ACCEPTED, actor=response.user, via=response, note=note
        )
    return list(Decision.objects.filter(status_changes__via=response).distinct().order_by("number"))


# -- MADR import --------------------------------------------------------------------------------

IMPORT_FAILED = "Nothing was imported: {count} file(s) have problems."
NOTHING_TO_IMPORT = "No ADR markdown files (NNNN-title.md) were found."


@dataclass
class ImportReport:
    """What an import did, by file name: imported decisions (with notes on what was read loosely
    or left out), problems (files not imported) and skipped files (templates, indexes, READMEs)."""

    decisions: list[Decision] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


def _resolve_link(
    target: str, *, by_file: dict[str, madr.ParsedADR], numbers: dict[int, madr.ParsedADR], existing: dict[int, int]
) -> int | None:
    """The number a link points to (in the import or already in the project), or None."""
    how, key = madr.link_target_key(target)
    if how == "file":
        adr = by_file.get(str(key).lower())
        if adr is not None:
            return adr.number
        number, _ = madr.number_and_slug(str(key))
        key = number
    if isinstance(key, int) and (key in numbers or key in existing):
        return key
    return None


def _import_fields(project: Project, adr: madr.ParsedADR, unresolved: list[str]) -> dict[str, Any]:
    more = adr.more_information
    if unresolved:
        # Links to ADRs that are not here stay readable as text rather than disappear.
        listing = "\n".join(f"* {kind} {target}" for kind, target in unresolved)
        more = f"{more}\n\n{listing}".strip()
    return {
        "title": adr.title,
        "date": adr.date,
        "decision_makers": adr.decision_makers,
        "consulted": adr.consulted,
        "informed": adr.informed,
        "tags": adr.tags,
        "prd_reference": adr.prd_reference,
        "prd": PRD.objects.filter(project=project, reference=adr.prd_reference).first() if adr.prd_reference else None,
        "context": adr.context,
        "decision_drivers": adr.decision_drivers,
        "chosen_option": adr.chosen_option,
        "justification": adr.justification,
        "consequences": adr.consequences,
        "confirmation": adr.confirmation,
        "more_information": more,
    }


@transaction.atomic
def decisions_import(
    *,
    project: Project,
    files: Sequence[tuple[str, str | bytes]],
    user: AbstractBaseUser | None = None,
    strict: bool = False,
) -> ImportReport:
    """Import ADR files: MADR 4, MADR 2/3 (Log4brains), adr-tools (Nygard) and free-form records.

    Every file that is an ADR is imported, each whole or not at all; the others are reported by
    name with a reason (``problems``: no title, invalid front matter, a number used twice or
    already in the project ...), and templates, indexes and READMEs are ``skipped``. A link to an
    ADR that is neither imported nor in the project stays as text in More information, with a
    note. ``strict`` keeps the import all or nothing: any problem raises ApplicationError with
    ``extra["problems"]`` and leaves the project unchanged. Numbers come from the file names
    (``0007-x.md``, ``adr007-x.md``) or the title; files without one are numbered after the rest."""
    parsed, problems, skipped = madr.parse_files(files)
    if not parsed and not problems:
        raise ApplicationError(NOTHING_TO_IMPORT, {"problems": {}, "skipped": skipped})
    project = _lock_project(project)
    existing = dict(Decision.objects.filter(project=project).values_list("number", "pk"))
    notes: dict[str, list[str]] = {adr.source: list(adr.notes) for adr in parsed}

    numbers: dict[int, madr.ParsedADR] = {}
    for adr in parsed:
        if adr.number is None:
            continue
        if adr.number in numbers:
            other = numbers[adr.number]
            problems[adr.source] = f"duplicate number {adr.number:04d}: {other.source} has it too"
            problems.setdefault(other.source, f"duplicate number {adr.number:04d}: {adr.source} has it too")
        elif adr.number in existing:
            problems[adr.source] = f"{madr.adr_ref(adr.number)} already exists in this project"
        else:
            numbers[adr.number] = adr
    # A number two files claim belongs to neither.
    numbers = {n: adr for n, adr in numbers.items() if adr.source not in problems}
    next_number = max([0, *existing, *numbers]) + 1
    for adr in parsed:
        if adr.number is None:
            adr.number = next_number
            numbers[next_number] = adr
            next_number += 1
    by_file = {adr.source.rsplit("/", 1)[-1].lower(): adr for adr in parsed if adr.source not in problems}

    edges: list[tuple[madr.ParsedADR, int, str, bool]] = []
    unresolved: dict[str, list[tuple[str, str]]] = {}
    for adr in parsed:
        for link in adr.links:
            target = _resolve_link(link.target, by_file=by_file, numbers=numbers, existing=existing)
            word = ("superseded by" if link.reverse else "supersedes") if link.kind == "supersedes" else link.kind
            if word == "amends" and link.reverse:
                word = "amended by"
            if target is None:
                unresolved.setdefault(adr.source, []).append((word, link.target))
                notes[adr.source].append(
                    f'links to "{link.target}", which is neither in these files nor in the project; kept as text'
                )
            elif target == adr.number:
                notes[adr.source].append("links to itself; the link is left out")
            else:
                edges.append((adr, target, link.kind, link.reverse))
    if strict:
        for adr in parsed:
            if adr.source in unresolved and adr.source not in problems:
                problems[adr.source] = notes[adr.source][-1]

    created: dict[int, Decision] = {}
    imported: set[str] = set()
    if not (strict and problems):
        for adr in sorted(parsed, key=lambda a: a.number or 0):
            if adr.source in problems:
                continue
            try:
                with transaction.atomic():  # each file whole or not at all
                    decision = _new_decision(
                        project=project,
                        user=user,
                        status=adr.status,
                        options=[o.as_dict() for o in adr.options],
                        fields=_import_fields(project, adr, unresolved.get(adr.source, [])),
                        number=adr.number,
                        slug=adr.slug or _slug(adr.title),
                        actor_label=f"import of {adr.source.rsplit('/', 1)[-1]}"[:150],
                        note=f"Imported from {adr.source.rsplit('/', 1)[-1]} ({adr.format})",
                    )
                    if adr.status_label or adr.external_id:
                        decision.status_label = adr.status_label
                        decision.external_id = adr.external_id
                        decision.save(update_fields=["status_label", "external_id"])
                    created[adr.number] = decision
                    imported.add(adr.source)
            except ApplicationError as exc:
                problems[adr.source] = exc.message
    if problems and (strict or not created):
        raise ApplicationError(
            IMPORT_FAILED.format(count=len(problems)),
            {"problems": dict(sorted(problems.items())), "skipped": skipped},
        )

    pks = {**existing, **{n: d.pk for n, d in created.items()}}
    seen: set[tuple[int, int, str]] = set()
    rows = []
    for adr, target, kind, reverse in edges:
        if adr.number not in pks or target not in pks:
            continue  # one end was not imported; its file is reported
        source_pk, target_pk = pks[adr.number], pks[target]
        key = (target_pk, source_pk, kind) if reverse else (source_pk, target_pk, kind)
        if key in seen:
            continue
        seen.add(key)
        rows.append(DecisionLink(from_decision_id=key[0], to_decision_id=key[1], kind=kind, created_by=user))
    existing_links = set(
        DecisionLink.objects.filter(from_decision__project=project).values_list(
            "from_decision_id", "to_decision_id", "kind"
        )
    )
    DecisionLink.objects.bulk_create(
        [r for r in rows if (r.from_decision_id, r.to_decision_id, r.kind) not in existing_links]
    )
    return ImportReport(
        decisions=[created[n] for n in sorted(created)],
        problems=dict(sorted(problems.items())),
        skipped=skipped,
        notes={name: items for name, items in sorted(notes.items()) if items and name in imported},
    )
