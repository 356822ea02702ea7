"""Diagram pages: list, history with the current rendering, compare, hand edit."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from sessions_app.design.selectors import proposal_compare
from sessions_app.diagrams.diff import side_by_side, unified_diff
from sessions_app.diagrams.services import diagram_current_version, diagram_version_save
from sessions_app.forms import MermaidEditForm
from sessions_app.models import Diagram
from teams_app.errors import ApplicationError
from teams_app.permissions import Action
from teams_app.selectors import project_access, project_access_for


@require_GET
def diagram_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    diagrams = access.project.diagrams.prefetch_related("versions").order_by("kind", "id")
    return render(
        request,
        "sessions_app/diagram_list.html",
        {
            "project": access.project,
            "access": access,
            "tab": "diagrams",
            "diagrams": diagrams,
        },
    )


def _diagram(access, diagram_id: int) -> Diagram:
    return get_object_or_404(Diagram, pk=diagram_id, project=access.project)


@require_GET
def diagram_detail(request: HttpRequest, slug: str, diagram_id: int) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    return _render_detail(request, access, _diagram(access, diagram_id))


def _render_detail(request, access, diagram, form=None, status=200):
    versions = list(diagram.versions.select_related("author_user", "inventory_revision").order_by("-number"))
    number = request.GET.get("version")
    current = next(
        (v for v in versions if str(v.number) == number),
        versions[0] if versions else None,
    )
    return render(
        request,
        "sessions_app/diagram_detail.html",
        {
            "project": access.project,
            "access": access,
            "tab": "diagrams",
            "diagram": diagram,
            "versions": versions,
            "version": current,
            "can_edit": access.can(Action.EDIT_INVENTORY),
            "form": form or MermaidEditForm(initial={"mermaid": current.mermaid if current else ""}),
        },
        status=status,
    )


@require_POST
def diagram_edit(request: HttpRequest, slug: str, diagram_id: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_INVENTORY)
    diagram = _diagram(access, diagram_id)
    form = MermaidEditForm(request.POST)
    if form.is_valid():
        try:
            version = diagram_version_save(
                diagram=diagram,
                mermaid=form.cleaned_data["mermaid"],
                user=request.user,
                note=form.cleaned_data["note"],
            )
        except ApplicationError as exc:
            form.add_error("mermaid", exc.message)
        else:
            messages.success(request, f"Saved version {version.number}.")
            return redirect("diagram_detail", slug=slug, diagram_id=diagram.pk)
    return _render_detail(request, access, diagram, form=form, status=400)


CURRENT = "current"  # the compare page's name for the project's current cluster diagram


def _number(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@require_GET
def diagram_compare(request: HttpRequest, slug: str, diagram_id: int) -> HttpResponse:
    """Two versions side by side with their text diff. A session's proposed diagram is also
    compared with the current cluster (``a=current``, its default)."""
    access = project_access(user=request.user, slug=slug)
    diagram = _diagram(access, diagram_id)
    versions = {v.number: v for v in diagram.versions.all()}
    numbers = sorted(versions, reverse=True)
    current = diagram_current_version(project=access.project) if diagram.kind == Diagram.Kind.PROPOSED else None
    if current is not None:
        default_a = CURRENT
    else:
        default_a = str(numbers[1] if len(numbers) > 1 else numbers[0]) if numbers else ""
    raw_a = request.GET.get("a") or default_a
    b = _number(request.GET.get("b") or (str(numbers[0]) if numbers else None))
    a = CURRENT if raw_a == CURRENT and current is not None else _number(raw_a)
    va = current if a == CURRENT else versions.get(a)
    vb = versions.get(b)
    label_a = f"Current cluster v{current.number}" if a == CURRENT else f"v{a}"
    context = {
        "project": access.project,
        "access": access,
        "tab": "diagrams",
        "diagram": diagram,
        "numbers": numbers,
        "current": current,
        "a": a,
        "b": b,
        "va": va,
        "vb": vb,
        "label_a": label_a,
        "label_b": f"v{b}",
    }
    if va and vb:
        context["unified"] = unified_diff(va.mermaid, vb.mermaid, label_a, f"v{b}")
        context["rows"] = side_by_side(va.mermaid, vb.mermaid)
        context["proposal"] = proposal_compare(va, vb, against_current=a == CURRENT)
    return render(
        request,
        "sessions_app/diagram_compare.html",
        context,
        status=200 if va and vb else 400,
    )
