"""Reads of the orchestrator hub: routing, tasks and their derived status, tokens, health."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, QuerySet, Sum
from django.urls import reverse

from sessions_app.hub.models import ApiToken, HubTask
from sessions_app.hub.schemas import TaskIn
from sessions_app.models import Contribution, DesignSession, SessionEvent, Synthesis
from teams_app.errors import ApplicationError
from teams_app.links import absolute_links
from teams_app.models import PRD, Project, Specialist
from teams_app.router import Candidate, Score, rank

logger = logging.getLogger(__name__)

TASK_NOT_FOUND = "No task with this task_id in the token's project."
RUNNERS_UP = 3


# -- routing --------------------------------------------------------------------------------------


_candidates: dict[str, Any] = {"key": None, "checked": 0.0, "value": ()}


def route_candidates() -> tuple[Candidate, ...]:
    """Every specialist, as the router sees it.

    Kept in memory: for ``HUB_ROUTER_CACHE_SECONDS`` without looking, then while one aggregate
    query (count, newest ``updated_at``, sum of ids) shows no specialist added, edited or removed."""
    ttl = float(getattr(settings, "HUB_ROUTER_CACHE_SECONDS", 2.0))
    cached = dict(_candidates)
    now = time.monotonic()
    if cached["key"] is not None and now - cached["checked"] < ttl:
        return cached["value"]
    key = tuple(Specialist.objects.aggregate(n=Count("id"), changed=Max("updated_at"), ids=Sum("id")).values())
    if cached["key"] == key:
        _candidates.update(checked=now)
        return cached["value"]
    rows = Specialist.objects.order_by("slug").values_list("slug", "name", "areas", "hints", "description")
    value = tuple(
        Candidate(slug=slug, name=name, areas=tuple(areas or ()), hints=tuple(h.lower() for h in hints or ()),
                  description=description or "")
        for slug, name, areas, hints, description in rows
    )
    _candidates.update(key=key, checked=now, value=value)
    return value


def task_route(*, task: TaskIn) -> list[Score]:
    """All specialists ranked for the task: best first, ties broken by file name (deterministic)."""
    return rank(list(route_candidates()), area=task.area, hints=task.hints, summary=task.summary)


def route_payload(*, task: TaskIn, ranked: list[Score]) -> dict[str, Any]:
    """The ``route_only`` answer (schemas.RouteOut)."""
    best = ranked[0]
    return {
        **best.as_dict(),
        "task_id": task.task_id,
        "prd": task.prd or "",
        "runners_up": [s.as_dict() for s in ranked[1 : 1 + RUNNERS_UP]],
    }


# -- tasks ----------------------------------------------------------------------------------------


def hub_task_get(*, project: Project, task_id: str) -> HubTask:
    """The project's task with this id; another project's task is not found (404)."""
    task = (
        HubTask.objects.select_related("project", "session", "session__prd", "specialist")
        .filter(project=project, task_id=task_id)
        .first()
    )
    if task is None:
        raise ApplicationError(TASK_NOT_FOUND, {"code": "not_found"})
    return task


def hub_tasks_for_project(*, project: Project) -> QuerySet[HubTask]:
    return project.hub_tasks.select_related("session", "token").order_by("-created_at", "-id")


def api_tokens_for_project(*, project: Project) -> QuerySet[ApiToken]:
    return project.api_tokens.select_related("created_by").order_by("-created_at", "-id")


def _answer_contribution(session: DesignSession) -> Contribution | None:
    return (
        Contribution.objects.filter(session=session, author=Contribution.Author.SPECIALIST)
        .order_by("-round__number", "-attempt", "-id")
        .first()
    )


def hub_task_status(task: HubTask, answer: Contribution | None = None) -> str:
    """Derived from the task session: queued, running, done, failed, cancelled or paused."""
    session = task.session
    if session is None:
        return "queued"
    S = DesignSession.Status
    if session.status == S.COMPLETED:
        answer = answer or _answer_contribution(session)
        return "failed" if answer is not None and answer.status == Contribution.Status.FAILED else "done"
    if session.status == S.CANCELLED:
        return "cancelled"
    if session.status == S.PAUSED_PRD:
        return "paused"
    answer = answer or _answer_contribution(session)
    if answer is None or answer.status == Contribution.Status.PENDING or answer.queued:
        return "queued"
    return "running"


def task_urls(task: HubTask, *, base_url: str) -> dict[str, str | None]:
    base = base_url.rstrip("/")
    return {
        "task_url": base + reverse("hub_task_page", kwargs={"slug": task.project.slug, "task_id": task.task_id}),
        "session_url": base + task.session.get_absolute_url() if task.session_id else None,
        "status_url": base + reverse("hub_task_status", kwargs={"task_id": task.task_id}),
    }


def hub_task_view(task: HubTask, *, base_url: str) -> dict[str, Any]:
    """Everything ``GET /hub/tasks/<task_id>`` and ``orchestrator.task_status`` answer (schemas.TaskStatusOut)."""
    from sessions_app.reports import continuation

    session = task.session
    answer = _answer_contribution(session) if session is not None else None
    status = hub_task_status(task, answer)
    finished = status in ("done", "failed", "cancelled")
    urls = task_urls(task, base_url=base_url)
    view: dict[str, Any] = {
        "task_id": task.task_id,
        "tool": task.tool,
        "status": status,
        "area": task.area,
        "summary": task.summary,
        "hints": list(task.hints),
        "prd": task.prd_reference,
        "specialist": task.specialist_file,
        "score": task.score,
        "rationale": task.rationale,
        "runners_up": list(task.runners_up),
        "created_at": task.created_at.isoformat(),
        "completed_at": session.completed_at.isoformat() if session is not None and session.completed_at else None,
        "task_url": urls["task_url"],
        "session_url": urls["session_url"],
        "answer": None,
        "report": None,
        "continuation": None,
        "cluster_view": None,
        "brief": task.brief or None,
    }
    if session is None:
        return view
    view["continuation"] = continuation(session)
    if finished:
        if answer is not None:
            view["answer"] = answer.text if answer.status == Contribution.Status.DONE else f"(no answer: {answer.error})"
        view["report"] = absolute_links(session.report, base_url) if session.report else None
        synthesis = Synthesis.objects.filter(session=session).order_by("-round__number").first()
        view["cluster_view"] = synthesis.ascii if synthesis is not None and synthesis.ascii else None
    return view


def hub_task_resources(task: HubTask) -> dict[str, Any]:
    """What a finished task can link to: its report, the ADRs its session recorded, its diagram."""
    from sessions_app.decisions.models import Decision

    session = task.session
    if session is None:
        return {"report": False, "adrs": [], "diagram": False}
    adrs = list(Decision.objects.filter(project=task.project, session=session).order_by("number")
                .values_list("number", "title"))
    has_diagram = Synthesis.objects.filter(session=session).exclude(ascii="").exists()
    return {"report": bool(session.report), "adrs": adrs, "diagram": has_diagram}


def hub_task_report(*, project: Project, task_id: str) -> str:
    task = hub_task_get(project=project, task_id=task_id)
    if task.session is None or not task.session.report:
        raise ApplicationError("This task has no report yet.", {"code": "not_found"})
    return task.session.report


def hub_task_diagram(*, project: Project, task_id: str) -> str:
    task = hub_task_get(project=project, task_id=task_id)
    synthesis = (Synthesis.objects.filter(session_id=task.session_id).exclude(ascii="").order_by("-round__number").first()
                 if task.session_id else None)
    if synthesis is None:
        raise ApplicationError("This task has no diagram.", {"code": "not_found"})
    return synthesis.ascii


def hub_task_adr(*, project: Project, task_id: str, number: int) -> str:
    """An ADR the task's session recorded, as MADR markdown."""
    from sessions_app.decisions import madr
    from sessions_app.decisions.selectors import decisions_for_export

    task = hub_task_get(project=project, task_id=task_id)
    recorded = number in dict(hub_task_resources(task)["adrs"])
    exported = decisions_for_export(project=project, numbers=[number]) if recorded else []
    if not exported:
        raise ApplicationError("This task recorded no such ADR.", {"code": "not_found"})
    return madr.render(exported[0])


def session_events_after(*, session_id: int, after: int, limit: int = 200) -> list[tuple[int, str, dict]]:
    """The session's logged events after sequence number ``after``: ``(seq, type, payload)``."""
    rows = SessionEvent.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")[:limit]
    return [(r.seq, r.type, r.payload) for r in rows]


# -- PRDs the hub offers ---------------------------------------------------------------------------


def prds_offered(*, project: Project, limit: int = 10) -> list[dict[str, str]]:
    """The project's active PRDs, latest first (the first is the one the hub suggests), with where each came from."""
    rows = project.prds.filter(status=PRD.Status.ACTIVE).order_by("-created_at", "-id")[:limit]
    return [{"reference": p.reference, "title": p.title, "source": p.source or "added in Maestro"} for p in rows]


def prd_answer_key(*, project: Project, task_id: str) -> str:
    return f"hub:prd-answer:{project.pk}:{task_id}"


def prd_cached_for_task(*, project: Project, task_id: str) -> str | None:
    """The PRD already chosen for this task: the recorded task's, else the cached answer."""
    recorded = HubTask.objects.filter(project=project, task_id=task_id).values_list("prd_reference", flat=True).first()
    return recorded or cache.get(prd_answer_key(project=project, task_id=task_id))


# -- health ---------------------------------------------------------------------------------------

_workers_cache: dict[str, Any] = {"at": 0.0, "value": None}
_workers_lock = threading.Lock()


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means the database is down for the hub
        logger.warning("hub health: database check failed: %s", exc)
        return "down"
    return "ok"


def _check_broker(app) -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=1)
    except Exception as exc:  # kombu raises transport-specific errors
        logger.warning("hub health: broker check failed: %s", exc)
        return "down"
    return "ok"


def _check_workers(app) -> str:
    ttl = float(getattr(settings, "HUB_WORKER_CACHE_SECONDS", 5.0))
    with _workers_lock:
        cached = _workers_cache["value"]
        if cached is not None and time.monotonic() - _workers_cache["at"] < ttl:
            return cached
        try:
            replies = app.control.ping(timeout=float(getattr(settings, "HUB_WORKER_PING_TIMEOUT", 0.5))) or []
        except Exception as exc:  # a broker error while pinging: no worker can be reached
            logger.warning("hub health: worker ping failed: %s", exc)
            replies = []
        value = f"ok ({len(replies)})" if replies else "down"
        _workers_cache.update(at=time.monotonic(), value=value)
        return value


def health_check() -> dict[str, Any]:
    """``{"ok", "database", "broker", "workers"}``; ok only when the database, the broker and at
    least one Celery worker answer (or tasks run in-process, eagerly)."""
    from config.celery import app

    database = _check_database()
    if app.conf.task_always_eager:
        broker = workers = "eager (tasks run in-process)"
        ok = database == "ok"
    else:
        broker = _check_broker(app)
        workers = _check_workers(app) if broker == "ok" else "unknown (broker down)"
        ok = database == "ok" and broker == "ok" and workers.startswith("ok")
    return {"ok": ok, "database": database, "broker": broker, "workers": workers}


def health_cache_clear() -> None:
    with _workers_lock:
        _workers_cache.update(at=0.0, value=None)
