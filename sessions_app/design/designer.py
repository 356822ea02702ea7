"""The rule-based designer: one specialist's contribution to a round, from the catalogue
instantiated on the real inventory and the brief, without any model.

Each round kind has its own output: Pattern Discovery reports findings and what the brief
needs from the role; Integration Design proposes changes and takes positions only where the
evidence separates the options; a discussion restates them against the other side;
Implementation Planning gives the role's ordered tasks; Integration Validation the checks;
a follow-up the changes that answer the user's feedback. Later rounds cite earlier findings
by rule id instead of repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from textwrap import shorten

from sessions_app.design.cluster import Cluster
from sessions_app.design.drafts import assign_tasks, drafts_for, feedback_drafts
from sessions_app.design.proposal import merge, proposal_diff, proposal_lines
from sessions_app.design.schema import Brief, PlanItem, ProposalChanges, ProposalContent, StructuredPosition
from teams_app.inventory.rules.base import plural
from teams_app.inventory.types import ROLE_LABELS, ROLES, Finding

LABEL = "rule-based designer"


@dataclass
class DesignRequest:
    specialist_slug: str
    specialist_name: str
    roles: list[str]
    round_kind: str
    brief: Brief
    cluster: Cluster
    findings: list[Finding]  # for the specialist's focus
    proposal: ProposalContent
    proposal_version: int
    questions: list[dict]  # {"ref", "text", "options", "grounds"}
    feedback: list[str] = field(default_factory=list)
    reported_rules: list[str] = field(default_factory=list)
    team: list[dict] = field(default_factory=list)


@dataclass
class DesignReply:
    sections: list[str]
    summary: str
    findings: list[Finding] = field(default_factory=list)
    positions: list[StructuredPosition] = field(default_factory=list)
    changes: ProposalChanges = field(default_factory=ProposalChanges)
    plan_items: list[PlanItem] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_ROUND_TITLES = {
    "analysis": "Pattern Discovery",
    "design": "Integration Design",
    "discussion": "Integration Design (discussion)",
    "planning": "Implementation Planning",
    "validation": "Integration Validation",
    "follow_up": "Follow-up on the USER's feedback",
}


def _labels(roles: list[str]) -> str:
    return ", ".join(ROLE_LABELS.get(r, r) for r in roles) or "all roles"


def design(req: DesignRequest) -> DesignReply:
    handler = {
        "analysis": _analysis, "design": _design, "discussion": _discussion, "planning": _planning,
        "validation": _validation, "follow_up": _follow_up,
    }.get(req.round_kind, _analysis)
    reply = handler(req)
    title = _ROUND_TITLES.get(req.round_kind, req.round_kind)
    version = f", proposal v{req.proposal_version}" if req.proposal_version else ""
    intro = (
        f"_{req.specialist_name} · {title}{version}. Written by the {LABEL}: deterministic analysis of the "
        f"inventory and the brief (focus: {_labels(req.roles)}); no language model was involved._"
    )
    reply.sections.insert(0, intro)
    return reply


# -- Pattern Discovery -------------------------------------------------------------------


def _analysis(req: DesignRequest) -> DesignReply:
    findings = sorted(req.findings, key=lambda f: (_SEVERITY_RANK.get(f.severity, 3), f.rule, f.services, f.why))
    lines = ["## Findings", ""]
    if findings:
        for f in findings:
            lines.append(f"- **{f.severity.upper()}** `{f.rule}` — {', '.join(f.services) or 'cluster-wide'}: {f.why}")
    else:
        lines.append(f"The rules found nothing for {_labels(req.roles)} in this inventory.")
    needs = ["## What the requirement needs here", ""] + [f"- {n}" for n in _needs(req)]
    questions = [f"- {q}" for q in req.brief.questions if _concerns(q, req.roles)]
    sections = ["\n".join(lines), "\n".join(needs)]
    if questions:
        sections.append("\n".join(["## Questions for the USER", "", *questions]))
    counts = ", ".join(f"{sum(1 for f in findings if f.severity == s)} {s}" for s in ("critical", "warning", "info") if any(f.severity == s for f in findings))
    summary = f"{plural(len(findings), 'finding')} for {_labels(req.roles)}" + (f" ({counts})" if counts else "") + "; " + (_needs(req) or ["no brief items"])[0]
    return DesignReply(sections=sections, summary=summary[:240], findings=findings)


def _concerns(question: str, roles: list[str]) -> bool:
    q = question.lower()
    words = {
        "performance": ("latency", "load", "throughput", "p95"),
        "security": ("provider", "pci", "read them", "who may"),
        "dataflow": ("owns", "kept", "prd also"),
        "integration": ("capability", "services and flows", "prd also", "provider"),
        "pattern": ("catalogue", "capability"),
        "devops": ("inventory is imported", "services does the cluster"),
    }
    return any(any(w in q for w in words.get(r, ())) for r in roles)


def _needs(req: DesignRequest) -> list[str]:
    """What the brief asks of each of the specialist's roles, grounded in the cluster."""
    b, cx = req.brief, req.cluster
    out: list[str] = []
    touched = [t.name for t in b.touched_services]
    new = [s for s in b.new_services]
    for role in req.roles:
        if role == "pattern":
            if cx.dominant:
                template = cx.template_service()
                out.append(
                    f"{', '.join(s.name for s in new) or 'The change'} should follow the dominant {cx.dominant} pattern"
                    + (f" and the service template of {template.name}" if template else "")
                    + (f", with {cx.broker} ({cx.broker_protocol}) for events" if cx.broker else "") + "."
                )
        elif role == "integration":
            for s in new:
                edges = [f"{d.source} → {d.target}" for d in cx.inventory.dependencies if s.name in (d.source, d.target)]
                what = "extends" if s.exists else "adds"
                out.append(f"The requirement {what} {s.name} ({s.capability}); its integration points today: {', '.join(edges) or 'none'}.")
            if not new and touched:
                out.append(f"It touches {', '.join(touched)}; each needs a declared contract before design.")
        elif role == "dataflow":
            for s in new:
                out.append(f"{s.name} must own its data ({s.responsibility.lower()}); nothing else writes it.")
            shared = cx.shared_database_rule()
            if shared:
                out.append(f"{cx.database} is shared today ({shared}): the new data must not add to it.")
        elif role == "security":
            regulated = [s.name for s in new if s.capability == "payments"] or [s.name for s in new]
            for value in dict.fromkeys(c.value for c in b.constraints if c.kind == "compliance"):
                sources = ", ".join(sorted({c.source for c in b.constraints if c.value == value}))
                out.append(f"{value} ({sources}): keep its scope to {', '.join(regulated) or 'the owning service'} and its own store.")
            for c in b.conflicts:
                if c.kind == "inventory":
                    out.append(c.text)
        elif role == "performance":
            for c in b.constraints:
                if c.kind in ("latency", "throughput"):
                    out.append(f"{c.kind.capitalize()} {c.value} from {c.source}.")
            chains = [f for f in cx.findings if f.rule.startswith("PERF002") and set(f.services) & set(touched)]
            new_names = {s.name for s in new}
            chains.sort(key=lambda f: (-len(set(f.services) & new_names), f.why))
            if chains:
                out.append(f"The synchronous path {chains[0].why.split(' is ')[0]} ({chains[0].rule}) must fit that budget.")
            for c in b.conflicts:
                if c.kind == "constraint" and "atency" in c.text:
                    out.append("The latency targets disagree; the USER decides which holds.")
        elif role == "devops":
            template = cx.template_service()
            if template is not None:
                tag = template.image.rsplit(":", 1)[-1] if ":" in template.image else "unpinned"
                out.append(f"New containers follow {template.name}: tag {tag}, healthcheck, restart {template.restart or 'none'}, {template.replicas} replicas.")
    if not out:
        out.append("The brief asks nothing of this focus that the inventory can ground.")
    return list(dict.fromkeys(out))


# -- Integration Design ------------------------------------------------------------------


def _own_changes(req: DesignRequest, drafts) -> ProposalChanges:
    roles = set(req.roles)
    merged = merge(None, [(req.specialist_name, d.changes_for(roles)) for d in drafts])
    return merged.content


def _positions(req: DesignRequest) -> tuple[list[StructuredPosition], list[str]]:
    positions: list[StructuredPosition] = []
    abstained: list[str] = []
    for q in req.questions:
        grounds = q.get("grounds") or {}
        mine = [(r, grounds[r]) for r in req.roles if r in grounds]
        if not mine:
            abstained.append(q["ref"])
            continue
        role, ground = mine[0]
        index = int(ground.get("option", 0))
        if not 0 <= index < len(q["options"]):
            abstained.append(q["ref"])
            continue
        positions.append(StructuredPosition(
            question=q["ref"], option=q["options"][index], rationale=f"{ROLE_LABELS.get(role, role)}: {ground.get('why', '')}",
            evidence=list(ground.get("evidence") or []),
        ))
    return positions, abstained


def _cites(req: DesignRequest) -> str:
    mine = sorted({f.rule for f in req.findings} & set(req.reported_rules)) or sorted({f.rule for f in req.findings})
    return ", ".join(mine) if mine else "none"


def _design(req: DesignRequest) -> DesignReply:
    drafts = drafts_for(req.brief, req.cluster)
    changes = _own_changes(req, drafts)
    if "pattern" in req.roles:
        changes = changes.model_copy(update={"risks": [*changes.risks, *_deviation_risks(req, drafts)]})
    positions, abstained = _positions(req)
    sections = [f"## Builds on\n\nPattern Discovery findings {_cites(req)} (reported there, not repeated) and the brief."]
    lines = proposal_lines(changes)
    if lines:
        sections.append("\n".join(["## Proposed changes", "", *[f"- {line}" for line in lines]]))
    elif not drafts:
        sections.append("## Proposed changes\n\nThe catalogue has no pattern for this requirement, so the rules propose nothing; the USER is asked which capability is needed.")
    else:
        sections.append(f"## Proposed changes\n\nNothing for {_labels(req.roles)} in the matched patterns ({', '.join(d.label for d in drafts)}).")
    pos = ["## Positions"]
    for p in positions:
        pos += ["", f"position: {p.question} -> {p.option} because {p.rationale}"]
    if abstained:
        pos += ["", f"No evidence for {_labels(req.roles)} separates the options of {', '.join(abstained)}: no position; they stay open for the USER."]
    sections.append("\n".join(pos))
    summary = f"Proposes {plural(len(lines), 'change')}" + (f" and takes {plural(len(positions), 'position')}" if positions else "") + f" for {_labels(req.roles)}."
    return DesignReply(sections=sections, summary=summary, positions=positions, changes=changes)


def _deviation_risks(req: DesignRequest, drafts) -> list[str]:
    """The Pattern Archaeologist's part of a proposal: deviations of the services it changes."""
    names = {s.name for d in drafts for s, _ in d.services}
    risks = []
    for f in req.cluster.findings:
        if f.role == "pattern" and f.severity != "info" and names & set(f.services):
            risks.append(f"{f.why} ({f.rule}): align it in this change or record the justification as a decision")
    return risks


def _discussion(req: DesignRequest) -> DesignReply:
    positions, abstained = _positions(req)
    lines = ["## Discussion", ""]
    for p in positions:
        q = next(q for q in req.questions if q["ref"] == p.question)
        others = [o for o in q["options"] if o != p.option]
        lines.append(f"- {p.question}: I keep “{p.option}”. Against “{' / '.join(others)}”: {p.rationale.split(': ', 1)[-1]}.")
    if abstained:
        lines.append(f"- {', '.join(abstained)}: still no evidence for {_labels(req.roles)}; the USER should decide.")
    # The positions travel structured; the text says only what the discussion adds.
    return DesignReply(sections=["\n".join(lines)], summary=f"Restates {len(positions)} positions.", positions=positions)


# -- Implementation Planning ---------------------------------------------------------------


def plan_tasks(drafts) -> list:
    """Every task of the drafts, deduplicated by key, in draft order."""
    seen: dict[str, object] = {}
    for d in drafts:
        for t in d.tasks:
            seen.setdefault(t.key, t)
    return list(seen.values())


def owned_tasks(tasks, team: list[dict], slug: str) -> list:
    return [t for t, owner in assign_tasks(tasks, team) if owner.get("slug") == slug]


def _planning(req: DesignRequest) -> DesignReply:
    drafts = drafts_for(req.brief, req.cluster) + [d for text in req.feedback for d in feedback_drafts(req.brief, req.cluster, text)]
    tasks = plan_tasks(drafts)
    mine = owned_tasks(tasks, req.team, req.specialist_slug)
    by_key = {t.key: t for t in tasks}
    items = [
        PlanItem(specialist=req.specialist_slug, service=t.service, task=t.task, acceptance=t.acceptance, key=t.key,
                 depends_on_keys=[k for k in t.after if k in by_key])
        for t in mine
    ]
    lines = [f"## Implementation plan for {_labels(req.roles)}", ""]
    for i, t in enumerate(mine, start=1):
        after = [by_key[k] for k in t.after if k in by_key]
        dep = f" — after: {'; '.join(shorten(a.task, 60, placeholder='…') for a in after)}" if after else ""
        lines.append(f"{i}. **{t.service}**: {t.task}{dep}\n   - Done when: {t.acceptance}")
    if not mine:
        lines.append(f"No task of the agreed design falls to {req.specialist_name}; reviewing the others' contracts.")
    sections = ["\n".join(lines), "## Coordinate before building\n\nTasks start only after the tasks they depend on are accepted; the USER reviews the API design first."]
    return DesignReply(sections=sections, summary=f"{len(items)} plan tasks for {_labels(req.roles)}.", plan_items=items)


# -- Integration Validation ----------------------------------------------------------------


def checks_for(roles: list[str], proposal: ProposalContent, brief: Brief, cluster: Cluster) -> list[str]:
    """Integration test checks for these roles, derived from the proposal."""
    checks: list[str] = []
    role_set = set(roles) or set(ROLES)
    if "integration" in role_set:
        for e in proposal.edges:
            if e.mode == "sync" and e.change != "remove":
                checks.append(f"Can {e.source} reach {e.target} over {e.protocol}" + (f" ({e.purpose})" if e.purpose else "") + "?")
    if "dataflow" in role_set:
        for ev in proposal.events:
            checks.append(f"Is {ev.name} published by {ev.producer} and handled once by {', '.join(ev.consumers) or 'its consumers'}, duplicates ignored?")
    if "security" in role_set:
        for s in proposal.services:
            if s.store:
                checks.append(f"Is {s.store} reachable only by {s.name}, with no host port and no literal secret?")
    if "performance" in role_set:
        for c in brief.constraints:
            if c.kind == "latency":
                checks.append(f"Does the new path stay within {c.value} at p95 ({c.source})?")
                break
    if "devops" in role_set:
        for s in proposal.services:
            if s.kind == "service" and s.change != "remove":
                checks.append(f"Does {s.name} pass its healthcheck and roll back cleanly in staging?")
    if "pattern" in role_set and cluster.dominant:
        checks.append(f"Do the new contracts follow the cluster's {cluster.dominant} conventions?")
    return list(dict.fromkeys(checks))


def _validation(req: DesignRequest) -> DesignReply:
    checks = checks_for(req.roles, req.proposal, req.brief, req.cluster)
    if "integration" in req.roles:
        for d in drafts_for(req.brief, req.cluster):
            checks += [c for c in d.checks if c not in checks]
    lines = [f"## Integration checks for {_labels(req.roles)}", ""] + [f"- [ ] {c}" for c in checks]
    if not checks:
        lines.append(f"The proposal v{req.proposal_version} gives {_labels(req.roles)} nothing to check.")
    return DesignReply(sections=["\n".join(lines)], summary=f"{len(checks)} integration checks for proposal v{req.proposal_version}.", checks=checks)


# -- follow-up -----------------------------------------------------------------------------


def _follow_up(req: DesignRequest) -> DesignReply:
    feedback = "\n".join(req.feedback).strip()
    drafts = feedback_drafts(req.brief, req.cluster, feedback) if feedback else []
    proposed = _own_changes(req, drafts)
    merged = merge(req.proposal, [(req.specialist_name, proposed)])
    diff = proposal_diff(req.proposal, merged.content)
    sections = [f"## The feedback\n\n> {feedback or '(none)'}"]
    new_lines = diff["added"] + diff["changed"]
    if new_lines:
        sections.append("\n".join(["## Changes that answer it", "", *[f"- {line}" for line in new_lines]]))
        changes = _only_new(proposed, req.proposal)
        labels = ", ".join(d.label for d in drafts)
        summary = f"Answers the feedback with {len(new_lines)} changes ({labels})."
    else:
        matched = ", ".join(d.label for d in drafts) or "no catalogue pattern"
        sections.append(
            f"## Changes that answer it\n\nThe feedback maps to {matched}; the rules find nothing for {_labels(req.roles)} "
            "that the proposal lacks. The USER's words go to the Maestro's synthesis as they are."
        )
        changes = ProposalChanges()
        summary = "No change for this focus answers the feedback."
    return DesignReply(sections=sections, summary=summary, changes=changes)


def _only_new(proposed: ProposalChanges, current: ProposalContent) -> ProposalChanges:
    have = set(proposal_lines(current))
    return ProposalChanges(
        services=[s for s in proposed.services if proposal_lines(ProposalChanges(services=[s]))[0] not in have],
        edges=[e for e in proposed.edges if proposal_lines(ProposalChanges(edges=[e]))[0] not in have],
        events=[e for e in proposed.events if proposal_lines(ProposalChanges(events=[e]))[0] not in have],
        data_ownership=[d for d in proposed.data_ownership if proposal_lines(ProposalChanges(data_ownership=[d]))[0] not in have],
        risks=[r for r in proposed.risks if f"risk: {r}" not in have],
    )
