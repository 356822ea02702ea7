"""Reads of sessions_app, including everything the session page shows."""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from sessions_app.decisions.models import Decision
from sessions_app.design import selectors as design
from sessions_app.engine.checklist import anti_patterns, gate_checklist
from sessions_app.engine.context import SessionContext
from sessions_app.engine.state import round_progress
from sessions_app.models import (
    PHASE_ORDER,
    Contribution,
    DesignSession,
    KeyQuestion,
    Phase,
    Position,
    Round,
    Synthesis,
    ValidationPoint,
)
from teams_app.models import Membership, Project
from teams_app.selectors import ProjectAccess, project_access


def session_visible_to(*, session_id: int, user: AbstractBaseUser) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return DesignSession.objects.filter(pk=session_id).exists()
    return DesignSession.objects.filter(pk=session_id, project__memberships__user=user).exists()


def session_access(*, user: AbstractBaseUser, pk: int) -> tuple[DesignSession, ProjectAccess]:
    session = (
        DesignSession.objects.select_related("project", "prd", "template", "inventory_revision").filter(pk=pk).first()
    )
    if session is None:
        raise Http404("No such session.")
    access = project_access(user=user, project_id=session.project_id)
    return session, access


def sessions_for_project(*, project: Project) -> QuerySet[DesignSession]:
    return project.design_sessions.select_related("prd").order_by("-created_at")


def sessions_active_for_user(*, user: AbstractBaseUser) -> QuerySet[DesignSession]:
    qs = DesignSession.objects.exclude(status__in=[DesignSession.Status.COMPLETED, DesignSession.Status.CANCELLED])
    if not user.is_superuser:
        qs = qs.filter(project__memberships__user=user)
    return qs.select_related("project").order_by("-updated_at")


def points_waiting_for(*, user: AbstractBaseUser) -> QuerySet[ValidationPoint]:
    """Open validation points the user may answer, oldest first."""
    from django.db.models import Exists, OuterRef, Q

    from teams_app.models import Membership as M

    is_po = M.objects.filter(project=OuterRef("session__project"), user=user, role=Membership.Role.PRODUCT_OWNER)
    named = ValidationPoint.approvers.through.objects.filter(validationpoint=OuterRef("pk"))
    named_me = named.filter(user=user)
    qs = (
        ValidationPoint.objects.filter(state=ValidationPoint.State.OPEN)
        .exclude(responses__user=user)
        .filter(Q(Exists(named_me)) | (~Exists(named) & Exists(is_po)))
    )
    return qs.select_related("session__project").order_by("opened_at", "pk")


def phase_steps(session: DesignSession) -> list[dict]:
    current = PHASE_ORDER.index(session.phase)
    return [
        {"number": i + 1, "label": phase.label, "state": "done" if i < current else "current" if i == current else "todo"}
        for i, phase in enumerate(PHASE_ORDER)
        if phase != Phase.COMPLETED
    ]


def round_view(rnd: Round) -> dict:
    contributions = list(rnd.contributions.all())
    latest: dict[str, Contribution] = {}
    cards: list[Contribution] = []
    for c in contributions:
        if c.author == Contribution.Author.SPECIALIST:
            if c.specialist_slug not in latest:
                cards.append(c)
            latest[c.specialist_slug] = c
        else:
            cards.append(c)
    cards = [latest.get(c.specialist_slug, c) if c.author == Contribution.Author.SPECIALIST else c for c in cards]
    done, total = round_progress(rnd)
    synthesis = Synthesis.objects.filter(round=rnd).first()
    return {"round": rnd, "cards": cards, "done": done, "total": total, "synthesis": synthesis}


def key_questions_view(session: DesignSession) -> list[dict]:
    questions = list(
        session.key_questions.prefetch_related(Prefetch("positions", queryset=Position.objects.select_related("round")))
    )
    views = []
    for q in questions:
        positions = list(q.positions.all())
        last_round = max((p.round.number for p in positions), default=None)
        current = [p for p in positions if p.round.number == last_round]
        counts: dict[str, int] = defaultdict(int)
        for p in current:
            counts[p.option] += 1
        total = len(current) or 1
        options = [{"text": o, "count": counts.get(o, 0), "share": counts.get(o, 0) / total} for o in q.options]
        views.append({"q": q, "positions": current, "options": options})
    return views


def providers_unavailable() -> dict[str, str]:
    """Providers that cannot run with this site's settings, with the reason a person can act on."""
    from django.conf import settings

    reasons = {}
    if not settings.ANTHROPIC_API_KEY:
        reasons["anthropic"] = "ANTHROPIC_API_KEY is not set"
    if not settings.OPENAI_BASE_URL:
        reasons["openai"] = "OPENAI_BASE_URL is not set"
    return reasons


def session_page_state(session: DesignSession) -> dict:
    """Everything the session page renders, read in one consistent snapshot so ``last_seq``
    matches what is shown (events after it are replayed by the live connection)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        session = DesignSession.objects.select_related("project", "prd", "template", "inventory_revision").get(pk=session.pk)
        ctx = SessionContext.load(session)
        rounds = [
            round_view(r)
            for r in session.rounds.prefetch_related("contributions").order_by("number")
        ]
        from sessions_app.reports import awaiting, continuation

        return {
            "session": session,
            "last_seq": session.last_seq,
            "steps": phase_steps(session),
            "rounds": rounds,
            "gate": gate_checklist(session.gate),
            "anti_patterns": anti_patterns(session, ctx),
            "questions": key_questions_view(session),
            "open_points": list(session.validation_points.filter(state=ValidationPoint.State.OPEN)),
            "involved": ctx.involved_services,
            "awaiting": awaiting(session),
            "continuation": continuation(session, ctx),
            "latest_prd": session.project.prds.filter(status="active").order_by("-created_at").first(),
            **design_panels(session),
        }


_PANELS = {"brief": design.brief_view, "proposal": design.proposal_view, "plan": design.plan_view}


def design_panels(session: DesignSession, names: tuple[str, ...] = tuple(_PANELS)) -> dict:
    """The brief, proposal and plan panels of the session page (also its live fragments)."""
    return {name: _PANELS[name](session) for name in names}


def conflicts_waiting(session: DesignSession) -> list[KeyQuestion]:
    """Questions waiting for a person: those the team disputes, and during Integration Design
    those no evidence settled (open)."""
    states = [KeyQuestion.State.CONFLICT]
    if session.phase == "design":
        states.append(KeyQuestion.State.OPEN)
    return list(session.key_questions.filter(state__in=states).order_by("ref"))


def session_export(session: DesignSession) -> dict:
    """The whole session as one JSON-ready document (``export_session`` and ``export.json``)."""
    session = DesignSession.objects.select_related("project", "prd").get(pk=session.pk)
    rounds = session.rounds.prefetch_related("contributions").order_by("number")
    points = session.validation_points.prefetch_related("responses__user", "responses__proposal_seen").order_by("opened_at", "pk")
    return {
        "session": session.pk,
        "title": session.title,
        "project": session.project.slug,
        "status": session.status,
        "phase": session.phase,
        "requirement": session.requirement,
        "prd": session.prd.reference if session.prd else None,
        "brief": session.brief or None,
        "rounds": [
            {
                "number": r.number,
                "kind": r.kind,
                "phase": r.phase,
                "status": r.status,
                "contributions": [
                    {"specialist": c.specialist_slug, "author": c.author_name, "author_kind": c.author,
                     "status": c.status, "text": c.text}
                    for c in r.contributions.all()
                ],
            }
            for r in rounds
        ],
        "proposal": design.proposal_document(design.proposal_latest(session)),
        "proposal_versions": design.proposal_versions_document(session),
        "plan": design.plan_document(session),
        "checklist": [{"check": c.get("check", ""), "source": c.get("source", "")} for c in session.checklist or []],
        "key_questions": [
            {"ref": q.ref, "text": q.text, "options": list(q.options), "state": q.state, "chosen": q.chosen or None}
            for q in session.key_questions.order_by("ref")
        ],
        "decisions": [
            {"ref": d.adr_id, "title": d.title, "status": d.status}
            for d in Decision.objects.filter(session=session).order_by("number")
        ],
        "validation_points": [
            {
                "id": p.pk, "gate": p.gate, "kind": p.kind, "title": p.title, "state": p.state,
                "opened_at": p.opened_at.isoformat(), "closed_at": p.closed_at.isoformat() if p.closed_at else None,
                "responses": [
                    {"user": r.user.get_username(), "verdict": r.verdict, "comment": r.comment,
                     "proposal_seen": r.proposal_seen.version if r.proposal_seen_id else None}
                    for r in p.responses.all()
                ],
            }
            for p in points
        ],
    }


def session_last_seq(*, session_id: int) -> int | None:
    """The sequence number of the session's last event (None for a session that is gone)."""
    return DesignSession.objects.filter(pk=session_id).values_list("last_seq", flat=True).first()


def validation_points_overdue(*, limit: int = 100) -> list[int]:
    """Open points past their deadline whose expiry action pauses the session (the others
    stay open and are shown as overdue)."""
    return list(
        ValidationPoint.objects.filter(
            state=ValidationPoint.State.OPEN, deadline__lt=timezone.now(), expiry_action=DesignSession.ExpiryAction.PAUSE
        ).values_list("pk", flat=True)[:limit]
    )
