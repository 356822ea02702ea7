"""Inventory pages: services, edges, revisions, findings, import and hand edits."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from teams_app.errors import ApplicationError
from teams_app.inventory import selectors, services
from teams_app.inventory.forms import DependencyForm, ImportForm, ServiceForm
from teams_app.inventory.rules import rules_reference
from teams_app.inventory.types import ROLE_LABELS, ROLES, SEVERITIES
from teams_app.permissions import Action
from teams_app.selectors import project_access, project_access_for


@require_GET
def inventory_detail(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    return _render_inventory(request, access)


def _render_inventory(request, access, *, import_form=None, service_form=None, dependency_form=None, status=200):
    project = access.project
    revision, inventory = selectors.inventory_current(project=project)
    findings = selectors.findings_for_project(project=project)
    role = request.GET.get("role", "")
    severity = request.GET.get("severity", "")
    shown = [f for f in findings if (not role or f.role == role) and (not severity or f.severity == severity)]
    revisions = list(project.inventory_revisions.select_related("created_by").order_by("-number")[:50])
    # Grouped once here: the template used to loop over every edge for every service, which is
    # quadratic (1.8 s to render 300 services and 843 edges; 0.13 s grouped).
    outgoing: dict[str, list] = {}
    for dep in sorted(inventory.dependencies, key=lambda d: (d.source, d.target)):
        outgoing.setdefault(dep.source, []).append(dep)
    ordered = sorted(inventory.services, key=lambda s: (s.kind, s.name))
    return render(
        request,
        "teams_app/inventory.html",
        {
            "project": project, "access": access, "tab": "inventory", "revision": revision,
            "services": ordered,
            "service_rows": [(spec, outgoing.get(spec.name, [])) for spec in ordered],
            "dependencies": sorted(inventory.dependencies, key=lambda d: (d.source, d.target)),
            "findings": shown, "summary": selectors.findings_summary(findings), "total_findings": len(findings),
            "roles": [(r, ROLE_LABELS[r]) for r in ROLES], "severities": SEVERITIES,
            "role": role, "severity": severity, "revisions": revisions,
            "can_edit": access.can(Action.EDIT_INVENTORY),
            "import_form": import_form or ImportForm(),
            "service_form": service_form or ServiceForm(names=[s.name for s in inventory.services]),
            "dependency_form": dependency_form or DependencyForm(),
        },
        status=status,
    )


@require_POST
def inventory_import(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_INVENTORY)
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            revision = services.inventory_import(
                project=access.project, text=form.cleaned_data["text"], fmt=form.cleaned_data["format"],
                user=request.user, source_name=form.cleaned_data["source_name"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Imported revision {revision.number}: {revision.services.count()} services, "
                f"{revision.dependencies.count()} dependencies."
            )
            return redirect("inventory_detail", slug=slug)
    return _render_inventory(request, access, import_form=form, status=400)


def _edit(request: HttpRequest, slug: str, form_class, call, form_key: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_INVENTORY)
    if form_class is ServiceForm:
        _, inventory = selectors.inventory_current(project=access.project)
        form = ServiceForm(request.POST, names=[s.name for s in inventory.services])
    else:
        form = form_class(request.POST)
    if form.is_valid():
        try:
            revision = call(access.project, form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(exc.extra.get("field"), exc.message)
        else:
            messages.success(request, f"Saved as revision {revision.number}: {revision.note}.")
            return redirect("inventory_detail", slug=slug)
    return _render_inventory(request, access, status=400, **{form_key: form})


@require_POST
def service_save(request: HttpRequest, slug: str) -> HttpResponse:
    return _edit(request, slug, ServiceForm,
                 lambda project, data: services.service_save(project=project, user=request.user, **data), "service_form")


@require_POST
def dependency_add(request: HttpRequest, slug: str) -> HttpResponse:
    return _edit(request, slug, DependencyForm,
                 lambda project, data: services.dependency_add(project=project, user=request.user, **data), "dependency_form")


@require_POST
def service_remove(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_INVENTORY)
    try:
        revision = services.service_remove(project=access.project, user=request.user, name=request.POST.get("name", ""))
        messages.success(request, f"Saved as revision {revision.number}: {revision.note}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("inventory_detail", slug=slug)


@require_POST
def dependency_remove(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_INVENTORY)
    source, target = request.POST.get("source", ""), request.POST.get("target", "")
    if "edge" in request.POST:  # the page's per-edge buttons send "source target" (names have no spaces)
        source, _, target = request.POST["edge"].partition(" ")
    try:
        revision = services.dependency_remove(project=access.project, user=request.user, source=source, target=target)
        messages.success(request, f"Saved as revision {revision.number}: {revision.note}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("inventory_detail", slug=slug)


@require_GET
def inventory_compare(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    numbers = list(access.project.inventory_revisions.order_by("-number").values_list("number", flat=True))
    try:
        # With a single revision, compare it with itself ("identical") rather than answer 400.
        a = int(request.GET.get("a") or (numbers[1] if len(numbers) > 1 else numbers[0] if numbers else 0))
        b = int(request.GET.get("b") or (numbers[0] if numbers else 0))
    except ValueError:
        a = b = 0
    valid = a in numbers and b in numbers
    diff = selectors.revisions_diff(project=access.project, a=a, b=b) if valid else None
    return render(request, "teams_app/inventory_compare.html",
                  {"project": access.project, "access": access, "tab": "inventory", "a": a, "b": b,
                   "numbers": numbers, "diff": diff, "valid": valid}, status=200 if valid or not numbers else 400)


@require_GET
def rules_page(request: HttpRequest) -> HttpResponse:
    rules = rules_reference()
    return render(request, "teams_app/rules_reference.html", {"rules": rules, "roles": [(r, ROLE_LABELS[r]) for r in ROLES]})
