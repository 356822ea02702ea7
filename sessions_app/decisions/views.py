"""Decision log pages (§8, §13). Interfaces only: parse, call one service or selector, render.

Project members read; owners, architects and product owners (``Action.EDIT_DECISIONS``) write.
Non-members get 404 from ``project_access``; members without the role get 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app.decisions import madr, selectors
from sessions_app.decisions.forms import (
    PAGE_SIZES,
    DecisionFilterForm,
    DecisionForm,
    LinkForm,
    OptionFormSet,
    StatusForm,
    chosen_is_an_option,
    options_from_formset,
    options_initial,
)
from sessions_app.decisions.models import Decision
from sessions_app.decisions.services import writes
from teams_app.errors import ApplicationError
from teams_app.permissions import Action
from teams_app.selectors import ProjectAccess, project_access, project_access_for

D = Decision.Status


def _base(access: ProjectAccess, **extra: Any) -> dict[str, Any]:
    return {
        "project": access.project,
        "access": access,
        "tab": "decisions",
        "can_edit": access.can(Action.EDIT_DECISIONS),
        **extra,
    }


@require_GET
def decision_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    form = DecisionFilterForm(request.GET)
    filters = form.filters()
    paginator = Paginator(selectors.decisions_for_project(project=access.project, filters=filters), form.page_size())
    page = paginator.get_page(request.GET.get("page"))
    context = _base(
        access,
        form=form,
        filters=filters,
        page=page,
        per_page=paginator.per_page,
        page_sizes=PAGE_SIZES,
        # Rows link to f"{decisions_url}{number}/" (see urls.py): one reverse() per page, not per row.
        decisions_url=reverse("decision_list", kwargs={"slug": slug}),
    )
    if request.htmx:  # only the results region: the filter form (and its choices) stays on the page
        return render(request, "sessions_app/decisions/partials/results.html", context)
    context["choices"] = selectors.decision_filter_choices(project=access.project)
    return render(request, "sessions_app/decisions/list.html", context)


@require_GET
def decision_detail(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    decision = selectors.decision_get(project=access.project, number=number)
    return render(
        request,
        "sessions_app/decisions/detail.html",
        _base(
            access,
            decision=decision,
            detail=selectors.decision_detail(decision=decision),
            status_form=StatusForm(decision=decision),
            link_form=LinkForm(),
        ),
    )


def _render_form(
    request: HttpRequest,
    access: ProjectAccess,
    *,
    form: DecisionForm,
    formset: Any,
    mode: str,
    decision: Decision | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "sessions_app/decisions/form.html",
        _base(access, form=form, formset=formset, mode=mode, decision=decision),
        status=status,
    )


def _valid(form: DecisionForm, formset: Any) -> bool:
    forms_ok = form.is_valid() & formset.is_valid()
    return forms_ok and chosen_is_an_option(form, options_from_formset(formset))


def _save(form: DecisionForm, formset: Any, call) -> Any:
    """Validate the form and its options, call the service; a refusal lands on the form.
    Returns the service's result, or None when the form is to be shown again."""
    if not _valid(form, formset):
        return None
    try:
        return call(options_from_formset(formset))
    except ApplicationError as exc:
        form.add_error(exc.extra.get("field") if exc.extra.get("field") in form.fields else None, exc.message)
        return None


@require_http_methods(["GET", "POST"])
def decision_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_DECISIONS)
    project = access.project
    if request.method == "GET":
        return _render_form(
            request, access, form=DecisionForm(project=project), formset=OptionFormSet(prefix="options"), mode="create"
        )
    form, formset = DecisionForm(request.POST, project=project), OptionFormSet(request.POST, prefix="options")
    decision = _save(form, formset, lambda options: writes.decision_create(
        project=project, user=request.user, status=form.cleaned_data["status"], options=options,
        **form.service_fields(),
    ))
    if decision is not None:
        messages.success(request, f"Recorded {decision.adr_id}.")
        return redirect("decision_detail", slug=slug, number=decision.number)
    return _render_form(request, access, form=form, formset=formset, mode="create", status=400)


@require_http_methods(["GET", "POST"])
def decision_edit(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_DECISIONS)
    decision = selectors.decision_get(project=access.project, number=number)
    if not decision.is_editable:
        messages.error(
            request,
            writes.ACCEPTED_IS_FINAL
            if decision.status == D.ACCEPTED
            else writes.CLOSED_IS_FINAL.format(status=decision.get_status_display().lower()),
        )
        return redirect("decision_detail", slug=slug, number=number)
    if request.method == "GET":
        form = DecisionForm(project=access.project, statuses=None, initial=DecisionForm.initial_for(decision))
        formset = OptionFormSet(prefix="options", initial=options_initial(decision))
        return _render_form(request, access, form=form, formset=formset, mode="edit", decision=decision)
    form = DecisionForm(request.POST, project=access.project, statuses=None)
    formset = OptionFormSet(request.POST, prefix="options")
    saved = _save(form, formset, lambda options: writes.decision_update(
        decision=decision, user=request.user, options=options, **form.service_fields()
    ))
    if saved is not None:
        messages.success(request, f"Saved {decision.adr_id}.")
        return redirect("decision_detail", slug=slug, number=number)
    return _render_form(request, access, form=form, formset=formset, mode="edit", decision=decision, status=400)


@require_http_methods(["GET", "POST"])
def decision_supersede(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_DECISIONS)
    old = selectors.decision_get(project=access.project, number=number)
    if old.status not in (D.ACCEPTED, D.SUPERSEDED):
        messages.error(request, writes.NOT_SUPERSEDABLE)
        return redirect("decision_detail", slug=slug, number=number)
    statuses = (D.DRAFT, D.PROPOSED, D.ACCEPTED)
    if request.method == "GET":
        form = DecisionForm(project=access.project, statuses=statuses, initial=DecisionForm.initial_for(old))
        formset = OptionFormSet(prefix="options", initial=options_initial(old))
        return _render_form(request, access, form=form, formset=formset, mode="supersede", decision=old)
    form = DecisionForm(request.POST, project=access.project, statuses=statuses)
    formset = OptionFormSet(request.POST, prefix="options")
    new = _save(form, formset, lambda options: writes.decision_supersede(
        old=old, user=request.user, status=form.cleaned_data["status"], options=options, **form.service_fields()
    ))
    if new is not None:
        messages.success(request, f"{new.adr_id} supersedes {old.adr_id}.")
        return redirect("decision_detail", slug=slug, number=new.number)
    return _render_form(request, access, form=form, formset=formset, mode="supersede", decision=old, status=400)


@require_POST
def decision_status(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_DECISIONS)
    decision = selectors.decision_get(project=access.project, number=number)
    form = StatusForm(request.POST, decision=decision)
    if not form.is_valid():
        messages.error(request, "Choose one of the statuses offered.")
    else:
        try:
            writes.decision_set_status(
                decision=decision,
                to_status=form.cleaned_data["to_status"],
                actor=request.user,
                note=form.cleaned_data["note"],
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{decision.adr_id} is now {D(form.cleaned_data['to_status']).label.lower()}.")
    return redirect("decision_detail", slug=slug, number=number)


@require_POST
def decision_link_add(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access_for(user=request.user, slug=slug, action=Action.EDIT_DECISIONS)
    decision = selectors.decision_get(project=access.project, number=number)
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a link kind and an ADR number.")
        return redirect("decision_detail", slug=slug, number=number)
    target = selectors.decision_get(project=access.project, number=form.cleaned_data["target"])
    try:
        writes.decision_link(
            from_decision=decision, to_decision=target, kind=form.cleaned_data["kind"], user=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Linked {decision.adr_id} to {target.adr_id}.")
    return redirect("decision_detail", slug=slug, number=number)


@require_GET
def decision_markdown(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    selectors.decision_get(project=access.project, number=number)  # 404 for an unknown number
    (row,) = selectors.decisions_for_export(project=access.project, numbers=[number])
    response = HttpResponse(madr.render(row), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{row.file_name}"'
    return response


@require_GET
def decisions_export_zip(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(user=request.user, slug=slug)
    fmt = request.GET.get("format", "madr4")
    if fmt not in madr.FORMATS:  # bad input changes nothing: say what is offered
        return HttpResponse(
            f"Unknown format {fmt[:40]!r}; use one of {', '.join(madr.FORMATS)}.", status=400, content_type="text/plain"
        )
    content = madr.export_zip(selectors.decisions_for_export(project=access.project), fmt=fmt)
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{access.project.slug}-decisions.zip"'
    return response
