"""Writes of the orchestrator hub: API tokens, and running a task (route, record, start the task
session). Interfaces (HTTP views, MCP tools, management commands) call these and map
:class:`ApplicationError` by its ``extra["code"]``: not_found, conflict, prd_required, unavailable."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app.hub import selectors
from sessions_app.hub.assist import AssistRequest, assist_brief
from sessions_app.hub.auth import DISPLAY_CHARS, token_generate, token_hash
from sessions_app.hub.models import ApiToken, HubTask
from sessions_app.hub.planning import PlanningError, TaskSummary, read_planning_folder
from sessions_app.hub.schemas import (
    PRD_QUESTION,
    ArchitectAssistIn,
    AssistIn,
    DatabaseAssistIn,
    DebugAssistIn,
    TaskIn,
    UiAssistIn,
)
from teams_app.errors import ApplicationError
from teams_app.inventory.selectors import inventory_current
from teams_app.models import PRD, Project, Specialist
from teams_app.selectors import prd_by_reference, prd_latest_active
from teams_app.services import prd_for_reference

TOKEN_NAME_EMPTY = "Give the token a name, e.g. the agent or machine that will use it."
TOKEN_NAME_TOO_LONG = "Token names are limited to 100 characters."
TOKEN_ALREADY_REVOKED = "This token is already revoked."
TOKEN_NOT_FOUND = "No token starts with {prefix}."
TOKEN_AMBIGUOUS = "More than one token starts with {prefix}; give more characters."
TASK_ID_CONFLICT = "task_id {task_id} is already used by a different task; choose a new task_id."
NO_SPECIALISTS = "No specialists are loaded. Run `python manage.py load_specialists`."
SPECIALIST_MISSING = "The {file} specialist is not loaded. Run `python manage.py load_specialists`."
BUSY = "The task could not be recorded; try again."
PRD_ANSWER_SECONDS = 7 * 24 * 3600

# Which specialist answers each assist tool, and the area its task is filed under.
ASSIST_TOOLS: dict[str, tuple[type[AssistIn], str, str]] = {
    HubTask.Tool.DEBUG_ASSIST: (DebugAssistIn, "debug-specialist", "dev"),
    HubTask.Tool.ARCHITECT_ASSIST: (ArchitectAssistIn, "system-architect", "cluster"),
    HubTask.Tool.DATABASE_ASSIST: (DatabaseAssistIn, "database-engineer", "db"),
    HubTask.Tool.UI_ASSIST: (UiAssistIn, "ui-designer", "ui"),
}


# -- tokens ---------------------------------------------------------------------------------------


@transaction.atomic
def api_token_create(*, project: Project, name: str, user: AbstractBaseUser | None = None) -> tuple[ApiToken, str]:
    """A new token for the project. Returns it with the raw token, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError(TOKEN_NAME_EMPTY, {"field": "name"})
    if len(name) > 100:
        raise ApplicationError(TOKEN_NAME_TOO_LONG, {"field": "name"})
    raw = token_generate()
    token = ApiToken.objects.create(
        project=project, name=name, prefix=raw[:DISPLAY_CHARS], token_hash=token_hash(raw),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ApplicationError(TOKEN_ALREADY_REVOKED)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return token


def api_token_revoke_by_prefix(*, prefix: str, project: Project | None = None) -> ApiToken:
    prefix = (prefix or "").strip().rstrip("…")
    qs = ApiToken.objects.filter(prefix__startswith=prefix[:DISPLAY_CHARS]) if prefix else ApiToken.objects.none()
    if project is not None:
        qs = qs.filter(project=project)
    matches = [t for t in qs if t.prefix.startswith(prefix) or prefix.startswith(t.prefix)]
    if len(prefix) > DISPLAY_CHARS:  # a full token: match it exactly
        matches = [t for t in matches if t.token_hash == token_hash(prefix)]
    if not matches:
        raise ApplicationError(TOKEN_NOT_FOUND.format(prefix=prefix or "(nothing)"), {"code": "not_found"})
    if len(matches) > 1:
        raise ApplicationError(TOKEN_AMBIGUOUS.format(prefix=prefix), {"code": "conflict"})
    return api_token_revoke(token=matches[0])


# -- tasks ----------------------------------------------------------------------------------------


def prd_guard(*, project: Project, reference: str | None) -> None:
    """The seed's guardrail: no PRD, no task. Pauses (raises) and offers the latest active PRD."""
    if reference:
        return
    latest = prd_latest_active(project=project)
    raise ApplicationError(PRD_QUESTION, {"code": "prd_required", "latest_prd": latest.reference if latest else None})


def task_route(*, project: Project, task: TaskIn) -> dict:
    """``route_only``: the chosen specialist, its score and rationale, and three runners-up. No writes."""
    prd_guard(project=project, reference=task.prd)
    ranked = selectors.task_route(task=task)
    if not ranked:
        raise ApplicationError(NO_SPECIALISTS, {"code": "unavailable"})
    return selectors.route_payload(task=task, ranked=ranked)


def _replay(existing: HubTask, body_hash: str) -> HubTask:
    if existing.body_hash != body_hash:
        raise ApplicationError(TASK_ID_CONFLICT.format(task_id=existing.task_id), {"code": "conflict"})
    return existing


def _existing(project: Project, task_id: str) -> HubTask | None:
    return HubTask.objects.select_related("project", "session").filter(project=project, task_id=task_id).first()


def hub_task_run(
    *,
    project: Project,
    task: TaskIn,
    token: ApiToken | None = None,
    tool: str = HubTask.Tool.RUN_TASK,
    specialist: Specialist | None = None,
    details: str = "",
    brief: str = "",
) -> tuple[HubTask, bool]:
    """Route the task, record it and start its task session (the specialist runs through Celery,
    enqueued on commit). Returns ``(task, created)``.

    Idempotent on ``(project, task_id)``: the same body again returns the recorded task; another
    body is a conflict. Concurrent duplicates rely on the unique constraint: the loser's insert
    fails, its savepoint rolls back, and it returns the winner's task."""
    from sessions_app.services import task_session_start

    prd_guard(project=project, reference=task.prd)
    body_hash = task.body_hash()
    existing = _existing(project, task.task_id)
    if existing is not None:
        return _replay(existing, body_hash), False
    ranked = selectors.task_route(task=task)
    if not ranked:
        raise ApplicationError(NO_SPECIALISTS, {"code": "unavailable"})
    if specialist is None:
        chosen = ranked[0]
        specialist = Specialist.objects.get(slug=chosen.candidate.slug)
    else:
        chosen = next(s for s in ranked if s.candidate.slug == specialist.slug)
    runners_up = [s.as_dict() for s in ranked if s.candidate.slug != specialist.slug][: selectors.RUNNERS_UP]
    rationale = chosen.rationale if tool == HubTask.Tool.RUN_TASK else f"chosen by the {tool} tool; {chosen.rationale}"
    user = token.created_by if token is not None else None
    for _attempt in range(3):
        try:
            with transaction.atomic():
                prd = prd_for_reference(project=project, reference=task.prd or "")
                hub_task = HubTask.objects.create(
                    project=project, token=token, tool=tool, task_id=task.task_id, area=task.area,
                    summary=task.summary, hints=list(task.hints), prd_reference=task.prd or "", prd=prd,
                    body_hash=body_hash, specialist=specialist, specialist_file=specialist.file_name,
                    score=round(chosen.score, 3), rationale=rationale, runners_up=runners_up, brief=brief,
                )
                session = task_session_start(
                    project=project, specialist=specialist, summary=task.summary, prd=prd,
                    details=details or _task_details(task, rationale), user=user, title=task.summary[:200],
                )
                hub_task.session = session
                hub_task.save(update_fields=["session"])
            return hub_task, True
        except IntegrityError:
            existing = _existing(project, task.task_id)
            if existing is not None:
                return _replay(existing, body_hash), False
            # The task this insert collided with is gone again (its transaction rolled back): try once more.
    raise ApplicationError(BUSY, {"code": "unavailable"})


def _task_details(task: TaskIn, rationale: str) -> str:
    lines = [f"Hub task {task.task_id} · area {task.area}"]
    if task.hints:
        lines.append("Hints: " + ", ".join(task.hints))
    lines.append(f"Routed to you by the orchestrator hub: {rationale}.")
    return "\n".join(lines)


def assist_run(
    *, project: Project, tool: str, params: AssistIn, token: ApiToken | None = None, prd: str | None = None
) -> tuple[HubTask, bool]:
    """An ``*_assist`` tool: the tool's specialist answers as a task session, under ``prd`` or the
    project's latest active PRD (none: the PRD guard pauses it). The session's requirement is the
    rule-based assist brief built from the parameters and the project's inventory, so every
    provider reads the same structured brief."""
    _model, slug, area = ASSIST_TOOLS[tool]
    if not prd:
        latest = prd_latest_active(project=project)
        prd = latest.reference if latest else None
    prd_guard(project=project, reference=prd)
    specialist = Specialist.objects.filter(slug=slug).first()
    if specialist is None:
        raise ApplicationError(SPECIALIST_MISSING.format(file=f"{slug}.md"), {"code": "unavailable"})
    _revision, inventory = inventory_current(project=project)
    brief = assist_brief(_assist_request(tool, params), inventory).markdown()
    summary = _assist_summary(params)
    task = TaskIn(
        task_id=f"{tool.replace('_', '-')}-{secrets.token_hex(6)}", area=area, summary=summary,
        hints=_assist_hints(params), prd=prd,
    )
    return hub_task_run(
        project=project, task=task, token=token, tool=tool, specialist=specialist,
        details=brief + "\n" + _assist_details(params), brief=brief,
    )


def _as_list(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else (value or "").split(",")
    return [item.strip() for item in items if item.strip()]


def _assist_request(tool: str, params: AssistIn) -> AssistRequest:
    return AssistRequest(
        tool=tool, context=params.context, error=getattr(params, "error", None) or "",
        symptom=getattr(params, "symptom", None) or "", logs=getattr(params, "logs", None) or "",
        component=getattr(params, "component", None) or "", files=_as_list(params.files),
        tags=[t.lower() for t in _as_list(params.tags)],
    )


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _assist_summary(params: AssistIn) -> str:
    candidates = [params.title, getattr(params, "symptom", None), getattr(params, "error", None),
                  getattr(params, "component", None), params.context]
    summary = next((_first_line(c) for c in candidates if _first_line(c)), "Assist request")
    return summary[:497] + "…" if len(summary) > 500 else summary


def _assist_hints(params: AssistIn) -> list[str]:
    hints = [t.lower()[:50] for t in _as_list(params.tags)]
    return list(dict.fromkeys(hints))[:20]


def _assist_details(params: AssistIn) -> str:
    parts = [f"Context:\n{params.context.strip()}"]
    for name, label in (("error", "Error"), ("symptom", "Symptom"), ("component", "Component")):
        value = getattr(params, name, None)
        if value and value.strip():
            parts.append(f"{label}: {value.strip()}")
    logs = getattr(params, "logs", None)
    if logs and logs.strip():
        parts.append("Logs:\n```\n" + logs.strip() + "\n```")
    meta = params.metadata_lines()
    if meta:
        parts.append("\n".join(meta))
    return "\n\n".join(parts)


# -- cancelling, the PRD question's answer, planning files -----------------------------------------


def hub_task_cancel(*, project: Project, task_id: str) -> HubTask:
    """Cancel the task's session (its queued or running specialist stops). A finished task is left as it is."""
    from sessions_app.services import session_cancel

    task = selectors.hub_task_get(project=project, task_id=task_id)
    if task.session is not None and selectors.hub_task_status(task) in ("queued", "running"):
        session_cancel(session=task.session)
    return task


def prd_answer_remember(*, project: Project, task_id: str, reference: str) -> None:
    """Cache the PRD the person chose for this task, so the question is asked once per task."""
    cache.set(selectors.prd_answer_key(project=project, task_id=task_id), reference, PRD_ANSWER_SECONDS)


@transaction.atomic
def prds_import_planning(*, project: Project, path: str | Path) -> tuple[list[PRD], list[TaskSummary]]:
    """Import the PRDs of a Task Master project folder as active PRDs, newest last (so it is the
    project's latest). A PRD imported before is updated in place. Raises ApplicationError."""
    try:
        planned, summaries = read_planning_folder(path)
    except (PlanningError, OSError) as exc:
        raise ApplicationError(str(exc), {"code": "invalid", "field": "path"}) from None
    imported = []
    for item in planned:
        prd = prd_by_reference(project=project, reference=item.reference)
        if prd is None:
            prd = PRD(project=project, reference=item.reference)
        prd.title, prd.body, prd.source, prd.status = item.title, item.body, item.source, PRD.Status.ACTIVE
        prd.full_clean(validate_constraints=False)
        prd.save()
        imported.append(prd)
    return imported, summaries
