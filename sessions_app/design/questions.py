"""Key questions from the requirement and the cluster (the catalogue's questions for the
brief's capabilities, the team's coordination question) and from conflicts between proposers."""

from __future__ import annotations

from sessions_app.design.catalogue import Draft, Ground, QuestionDraft
from sessions_app.design.cluster import Cluster
from sessions_app.design.proposal import EdgeConflict
from teams_app.inventory.types import ROLE_LABELS


def _template_question(cluster: Cluster, template_slug: str) -> QuestionDraft | None:
    if template_slug == "cross-service-feature":
        grounds: dict[str, Ground] = {}
        if cluster.broker:
            grounds["dataflow"] = Ground(1, f"the cluster already publishes state changes on {cluster.broker}", [f"inventory:{cluster.broker}"])
            grounds["pattern"] = Ground(1, f"services react to events on {cluster.broker} today", ["PAT001"])
        return QuestionDraft("team.coordination", "Which coordination strategy should the workflow use?",
                             ["Orchestration service", "Event choreography"], grounds)
    if template_slug == "service-refactoring":
        grounds = {}
        if cluster.gateway:
            grounds["integration"] = Ground(0, f"{cluster.gateway} can route old and new paths side by side", [f"inventory:{cluster.gateway}"])
        return QuestionDraft("team.cutover", "How do we move traffic to the new boundaries?",
                             [f"Strangler fig behind {cluster.gateway or 'the gateway'}", "Parallel run with shadow traffic", "One coordinated release"], grounds)
    return None


def fallback_question(cluster: Cluster) -> QuestionDraft:
    """When no catalogue pattern matched: the one question the cluster itself raises."""
    grounds: dict[str, Ground] = {}
    if cluster.dominant:
        grounds["pattern"] = Ground(0, f"the dominant pattern is {cluster.dominant}", ["PAT001"])
    broker = cluster.broker or "a message broker"
    return QuestionDraft(
        "cluster.communication", f"How should the change talk to the services it depends on (the cluster's dominant pattern is {cluster.dominant or 'unknown'})?",
        [f"Synchronous {cluster.sync_protocol} calls", f"Asynchronous events over {broker}", f"{cluster.sync_protocol} for commands, events for state changes"],
        grounds,
    )


def session_questions(drafts: list[Draft], cluster: Cluster, *, template_slug: str) -> list[QuestionDraft]:
    """The key questions of Integration Design, deduplicated by key, in a stable order."""
    out: list[QuestionDraft] = []
    team = _template_question(cluster, template_slug)
    if team is not None:
        out.append(team)
    for d in drafts:
        out.extend(d.questions)
    if not drafts:
        out.append(fallback_question(cluster))
    seen: set[str] = set()
    unique = []
    for q in out:
        if q.key not in seen:
            seen.add(q.key)
            unique.append(q)
    return unique


def grounds_json(q: QuestionDraft) -> dict:
    return {role: {"option": g.option, "why": g.why, "evidence": g.evidence} for role, g in q.grounds.items()}


def edge_conflict_question(conflict: EdgeConflict, members: list[dict]) -> tuple[str, str, list[str], dict]:
    """(key, text, options, grounds) of the question an edge conflict raises. Each proposer's
    roles favour the variant it proposed; the variants are kept to apply the decision later."""
    options = []
    grounds: dict = {"variants": {}}
    by_name = {m.get("name"): m for m in members}
    for edge, names in conflict.variants:
        option = f"{edge.protocol} ({edge.mode}), proposed by {', '.join(names)}"
        options.append(option)
        grounds["variants"][option] = edge.model_dump()
        for name in names:
            for role in (by_name.get(name, {}).get("focus") or [])[:1]:
                grounds.setdefault(role, {"option": len(options) - 1, "why": f"{ROLE_LABELS.get(role, role)} proposed {edge.protocol} {edge.mode}" + (f" to {edge.purpose}" if edge.purpose else ""), "evidence": ["proposal"]})
    key = f"edge:{conflict.source}->{conflict.target}"
    text = f"How should {conflict.source} talk to {conflict.target}? The team proposed different protocols."
    return key, text, options, grounds
