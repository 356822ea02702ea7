"""What every write of the decision log shares: cleaning the MADR fields, numbering a new
decision in its project, and the append-only status history (one :class:`StatusChange` per move).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from sessions_app.decisions.models import Decision, DecisionOption, StatusChange
from sessions_app.models import KeyQuestion, ValidationResponse
from teams_app.errors import ApplicationError
from teams_app.models import Project

TITLE_REQUIRED = "Give the decision a title."
PRD_OTHER_PROJECT = "That PRD belongs to another project."
SESSION_OTHER_PROJECT = "That session belongs to another project."
BAD_OPTIONS = "Each option needs a title."

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


def default_slug(title: str) -> str:
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


def apply_fields(decision: Decision, fields: dict[str, Any]) -> None:
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


def full_clean_decision(decision: Decision) -> None:
    try:
        decision.full_clean(exclude=["project", "number", "search_vector"], validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()), {"fields": exc.message_dict}
        ) from None


def replace_options(decision: Decision, options: Sequence[dict[str, Any]]) -> None:
    decision.options.all().delete()
    rows = [DecisionOption(decision=decision, order=i, **option) for i, option in enumerate(_clean_options(options), 1)]
    for row in rows:
        row.full_clean(exclude=["decision"])
    DecisionOption.objects.bulk_create(rows)


def _next_number(project: Project) -> int:
    """Precondition: the project row is locked (select_for_update) by the caller's transaction."""
    last = Decision.objects.filter(project=project).order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def lock_project(project: Project) -> Project:
    # Serialises numbering per project on PostgreSQL; SQLite serialises writers anyway.
    return Project.objects.select_for_update().get(pk=project.pk)


def record_status(
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


def new_decision(
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
    apply_fields(decision, fields)
    decision.number = number if number is not None else _next_number(project)
    decision.slug = slugify(slug)[:80] if slug else default_slug(decision.title)
    full_clean_decision(decision)
    decision.save()
    if options:
        replace_options(decision, options)
    record_status(
        decision, from_status="", to_status=status, actor=user, actor_label=actor_label, note=note or "Created"
    )
    return decision
