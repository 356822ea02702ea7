"""The catalogue patterns a session's brief (and any feedback) asks for, instantiated on its
cluster. The engine and the rule-based designer both start from here, so they agree."""

from __future__ import annotations

from sessions_app.design import catalogue
from sessions_app.design.catalogue import Draft, Facts
from sessions_app.design.cluster import Cluster
from sessions_app.design.schema import Brief


def facts_for(brief: Brief, extra: str = "") -> Facts:
    return Facts(text=f"{brief.requirement}\n{extra}".lower(), constraints=list(brief.constraints))


def drafts_for(brief: Brief, cluster: Cluster) -> list[Draft]:
    """Drafts of the brief's capabilities, in catalogue order."""
    facts = facts_for(brief)
    keys = [c.key for c in brief.capabilities]
    return [catalogue.REGISTRY[k].build(cluster, facts) for k in keys if k in catalogue.REGISTRY]


def feedback_drafts(brief: Brief, cluster: Cluster, feedback: str) -> list[Draft]:
    """Drafts of the patterns a piece of feedback asks for ("no inventory hold" → reservations).

    Patterns the design already covers are left out when the feedback names a new one
    ("Payment works but no inventory hold" asks for holds, not for payments again)."""
    facts = facts_for(brief, feedback)
    matched = [p for p, _ in catalogue.match(feedback)]
    covered = {c.key for c in brief.capabilities}
    fresh = [p for p in matched if p.key not in covered]
    return [p.build(cluster, facts) for p in (fresh or matched)]


def route_by_design(drafts: list[Draft], members: list[dict], *, limit: int = 3) -> list[str]:
    """Specialists a piece of feedback concerns, by the roles that propose what its patterns
    imply: the roles with most of the items (at least half of the top role's), and the
    members whose first focus is one of them. Empty when no pattern matched."""
    weight: dict[str, int] = {}
    for d in drafts:
        for items in (d.services, d.edges, d.events, d.ownership, d.risks):
            for _item, by in items:
                for role in by:
                    weight[role] = weight.get(role, 0) + 1
    if not weight:
        return []
    top = max(weight.values())
    roles = sorted((r for r, w in weight.items() if w * 2 >= top), key=lambda r: -weight[r])
    chosen: list[str] = []
    for role in roles:
        for m in members:
            if (m.get("focus") or [None])[0] == role and m["specialist"] not in chosen:
                chosen.append(m["specialist"])
    return chosen[:limit]


def owners(team: list[dict], role: str) -> list[dict]:
    """Members who own a role's tasks: those whose first focus it is, then those who also have it."""
    primary = [m for m in team if (m.get("focus") or [None])[0] == role]
    secondary = [m for m in team if role in (m.get("focus") or [])[1:]]
    return primary + secondary


def task_owner(team: list[dict], role: str, index: int) -> dict | None:
    """The member who owns the ``index``-th task of ``role``: spread over the role's owners."""
    candidates = owners(team, role)
    return candidates[index % len(candidates)] if candidates else None


def assign_tasks(tasks, team: list[dict]) -> list[tuple]:
    """(task, owner) for every non-USER task with an owner: each role's tasks spread over the
    members who own that role, in order."""
    counts: dict[str, int] = {}
    assigned = []
    for t in tasks:
        if t.role == "user":
            continue
        index = counts.get(t.role, 0)
        counts[t.role] = index + 1
        owner = task_owner(team, t.role, index)
        if owner is not None:
            assigned.append((t, owner))
    return assigned
