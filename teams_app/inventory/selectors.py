"""Reads of the cluster inventory: revisions, diffs and the rules findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from teams_app.inventory.rules import analyze
from teams_app.inventory.store import revision_to_inventory
from teams_app.inventory.types import Finding, ParsedInventory
from teams_app.models import InventoryRevision, Project

COMPARED_FIELDS = (
    "kind", "image", "build", "ports", "expose", "environment", "env_files", "networks", "healthcheck",
    "restart", "replicas", "resources", "labels", "patterns",
)


def inventory_current(*, project: Project) -> tuple[InventoryRevision | None, ParsedInventory]:
    revision = project.inventory_revisions.order_by("-number").first()
    return revision, revision_to_inventory(revision)


def findings_for_project(*, project: Project) -> list[Finding]:
    _, inventory = inventory_current(project=project)
    return analyze(inventory) if inventory.services else []


def findings_summary(findings: list[Finding]) -> dict[str, int]:
    summary = {"critical": 0, "warning": 0, "info": 0}
    for f in findings:
        summary[f.severity] = summary.get(f.severity, 0) + 1
    return summary


@dataclass
class InventoryDiff:
    services_added: list[str] = field(default_factory=list)
    services_removed: list[str] = field(default_factory=list)
    services_changed: dict[str, list[str]] = field(default_factory=dict)  # name -> changed fields
    edges_added: list[tuple[str, str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str, str]] = field(default_factory=list)
    edges_changed: list[tuple[str, str, str, str]] = field(default_factory=list)  # source, target, old, new

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())


def inventory_diff(old: ParsedInventory, new: ParsedInventory) -> InventoryDiff:
    diff = InventoryDiff()
    a = {s.name: s for s in old.services}
    b = {s.name: s for s in new.services}
    diff.services_added = sorted(b.keys() - a.keys())
    diff.services_removed = sorted(a.keys() - b.keys())
    for name in sorted(a.keys() & b.keys()):
        changed = [f for f in COMPARED_FIELDS if _normal(getattr(a[name], f)) != _normal(getattr(b[name], f))]
        if changed:
            diff.services_changed[name] = changed
    ea = {(d.source, d.target): d.kind for d in old.dependencies}
    eb = {(d.source, d.target): d.kind for d in new.dependencies}
    diff.edges_added = sorted((s, t, eb[(s, t)]) for s, t in eb.keys() - ea.keys())
    diff.edges_removed = sorted((s, t, ea[(s, t)]) for s, t in ea.keys() - eb.keys())
    diff.edges_changed = sorted((s, t, ea[(s, t)], eb[(s, t)]) for s, t in ea.keys() & eb.keys() if ea[(s, t)] != eb[(s, t)])
    return diff


def _normal(value):
    if isinstance(value, list):
        return sorted((asdict(v) if hasattr(v, "__dataclass_fields__") else v for v in value), key=repr)
    return value


def revisions_diff(*, project: Project, a: int, b: int) -> InventoryDiff:
    ra = project.inventory_revisions.filter(number=a).first()
    rb = project.inventory_revisions.filter(number=b).first()
    return inventory_diff(revision_to_inventory(ra), revision_to_inventory(rb))
