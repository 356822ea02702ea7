"""Writes of the design: the brief, proposal versions (each with its proposed diagram
version), the plan and the checklist. Each records its event in the caller's transaction.

Precondition for all: called inside the engine's transaction with the session row locked.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.design.models import DesignProposal
from sessions_app.design.proposal import apply_to_inventory, proposal_diff
from sessions_app.design.schema import Brief, PlanItem, ProposalContent
from sessions_app.diagrams.ascii import render_ascii
from sessions_app.diagrams.mermaid import render_mermaid
from sessions_app.models import DesignSession, Diagram, DiagramVersion, Round
from teams_app.inventory.types import ParsedInventory


def brief_record(*, session: DesignSession, brief: Brief) -> None:
    session.brief = brief.model_dump()
    session.save(update_fields=["brief", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.BriefReady())


def proposal_latest(session: DesignSession) -> DesignProposal | None:
    return DesignProposal.objects.filter(session=session).order_by("-version").first()


def proposal_content(proposal: DesignProposal | None) -> ProposalContent:
    return ProposalContent.model_validate(proposal.content) if proposal else ProposalContent()


def _proposed_diagram(session: DesignSession) -> Diagram:
    diagram, _ = Diagram.objects.get_or_create(
        project=session.project, session=session, kind=Diagram.Kind.PROPOSED,
        defaults={"title": f"Proposed: {session.title}"[:200]},
    )
    return diagram


def proposal_render(inventory: ParsedInventory, content: ProposalContent, *, title: str = "Proposed Architecture") -> tuple[str, str]:
    """(Mermaid, ASCII) of the cluster with the proposal applied, new and changed parts highlighted."""
    proposed, marked, marked_edges = apply_to_inventory(inventory, content)
    mermaid = render_mermaid(proposed, highlight_services=marked, highlight_edges=marked_edges)
    ascii_view = render_ascii(proposed, title=title, highlight_services=marked)
    return mermaid, ascii_view


@transaction.atomic
def proposal_record(
    *, session: DesignSession, content: ProposalContent, inventory: ParsedInventory, reason: str,
    round: Round | None = None, author_kind: str = DesignProposal.Author.MAESTRO, author_name: str = "Maestro",
    contributors: list[str] | None = None,
) -> DesignProposal | None:
    """A new proposal version and its proposed diagram version; None when nothing changed."""
    previous = proposal_latest(session)
    old = proposal_content(previous) if previous else None
    if old is not None and old == content:
        return None
    version = (previous.version if previous else 0) + 1
    mermaid, ascii_view = proposal_render(inventory, content)
    diagram = _proposed_diagram(session)
    last_number = diagram.versions.order_by("-number").values_list("number", flat=True).first() or 0
    kind = {
        DesignProposal.Author.SPECIALIST: DiagramVersion.Author.SPECIALIST,
        DesignProposal.Author.USER: DiagramVersion.Author.USER,
    }.get(author_kind, DiagramVersion.Author.SYSTEM)
    dv = DiagramVersion.objects.create(
        diagram=diagram, number=last_number + 1, mermaid=mermaid, ascii=ascii_view,
        inventory_revision=session.inventory_revision, author_kind=kind,
        author_specialist=author_name if kind == DiagramVersion.Author.SPECIALIST else "",
        note=f"Proposal v{version}: {reason}"[:300],
    )
    proposal = DesignProposal.objects.create(
        session=session, version=version, round=round, author_kind=author_kind, author_name=author_name,
        contributors=list(contributors or []), reason=reason, content=content.model_dump(),
        diff=proposal_diff(old, content), diagram_version=dv,
    )
    events.event_emit(session_id=session.pk, event=events.ProposalUpdated(proposal_id=proposal.pk, version=version))
    return proposal


def plan_record(*, session: DesignSession, plan: list[PlanItem]) -> None:
    session.plan = [p.model_dump(exclude={"depends_on_keys"}) for p in plan]
    session.save(update_fields=["plan", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.PlanUpdated(items=len(plan), checks=len(session.checklist)))


def checklist_record(*, session: DesignSession, checks: list[tuple[str, str]]) -> None:
    """``checks``: (check, where it came from) pairs, deduplicated in order."""
    seen: dict[str, str] = {}
    for check, source in checks:
        seen.setdefault(check, source)
    session.checklist = [{"check": c, "source": s} for c, s in seen.items()]
    session.save(update_fields=["checklist", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.PlanUpdated(items=len(session.plan), checks=len(session.checklist)))


def now_label() -> str:
    return timezone.now().strftime("%Y-%m-%d %H:%M UTC")
