"""Project pages. Interfaces only: parse, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from teams_app import selectors, services
from teams_app.errors import ApplicationError
from teams_app.forms import MembershipForm, MembershipRoleForm, PRDForm, ProjectForm
from teams_app.links import absolute_url
from teams_app.models import Membership
from teams_app.permissions import Action


def _form_error(form, exc: ApplicationError) -> None:
    form.add_error(exc.extra.get("field"), exc.message)


@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    projects = selectors.projects_for_user(user=request.user)
    return render(request, "teams_app/project_list.html", {"projects": projects})


@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(created_by=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Project {project.name} created. You are its owner.")
            return redirect(project)
    return render(request, "teams_app/project_form.html", {"form": form}, status=400 if form.errors else 200)


@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    from sessions_app.diagrams.services import diagram_current_version
    from sessions_app.selectors import sessions_for_project
    from teams_app.inventory.selectors import findings_for_project, findings_summary

    access = selectors.project_access(user=request.user, slug=slug)
    project = access.project
    findings = findings_for_project(project=project)
    context = {
        "project": project,
        "access": access,
        "tab": "overview",
        "memberships": selectors.memberships_for_project(project=project),
        "prds": project.prds.all(),
        "latest_prd": selectors.prd_latest_active(project=project),
        "cluster_version": diagram_current_version(project=project),
        "findings_summary": findings_summary(findings) if findings else None,
        "active_sessions": [s for s in sessions_for_project(project=project)[:20] if s.is_active],
        "can_manage_members": access.can(Action.MANAGE_MEMBERS),
        "can_edit_prds": access.can(Action.EDIT_PRDS),
        "can_edit_inventory": access.can(Action.EDIT_INVENTORY),
        "can_run_sessions": access.can(Action.RUN_SESSIONS),
    }
    return render(request, "teams_app/project_detail.html", context)


@require_GET
def project_team(request: HttpRequest, slug: str) -> HttpResponse:
    from django.conf import settings

    access = selectors.project_access(user=request.user, slug=slug)
    return render(
        request,
        "teams_app/project_team.html",
        {
            "project": access.project,
            "access": access,
            "tab": "team",
            "templates": selectors.team_templates_all(),
            "specialists": selectors.specialists_all(),
            "project_provider": access.project.provider or settings.MAESTRO_PROVIDER,
        },
    )


@require_http_methods(["GET", "POST"])
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    """The Members page: everyone sees who is on the project and who answers validation
    points; owners invite people by username or email and change roles."""
    access = selectors.project_access(user=request.user, slug=slug)
    form = MembershipForm(request.POST or None)
    if request.method == "POST":
        access.require(Action.MANAGE_MEMBERS)
        if form.is_valid():
            try:
                membership, created = services.membership_invite(
                    project=access.project, identifier=form.cleaned_data["username"], role=form.cleaned_data["role"],
                    set_password_url=lambda user: _set_password_url(request, user),
                )
            except ApplicationError as exc:
                _form_error(form, exc)
            else:
                who = membership.user.get_username()
                note = f" An email to {membership.user.email} has a link to choose a password." if created else ""
                messages.success(request, f"{who} added as {membership.get_role_display()}.{note}")
                return redirect("project_members", slug=slug)
    return render(
        request, "teams_app/project_members.html",
        {"project": access.project, "access": access, "tab": "members", "form": form,
         "memberships": selectors.memberships_for_project(project=access.project),
         "roles": Membership.Role.choices, "can_manage_members": access.can(Action.MANAGE_MEMBERS)},
        status=400 if form.errors else 200,
    )


@require_POST
def membership_role(request: HttpRequest, slug: str) -> HttpResponse:
    access = selectors.project_access_for(user=request.user, slug=slug, action=Action.MANAGE_MEMBERS)
    form = MembershipRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("project_members", slug=slug)
    try:
        membership = services.membership_set_role(
            project=access.project, membership_id=form.cleaned_data["membership"], role=form.cleaned_data["role"]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display()}.")
    return redirect("project_members", slug=slug)


def _set_password_url(request: HttpRequest, user) -> str:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    path = reverse("password_reset_confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user),
    })
    return absolute_url(path, request)


@require_http_methods(["GET", "POST"])
def prd_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = selectors.project_access_for(user=request.user, slug=slug, action=Action.EDIT_PRDS)
    form = PRDForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            prd = services.prd_create(project=access.project, **form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"{prd.reference} added.")
            return redirect(f"{access.project.get_absolute_url()}#prds")
    return render(
        request, "teams_app/prd_form.html", {"form": form, "project": access.project}, status=400 if form.errors else 200
    )


@require_GET
def specialist_detail(request: HttpRequest, slug: str) -> HttpResponse:
    from django.shortcuts import get_object_or_404

    from teams_app.models import Specialist

    specialist = get_object_or_404(Specialist, slug=slug)
    return render(request, "teams_app/specialist_detail.html", {"specialist": specialist})
