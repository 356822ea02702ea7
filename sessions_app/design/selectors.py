"""Reads of the design a session produces (SPEC §3a): the brief, the proposal versions, the
plan and the integration checklist, shaped for the session page, the validation point cards,
the diagram compare page, the final report and the export document.

Everything here reads rows the engine wrote; nothing is computed from model text except by
validating it against :mod:`sessions_app.design.schema`.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from sessions_app.design.models import DesignProposal
from sessions_app.design.proposal import diff_is_empty, proposal_diff, proposal_lines
from sessions_app.design.schema import Brief, PlanItem, ProposalContent
from sessions_app.models import DesignSession, DiagramVersion, ValidationPoint, ValidationResponse


def proposal_latest(session: DesignSession) -> DesignProposal | None:
    return (
        DesignProposal.objects.filter(session=session)
        .select_related("round", "diagram_version__diagram")
        .order_by("-version")
        .first()
    )


def proposal_content(proposal: DesignProposal | None) -> ProposalContent:
    return ProposalContent.model_validate(proposal.content or {}) if proposal is not None else ProposalContent()


def brief_of(session: DesignSession) -> Brief | None:
    return Brief.model_validate(session.brief) if session.brief else None


def plan_of(session: DesignSession) -> list[PlanItem]:
    return sorted((PlanItem.model_validate(item) for item in session.plan or []), key=lambda i: i.order)


def specialist_names(session: DesignSession) -> dict[str, str]:
    """slug → display name for the session's team (plan items carry slugs)."""
    names = {m["specialist"]: m["name"] for m in session.team or [] if not m.get("is_user") and m.get("specialist")}
    names["user"] = "USER"
    names["maestro"] = "Maestro"
    return names


# -- the session page ----------------------------------------------------------------------


def brief_view(session: DesignSession) -> dict | None:
    brief = brief_of(session)
    if brief is None:
        return None
    values: dict[str, set[str]] = defaultdict(set)
    for c in brief.constraints:
        values[c.kind].add(c.value.strip().lower())
    # Two different figures for one kind of constraint (100 ms asked, 300 ms in the PRD) is a
    # conflict the person must see next to the numbers, not only in the conflicts list.
    clashing = {kind for kind, vals in values.items() if len(vals) > 1}
    return {
        "brief": brief,
        "constraints": [{"c": c, "conflict": c.kind in clashing} for c in brief.constraints],
        "new_services": brief.new_services,
        "touched": brief.touched_services,
    }


def proposal_view(session: DesignSession, proposal: DesignProposal | None = None) -> dict | None:
    """The latest (or given) proposal with its diff against the previous version and its links."""
    proposal = proposal or proposal_latest(session)
    if proposal is None:
        return None
    content = proposal_content(proposal)
    diff = proposal.diff or {}
    diagram = proposal.diagram_version.diagram if proposal.diagram_version_id else None
    links = {}
    if diagram is not None:
        slug = session.project.slug
        compare = reverse("diagram_compare", kwargs={"slug": slug, "diagram_id": diagram.pk})
        number = proposal.diagram_version.number
        links = {
            "diagram": reverse("diagram_detail", kwargs={"slug": slug, "diagram_id": diagram.pk}) + f"?version={number}",
            "compare_current": f"{compare}?a=current&b={number}",
            "compare_previous": f"{compare}?a={number - 1}&b={number}" if number > 1 else "",
        }
    return {
        "p": proposal,
        "content": content,
        "services": content.services,
        "edges": content.edges,
        "events": content.events,
        "ownership": content.data_ownership,
        "risks": content.risks,
        "diff": {k: list(diff.get(k) or []) for k in ("added", "removed", "changed")},
        "diff_empty": diff_is_empty(diff),
        "previous": proposal.version - 1 if proposal.version > 1 else None,
        "links": links,
    }


def plan_view(session: DesignSession) -> dict:
    names = specialist_names(session)
    items = [
        {"item": item, "specialist": names.get(item.specialist, item.specialist or "—")}
        for item in plan_of(session)
    ]
    return {"items": items, "checks": list(session.checklist or [])}


def proposal_compare(left: DiagramVersion, right: DiagramVersion, *, against_current: bool) -> dict | None:
    """What the proposal says between two compared diagram versions: against the current cluster,
    every item of the right-hand proposal; between two proposal versions, their diff."""
    proposals = {
        p.diagram_version_id: p for p in DesignProposal.objects.filter(diagram_version__in=[left.pk, right.pk])
    }
    new = proposals.get(right.pk)
    if new is None:
        return None
    if against_current:
        return {"p": new, "lines": proposal_lines(proposal_content(new)), "diff": None}
    old = proposals.get(left.pk)
    return {"p": new, "old": old, "lines": None,
            "diff": proposal_diff(proposal_content(old) if old else None, proposal_content(new))}


# -- validation point cards ----------------------------------------------------------------


def _seen_version(point: ValidationPoint, user: AbstractBaseUser | None) -> int | None:
    """K of "what changed since vK": the proposal version the user's last response in this
    session saw; else the version shown at the previous point of the same gate."""
    if user is not None and user.is_authenticated:
        version = (
            ValidationResponse.objects.filter(point__session_id=point.session_id, user=user, proposal_seen__isnull=False)
            .exclude(point=point)
            .order_by("-created_at", "-id")
            .values_list("proposal_seen__version", flat=True)
            .first()
        )
        if version is not None:
            return version
    previous = (
        ValidationPoint.objects.filter(session_id=point.session_id, gate=point.gate, opened_at__lt=point.opened_at)
        .exclude(pk=point.pk)
        .order_by("-opened_at", "-id")
        .first()
    )
    if previous is None:
        return None
    version = (
        previous.responses.filter(proposal_seen__isnull=False)
        .order_by("-created_at", "-id")
        .values_list("proposal_seen__version", flat=True)
        .first()
    )
    if version is not None:
        return version
    # Nobody answered it (it expired or was cancelled): the version current when it closed.
    shown = DesignProposal.objects.filter(session_id=point.session_id)
    if previous.closed_at is not None:
        shown = shown.filter(created_at__lte=previous.closed_at)
    return shown.order_by("-version").values_list("version", flat=True).first()


def point_design_view(point: ValidationPoint, user: AbstractBaseUser | None, proposal: DesignProposal | None) -> dict | None:
    """What a validation point card shows of the design: the proposal's version, its diagram
    (ASCII of the proposed cluster) and what changed since the version the person last saw."""
    if proposal is None:
        return None
    since = _seen_version(point, user)
    changes = None
    if since is not None and since != proposal.version:
        old = DesignProposal.objects.filter(session_id=point.session_id, version=since).first()
        changes = proposal_diff(proposal_content(old) if old else None, proposal_content(proposal))
    return {
        "p": proposal,
        "ascii": proposal.diagram_version.ascii if proposal.diagram_version_id else "",
        "since": since,
        "changes": changes,
        "unchanged": since == proposal.version,
    }


# -- documents (export, start_session --json, the report) ----------------------------------


def proposal_document(proposal: DesignProposal | None) -> dict | None:
    if proposal is None:
        return None
    c = proposal_content(proposal)
    return {
        "version": proposal.version,
        "round": proposal.round.number if proposal.round_id else None,
        "author_kind": proposal.author_kind,
        "author": proposal.author_name,
        "reason": proposal.reason,
        "services": [
            {"name": s.name, "change": s.change, "kind": s.kind, "responsibility": s.responsibility, "store": s.store}
            for s in c.services
        ],
        "edges": [
            {"source": e.source, "target": e.target, "protocol": e.protocol, "mode": e.mode, "change": e.change}
            for e in c.edges
        ],
        "events": [
            {"name": e.name, "producer": e.producer, "consumers": list(e.consumers), "fields": list(e.fields)}
            for e in c.events
        ],
        "data_ownership": [{"data": d.data, "owner": d.owner} for d in c.data_ownership],
        "risks": list(c.risks),
        "diagram_version": proposal.diagram_version.number if proposal.diagram_version_id else None,
    }


def proposal_versions_document(session: DesignSession) -> list[dict]:
    rows = DesignProposal.objects.filter(session=session).select_related("round").order_by("version")
    return [
        {
            "version": p.version,
            "round": p.round.number if p.round_id else None,
            "author_kind": p.author_kind,
            "author": p.author_name,
            "contributors": list(p.contributors or []),
            "reason": p.reason,
            "diff": {k: list((p.diff or {}).get(k) or []) for k in ("added", "removed", "changed")},
        }
        for p in rows
    ]


def plan_document(session: DesignSession) -> list[dict]:
    return [
        {
            "order": i.order, "specialist": i.specialist, "service": i.service, "task": i.task,
            "depends_on": list(i.depends_on), "acceptance": i.acceptance,
        }
        for i in plan_of(session)
    ]
