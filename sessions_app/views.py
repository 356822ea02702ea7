"""Session, dashboard and diagram pages. Interfaces only: parse, call a service or selector, render."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app import selectors, services
from sessions_app.design import selectors as design_selectors
from sessions_app.engine.consensus import key_decisions
from sessions_app.forms import (
    AttachPRDForm,
    BudgetForm,
    DecideForm,
    MessageForm,
    SessionStartForm,
    ValidationResponseForm,
)
from sessions_app.models import Contribution, DesignSession, KeyQuestion, ValidationPoint
from sessions_app.reports import continuation, final_report
from teams_app.errors import ApplicationError
from teams_app.links import absolute_links, base_url
from teams_app.permissions import Action
from teams_app.selectors import project_access, project_access_for, projects_for_user
from teams_app.services import prd_for_reference

logger = logging.getLogger("maestro.audit")


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    from sessions_app.engine.state import round_progress

    running = list(selectors.sessions_active_for_user(user=request.user)[:20])
    progress = {}
    for s in running:
        latest = s.rounds.order_by("-number").first()
        progress[s.pk] = round_progress(latest) if latest else (0, 0)
    return render(
        request,
        "sessions_app/dashboard.html",
        {
            "waiting": selectors.points_waiting_for(user=request.user)[:20],
            "running": [(s, progress[s.pk]) for s in running],
            "projects": projects_for_user(user=request.user),
        },
    )


@require_GET
def project_sessions(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    return render(
        request,
        "sessions_app/project_sessions.html",
        {"project": access.project, "access": access, "tab": "sessions",
         "sessions": selectors.sessions_for_project(project=access.project),
         "can_run_sessions": access.can(Action.RUN_SESSIONS)},
    )


@require_http_methods(["GET", "POST"])
def session_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.RUN_SESSIONS)
    form = SessionStartForm(request.POST or None, project=access.project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            session = services.session_start(
                project=access.project, template=data["template"], requirement=data["requirement"],
                title=data["title"], prd=data["prd"], provider=data["provider"], budget_tokens=data["budget_tokens"],
                approval_quorum=data["approval_quorum"] or 1, approvers=list(data["approvers"]),
                validation_deadline_hours=data["validation_deadline_hours"], expiry_action=data["expiry_action"],
                user=request.user,
            )
        except ApplicationError as exc:
            form.add_error(exc.extra.get("field"), exc.message)
        else:
            return redirect(session)
    return render(
        request, "sessions_app/session_form.html",
        {"form": form, "project": access.project, "access": access, "tab": "sessions"},
        status=400 if form.errors else 200,
    )


@require_GET
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session, access = selectors.session_access(user=request.user, pk=pk)
    state = selectors.session_page_state(session)
    state.update(_user_panel_context(request, state["session"], access))
    state.update({"project": session.project, "access": access})
    return render(request, "sessions_app/session_detail.html", state)


def _user_panel_context(request: HttpRequest, session: DesignSession, access) -> dict:
    from sessions_app.engine.points import product_owners
    from sessions_app.validation import required_approvals, validation_eligible

    proposal = design_selectors.proposal_latest(session)
    owners = product_owners(session)
    points = [
        {
            "point": p,
            "design": design_selectors.point_design_view(p, request.user, proposal),
            "form": ValidationResponseForm(point=p),
            "answered": any(r.user_id == request.user.pk for r in p.responses.all()),
            "can_answer": validation_eligible(point=p, user=request.user),
            "approvals": sum(1 for r in p.responses.all() if r.verdict == "approve"),
            "required": required_approvals(p),
            "approvers": list(p.approvers.all()),
            "answerers": [u.get_username() for u in (list(p.approvers.all()) or owners)],
        }
        for p in session.validation_points.filter(state=ValidationPoint.State.OPEN).prefetch_related("responses", "approvers")
    ]
    latest = session.rounds.order_by("-number").first()
    failed = []
    if latest is not None:
        failed = [c for c in selectors.round_view(latest)["cards"] if c.status == Contribution.Status.FAILED]
    return {
        "points": points,
        "key_decisions": key_decisions(session) if points else [],
        "can_steer": access.can(Action.RUN_SESSIONS),
        "can_manage_members": access.can(Action.MANAGE_MEMBERS),
        "can_post": access.can(Action.POST_MESSAGES),
        "conflicts": selectors.conflicts_waiting(session) if session.status == DesignSession.Status.AWAITING_USER else [],
        "failed": failed,
        "message_form": MessageForm(),
        "prd_form": AttachPRDForm(project=session.project),
        "budget_form": BudgetForm(initial={"budget_tokens": session.budget_tokens}),
        "session": session,
    }


@require_GET
def session_user_panel(request: HttpRequest, pk: int) -> HttpResponse:
    session, access = selectors.session_access(user=request.user, pk=pk)
    return render(request, "sessions_app/partials/user_panel.html", _user_panel_context(request, session, access))


def _act(
    request: HttpRequest, pk: int, action: Action | None, fn: Callable[[DesignSession], str | None]
) -> HttpResponse:
    """Run one steering action and come back to the session page (or its panel, for htmx)."""
    session, access = selectors.session_access(user=request.user, pk=pk)
    if action is not None and not access.can(action):
        logger.warning("refused %s on session %s for %s", action.value, pk, request.user)
        access.require(action)
    try:
        done = fn(session)
        if done and not request.htmx:
            messages.success(request, done)
    except ApplicationError as exc:
        if request.htmx:
            context = _user_panel_context(request, session, access)
            context["panel_error"] = exc.message
            return render(request, "sessions_app/partials/user_panel.html", context, status=422)
        messages.error(request, exc.message)
    if request.htmx:
        session.refresh_from_db()
        return render(request, "sessions_app/partials/user_panel.html", _user_panel_context(request, session, access))
    return redirect(session)


@require_POST
def session_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, Action.RUN_SESSIONS, lambda s: services.session_pause(session=s) and "Session paused.")


@require_POST
def session_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, Action.RUN_SESSIONS, lambda s: services.session_resume(session=s) and "Session resumed.")


@require_POST
def session_continue(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, Action.RUN_SESSIONS, lambda s: services.session_continue(session=s) and "Continuing.")


@require_POST
def session_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, Action.RUN_SESSIONS, lambda s: services.session_cancel(session=s) and "Session cancelled.")


@require_POST
def session_budget(request: HttpRequest, pk: int) -> HttpResponse:
    def run(session):
        form = BudgetForm(request.POST)
        if not form.is_valid():
            raise ApplicationError(services.BUDGET_INVALID)
        services.session_set_budget(session=session, budget_tokens=form.cleaned_data["budget_tokens"])
        return "Budget updated."

    return _act(request, pk, Action.RUN_SESSIONS, run)


@require_POST
def session_attach_prd(request: HttpRequest, pk: int) -> HttpResponse:
    def run(session):
        form = AttachPRDForm(request.POST, project=session.project)
        if not form.is_valid():
            raise ApplicationError(" ".join(e for errs in form.errors.values() for e in errs))
        prd = form.cleaned_data["prd"] or prd_for_reference(
            project=session.project, reference=form.cleaned_data["reference"]
        )
        services.session_attach_prd(session=session, prd=prd)
        return f"{prd.reference} attached; the team is assembling."

    return _act(request, pk, Action.RUN_SESSIONS, run)


@require_POST
def message_post(request: HttpRequest, pk: int) -> HttpResponse:
    def run(session):
        form = MessageForm(request.POST)
        if not form.is_valid():
            raise ApplicationError(services.MESSAGE_EMPTY)
        services.message_post(session=session, text=form.cleaned_data["text"], user=request.user)
        return "Message posted; it joins the next briefs."

    return _act(request, pk, Action.POST_MESSAGES, run)


@require_POST
def contribution_rerun(request: HttpRequest, pk: int, contribution_id: int) -> HttpResponse:
    def run(session):
        contribution = get_object_or_404(Contribution, pk=contribution_id, session=session)
        services.contribution_rerun(contribution=contribution)
        return f"{contribution.author_name} is running again."

    return _act(request, pk, Action.RUN_SESSIONS, run)


@require_POST
def key_question_decide(request: HttpRequest, pk: int, question_id: int) -> HttpResponse:
    def run(session):
        question = get_object_or_404(KeyQuestion, pk=question_id, session=session)
        form = DecideForm(request.POST)
        if not form.is_valid():
            raise ApplicationError(services.BAD_OPTION)
        services.key_question_decide(question=question, option=form.cleaned_data["option"], user=request.user)
        return f"{question.ref} decided."

    return _act(request, pk, Action.POST_MESSAGES, run)


@require_POST
def validation_respond(request: HttpRequest, pk: int, point_id: int) -> HttpResponse:
    from sessions_app.validation import BAD_VERDICT
    from sessions_app.validation import validation_respond as respond

    def run(session):
        point = get_object_or_404(ValidationPoint, pk=point_id, session=session)
        form = ValidationResponseForm(request.POST, point=point)
        if not form.is_valid():
            raise ApplicationError(BAD_VERDICT)
        respond(point=point, user=request.user, verdict=form.cleaned_data["verdict"],
                comment=form.cleaned_data["comment"], answers=form.answers(),
                proposal_seen=form.cleaned_data["proposal_seen"])
        return "Thank you: your answer is recorded."

    # Who may answer is the point's own policy (product owners or its named approvers), checked
    # by the service: it raises PermissionDenied (403) and logs the attempt.
    return _act(request, pk, None, run)


@require_GET
def session_report(request: HttpRequest, pk: int) -> HttpResponse:
    from sessions_app.engine.context import SessionContext

    session, access = selectors.session_access(user=request.user, pk=pk)
    report = session.report or final_report(session, SessionContext.load(session))
    if request.GET.get("format") == "md":
        response = HttpResponse(absolute_links(report, base_url(request)), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="session-{session.pk}-report.md"'
        return response
    return render(request, "sessions_app/session_report.html",
                  {"session": session, "report": report, "project": session.project, "access": access, "tab": "sessions"})


@require_GET
def session_continuation(request: HttpRequest, pk: int) -> HttpResponse:
    session, _ = selectors.session_access(user=request.user, pk=pk)
    return HttpResponse(continuation(session), content_type="text/plain; charset=utf-8")



@require_GET
def session_export(request: HttpRequest, pk: int) -> HttpResponse:
    session, _ = selectors.session_access(user=request.user, pk=pk)  # 404 for non-members
    return JsonResponse(selectors.session_export(session), json_dumps_params={"ensure_ascii": False})
