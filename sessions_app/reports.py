"""The final report (§11) and the continuation block, as markdown."""

from __future__ import annotations

from sessions_app.design import selectors as design
from sessions_app.design.proposal import apply_to_inventory
from sessions_app.diagrams.ascii import render_ascii
from sessions_app.engine import messages
from sessions_app.engine.checklist import DESIGN_GATE, VALIDATION_GATE
from sessions_app.engine.consensus import key_decisions
from sessions_app.engine.context import SessionContext
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Phase, ValidationPoint


def awaiting(session: DesignSession) -> str:
    S = DesignSession.Status
    if session.status == S.PAUSED_PRD:
        return "What PRD id/link should we attach?"
    if session.status == S.COMPLETED:
        return "nothing: the design is complete"
    if session.status == S.CANCELLED:
        return "nothing: the session was cancelled"
    point = session.validation_points.filter(state=ValidationPoint.State.OPEN).order_by("opened_at").first()
    if session.status == S.AWAITING_USER:
        return session.status_reason or (point.title if point else "your input")
    if point is not None:
        return f"{point.title} (optional while the team works)" if point.kind == "input" else point.title
    if session.status == S.PAUSED:
        return "resume when ready"
    return "the team is working; nothing yet"


def continuation(session: DesignSession, ctx: SessionContext | None = None) -> str:
    ctx = ctx or SessionContext.load(session)
    return messages.continuation_block(
        team=session.team_name,
        phase=session.phase_label,
        services=ctx.involved_services,
        awaiting=awaiting(session),
    )


def _adr_lines(session: DesignSession) -> list[str]:
    """Site-relative links: the report is stored, and made absolute where it leaves the site
    (``teams_app.links.absolute_links``), with the base URL of that moment."""
    from sessions_app.decisions.models import Decision

    adrs = Decision.objects.filter(session=session).select_related("project").order_by("number")
    return [f"- [{d.adr_id}]({d.get_absolute_url()}) {d.title} ({d.get_status_display().lower()})" for d in adrs]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "—"


def _design_sections(session: DesignSession, ctx: SessionContext) -> list[str]:
    """The approved proposal (its latest version), the plan, the checklist and the proposed cluster."""
    proposal = design.proposal_latest(session)
    if proposal is None:
        return ["## Proposal", "- no proposal was made", ""]
    content = design.proposal_content(proposal)
    # Approved when a person approved a gate that showed this version (design or validation).
    approved = session.validation_points.filter(
        gate__in=[DESIGN_GATE, VALIDATION_GATE], state=ValidationPoint.State.APPROVED, closed_at__gte=proposal.created_at
    ).exists()
    heading = f"## Approved proposal (v{proposal.version})" if approved else f"## Proposal (v{proposal.version}, not approved yet)"
    by = f"by {proposal.author_name}" + (f" in round {proposal.round.number}" if proposal.round_id else "")
    lines = [heading, "", f"Version {proposal.version} {by}" + (f": {proposal.reason}" if proposal.reason else "."), ""]
    groups = [
        ("Services", [f"{s.change} `{s.name}` [{s.kind}]" + (f": {s.responsibility}" if s.responsibility else "")
                      + (f" (owns {s.store})" if s.store else "") for s in content.services]),
        ("Edges", [f"{e.change} `{e.source}` → `{e.target}` {e.protocol} {e.mode}" + (f" ({e.purpose})" if e.purpose else "")
                   for e in content.edges]),
        ("Events and contracts", [f"{e.change} `{e.name}`: {e.producer} → {', '.join(e.consumers) or 'no consumer yet'}"
                                  + (f" {{{', '.join(e.fields)}}}" if e.fields else "") for e in content.events]),
        ("Data ownership", [f"{d.data} → `{d.owner}`" for d in content.data_ownership]),
        ("Open risks", list(content.risks)),
    ]
    for title, items in groups:
        if items:
            lines += [f"### {title}", *[f"- {x}" for x in items], ""]
    plan = design.plan_view(session)
    lines += ["## Implementation plan", ""]
    if plan["items"]:
        lines += ["| # | Specialist | Service | Task | Depends on | Acceptance |", "|---|---|---|---|---|---|"]
        for row in plan["items"]:
            i = row["item"]
            depends = ", ".join(f"#{d}" for d in i.depends_on)
            lines.append(f"| {i.order} | {_cell(row['specialist'])} | {_cell(i.service)} | {_cell(i.task)} | {depends or '—'} | {_cell(i.acceptance)} |")
    else:
        lines.append("- no plan yet")
    lines += ["", "## Integration checklist", ""]
    lines += [f"- [ ] {c['check']}" + (f" ({c['source']})" if c.get("source") else "") for c in plan["checks"]] or ["- no checks yet"]
    proposed, marked, _ = apply_to_inventory(ctx.inventory, content)
    lines += ["", "## Proposed cluster", "", "```",
              render_ascii(proposed, title="Proposed Architecture", highlight_services=marked).rstrip("\n"), "```", ""]
    return lines


def final_report(session: DesignSession, ctx: SessionContext) -> str:
    specialists = sorted({m["name"] for m in session.team if not m.get("is_user")})
    decisions = key_decisions(session)
    risks = [f"[{f.severity}] {f.rule}: {f.why}" for f in ctx.findings if f.severity in ("critical", "warning")][:15]
    failed = Contribution.objects.filter(session=session, status=Contribution.Status.FAILED).values_list("author_name", flat=True)
    conflicts = session.key_questions.filter(state=KeyQuestion.State.CONFLICT).values_list("ref", "text")
    follow_ups = [f"{name} did not contribute in one round; review its area by hand." for name in sorted(set(failed))]
    follow_ups += [f"{ref} is unresolved: {text}" for ref, text in conflicts]
    changes = [
        f"{p.title}: {p.get_state_display()}"
        + (f" — {r.comment}" if (r := p.responses.order_by("created_at").last()) and r.comment else "")
        if p.state != ValidationPoint.State.CANCELLED or p.responses.exists()
        else f"{p.title}: closed unanswered"  # the step it was for went by (the design agreed, the session over)
        for p in session.validation_points.exclude(state=ValidationPoint.State.OPEN).order_by("opened_at")
    ]
    lines = [
        f"# Final report: {session.title}",
        "",
        f"- **PRD**: {session.prd.reference if session.prd else 'none'}",
        f"- **Team**: {session.team_name} ({', '.join(specialists)})",
        f"- **Status**: {session.get_status_display()}"
        + ("" if session.phase == Phase.COMPLETED else f" · {session.phase_label}"),
        f"- **Usage**: {session.tokens_in + session.tokens_out} tokens · ${session.cost:.4f}",
        "",
        "## Key decisions",
        *([f"- {d}" for d in decisions] or ["- none recorded"]),
        *_adr_lines(session),
        "",
        *_design_sections(session, ctx),
        "## Validation and changes",
        *([f"- {c}" for c in changes] or ["- no validation points answered"]),
        "",
        "## Follow-ups and risks",
        *([f"- {x}" for x in follow_ups + risks] or ["- none found"]),
        "",
        "## Next steps",
        "- Build the services in the order of the implementation plan; the design is agreed, so coordinate before deviating.",
        "- Re-import the inventory after the change and compare the cluster diagram with the proposed one.",
        "",
        "```",
        continuation(session, ctx),
        "```",
    ]
    return "\n".join(lines) + "\n"
