"""The project's Hub page: API tokens (owners create and revoke them) and the hub's tasks.

Interfaces only: parse, call one service or selector, render.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from sessions_app.hub import selectors, services
from sessions_app.hub.forms import ApiTokenForm, PlanningImportForm
from sessions_app.hub.models import ApiToken
from teams_app.errors import ApplicationError
from teams_app.links import absolute_url
from teams_app.permissions import Action
from teams_app.selectors import ProjectAccess, project_access, project_access_for

TASKS_SHOWN = 50


def _render(request: HttpRequest, access: ProjectAccess, *, form: ApiTokenForm | None = None, new_token: str = "",
            import_form: PlanningImportForm | None = None, status: int = 200) -> HttpResponse:
    project = access.project
    tasks = list(selectors.hub_tasks_for_project(project=project)[:TASKS_SHOWN])
    return render(
        request,
        "sessions_app/hub/hub.html",
        {
            "project": project,
            "access": access,
            "tab": "hub",
            "tokens": selectors.api_tokens_for_project(project=project),
            "tasks": [(t, selectors.hub_task_status(t)) for t in tasks],
            "can_manage_tokens": access.can(Action.MANAGE_TOKENS),
            "form": form or ApiTokenForm(),
            "import_form": import_form or PlanningImportForm(),
            "can_import_prds": access.can(Action.EDIT_PRDS),
            "new_token": new_token,
            "hub_url": absolute_url("/hub", request),
        },
        status=status,
    )


@require_GET
def hub_page(request: HttpRequest, slug: str) -> HttpResponse:
    return _render(request, project_access(user=request.user, slug=slug))


@require_POST
def token_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.MANAGE_TOKENS)
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            token, raw = services.api_token_create(project=access.project, name=form.cleaned_data["name"], user=request.user)
        except ApplicationError as exc:
            form.add_error(exc.extra.get("field"), exc.message)
        else:
            # Shown in this response only: never stored, never put in a message or a redirect.
            return _render(request, access, new_token=raw, status=201)
    return _render(request, access, form=form, status=400)


@require_POST
def token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.MANAGE_TOKENS)
    token = get_object_or_404(ApiToken, pk=token_id, project=access.project)
    try:
        services.api_token_revoke(token=token)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Token {token.prefix}… is revoked; agents using it now get 401.")
    return redirect("hub_page", slug=access.project.slug)


@require_POST
def prds_import(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_PRDS)
    form = PlanningImportForm(request.POST)
    if form.is_valid():
        try:
            prds, _summaries = services.prds_import_planning(project=access.project, path=form.cleaned_data["path"])
        except ApplicationError as exc:
            form.add_error("path", exc.message)
        else:
            messages.success(request, f"Imported {len(prds)} PRDs from Task Master; the latest is {prds[-1].reference}.")
            return redirect("hub_page", slug=access.project.slug)
    return _render(request, access, import_form=form, status=422)


@require_GET
def task_page(request: HttpRequest, slug: str, task_id: str) -> HttpResponse:
    """A task's stable address in the project: its live session page."""
    access = project_access(user=request.user, slug=slug)
    try:
        task = selectors.hub_task_get(project=access.project, task_id=task_id)
    except ApplicationError:
        raise Http404("No such task.") from None
    if task.session_id is None:
        return redirect("hub_page", slug=access.project.slug)
    return redirect(task.session)
