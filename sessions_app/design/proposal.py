"""Proposals as data: merge the changes specialists propose, find the conflicts, diff two
versions, and apply a proposal to the current inventory for the proposed diagram.

Pure functions over :mod:`sessions_app.design.schema` types; deterministic (every list is
sorted by its key) so versions diff line by line and the same input gives the same proposal.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sessions_app.design.schema import (
    DataOwnership,
    EdgeChange,
    EventContract,
    ProposalChanges,
    ProposalContent,
    ServiceChange,
)
from teams_app.inventory.types import DependencySpec, ParsedInventory, ServiceSpec

# Edge protocols as inventory edge kinds, for the proposed diagram.
_PROTOCOL_KINDS = {
    "rest": "sync_http", "http": "sync_http", "https": "sync_http", "webhook": "sync_http", "sse": "sync_http",
    "grpc": "sync_grpc",
    "amqp": "async_event", "kafka": "async_event", "nats": "async_event", "event": "async_event", "events": "async_event",
    "sql": "database", "postgres": "database", "postgresql": "database", "mysql": "database",
    "redis": "cache", "cache": "cache",
}


def edge_kind(edge: EdgeChange) -> str:
    kind = _PROTOCOL_KINDS.get(edge.protocol.strip().lower())
    if kind:
        return kind
    return "async_event" if edge.mode == "async" else "sync_http"


@dataclass
class EdgeConflict:
    """Two or more proposers disagree on how one edge talks."""

    source: str
    target: str
    variants: list[tuple[EdgeChange, list[str]]] = field(default_factory=list)  # (edge, proposer names)


@dataclass
class MergeResult:
    content: ProposalContent
    conflicts: list[EdgeConflict]
    contributors: list[str]
    changed: bool


def _edge_key(e: EdgeChange) -> tuple[str, str]:
    return (e.source, e.target)


def _same_wire(a: EdgeChange, b: EdgeChange) -> bool:
    return (a.protocol.lower(), a.mode, a.change) == (b.protocol.lower(), b.mode, b.change)


def _fill(base: dict, new: dict) -> dict:
    """Fields of ``new`` win where they say something; empty fields keep the base's value."""
    merged = dict(base)
    for key, value in new.items():
        if isinstance(value, list):
            merged[key] = sorted(set(merged.get(key) or []) | set(value))
        elif value not in ("", None):
            merged[key] = value
    return merged


def normalized(content: ProposalChanges) -> ProposalContent:
    """The same proposal with every list sorted by its key."""
    return ProposalContent(
        services=sorted(content.services, key=lambda s: s.name),
        edges=sorted(content.edges, key=_edge_key),
        events=sorted(
            (e.model_copy(update={"consumers": sorted(set(e.consumers)), "fields": sorted(set(e.fields))}) for e in content.events),
            key=lambda e: e.name,
        ),
        data_ownership=sorted(content.data_ownership, key=lambda d: d.data),
        risks=sorted(dict.fromkeys(r.strip() for r in content.risks if r.strip())),
    )


def merge(
    base: ProposalContent | None,
    proposals: list[tuple[str, ProposalChanges]],
    *,
    decided_edges: dict[tuple[str, str], EdgeChange] | None = None,
) -> MergeResult:
    """Merge ``(proposer name, changes)`` pairs into ``base``.

    Services, events and data ownership merge field by field. An edge proposed the same way by
    everyone replaces the base's; an edge proposed in different ways (protocol or mode) is a
    conflict: the base's (or the first proposer's) version stays until the conflict is decided,
    unless ``decided_edges`` already holds the decision.
    """
    decided_edges = decided_edges or {}
    services = {s.name: s.model_dump() for s in (base.services if base else [])}
    edges = {_edge_key(e): e for e in (base.edges if base else [])}
    events = {e.name: e.model_dump() for e in (base.events if base else [])}
    ownership = {d.data: d.owner for d in (base.data_ownership if base else [])}
    risks = list(base.risks if base else [])

    proposed_edges: dict[tuple[str, str], list[tuple[EdgeChange, list[str]]]] = {}
    contributors: list[str] = []
    for name, changes in proposals:
        if changes.is_empty():
            continue
        contributors.append(name)
        for s in changes.services:
            services[s.name] = _fill(services.get(s.name, {}), s.model_dump())
        for e in changes.edges:
            variants = proposed_edges.setdefault(_edge_key(e), [])
            for edge, names in variants:
                if _same_wire(edge, e):
                    names.append(name)
                    break
            else:
                variants.append((e, [name]))
        for ev in changes.events:
            events[ev.name] = _fill(events.get(ev.name, {}), ev.model_dump())
        for d in changes.data_ownership:
            ownership[d.data] = d.owner
        risks.extend(changes.risks)

    conflicts: list[EdgeConflict] = []
    for key, variants in sorted(proposed_edges.items()):
        if key in decided_edges:
            edges[key] = decided_edges[key]
        elif len(variants) == 1:
            edge = variants[0][0]
            previous = edges.get(key)
            edges[key] = edge if previous is None else _keep_purpose(edge, previous)
        else:
            conflicts.append(EdgeConflict(source=key[0], target=key[1], variants=variants))
            edges.setdefault(key, variants[0][0])

    content = normalized(
        ProposalContent(
            services=[ServiceChange(**s) for s in services.values()],
            edges=list(edges.values()),
            events=[EventContract(**e) for e in events.values()],
            data_ownership=[DataOwnership(data=k, owner=v) for k, v in ownership.items()],
            risks=risks,
        )
    )
    before = normalized(base) if base else ProposalContent()
    return MergeResult(content=content, conflicts=conflicts, contributors=contributors, changed=content != before)


def _keep_purpose(edge: EdgeChange, previous: EdgeChange) -> EdgeChange:
    return edge if edge.purpose else edge.model_copy(update={"purpose": previous.purpose})


# -- diff ----------------------------------------------------------------------------------


def _service_line(s: ServiceChange) -> str:
    store = f", owns {s.store}" if s.store else ""
    return f"{s.change} service {s.name} [{s.kind}]{store}: {s.responsibility}".rstrip(": ")


def edge_line(e: EdgeChange) -> str:
    purpose = f" ({e.purpose})" if e.purpose else ""
    return f"{e.change} edge {e.source} → {e.target} {e.protocol} {e.mode}{purpose}"


def _event_line(e: EventContract) -> str:
    consumers = ", ".join(e.consumers) or "no consumer yet"
    fields = f" {{{', '.join(e.fields)}}}" if e.fields else ""
    return f"{e.change} event {e.name}{fields}: {e.producer} → {consumers}"


def proposal_lines(content: ProposalChanges) -> list[str]:
    """One line per item, the unit of the diff and of the text views."""
    c = normalized(content)
    return (
        [_service_line(s) for s in c.services]
        + [edge_line(e) for e in c.edges]
        + [_event_line(e) for e in c.events]
        + [f"data {d.data} owned by {d.owner}" for d in c.data_ownership]
        + [f"risk: {r}" for r in c.risks]
    )


def proposal_diff(old: ProposalChanges | None, new: ProposalChanges) -> dict[str, list[str]]:
    """{"added": [...], "removed": [...], "changed": [...]} between two versions, by item key."""
    old = normalized(old) if old else ProposalContent()
    new = normalized(new)
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []

    def compare(kind: str, olds: dict, news: dict, line) -> None:
        for key in sorted(set(olds) | set(news)):
            a, b = olds.get(key), news.get(key)
            if a is None:
                added.append(line(b))
            elif b is None:
                removed.append(line(a))
            elif a != b:
                changed.append(_changed_line(kind, key, a, b))

    compare("service", {s.name: s for s in old.services}, {s.name: s for s in new.services}, _service_line)
    compare("edge", {_edge_key(e): e for e in old.edges}, {_edge_key(e): e for e in new.edges}, edge_line)
    compare("event", {e.name: e for e in old.events}, {e.name: e for e in new.events}, _event_line)
    compare(
        "data", {d.data: d for d in old.data_ownership}, {d.data: d for d in new.data_ownership},
        lambda d: f"data {d.data} owned by {d.owner}",
    )
    compare("risk", {r: r for r in old.risks}, {r: r for r in new.risks}, lambda r: f"risk: {r}")
    return {"added": added, "removed": removed, "changed": changed}


def _changed_line(kind: str, key, a, b) -> str:
    """What changed in one item, field by field: "event payment.completed: consumers +inventory"."""
    if isinstance(a, str):
        return f"risk: {a}  ⟶  {b}"
    name = " → ".join(key) if isinstance(key, tuple) else str(key)
    old, new = a.model_dump(), b.model_dump()
    parts = []
    for name_ in old:
        x, y = old[name_], new.get(name_)
        if x == y:
            continue
        if isinstance(x, list) and isinstance(y, list):
            plus = [f"+{v}" for v in y if v not in x]
            minus = [f"−{v}" for v in x if v not in y]
            parts.append(f"{name_} {' '.join(plus + minus)}")
        else:
            parts.append(f"{name_} {x or '(none)'} → {y or '(none)'}")
    return f"{kind} {name}: " + "; ".join(parts)


def diff_is_empty(diff: dict[str, list[str]]) -> bool:
    return not any(diff.get(k) for k in ("added", "removed", "changed"))


# -- the proposed cluster ------------------------------------------------------------------


def apply_to_inventory(inventory: ParsedInventory, content: ProposalChanges) -> tuple[ParsedInventory, set[str], set[tuple[str, str]]]:
    """The cluster as it would be with the proposal: (inventory, highlighted services, highlighted edges).

    Added and changed services and edges are highlighted; removed ones disappear. Event
    contracts become async edges from the producer to each consumer when no edge says so already.
    """
    inv = copy.deepcopy(inventory)
    inv.format = inv.format or "manual"
    names = {s.name for s in inv.services}
    marked: set[str] = set()
    marked_edges: set[tuple[str, str]] = set()
    for s in content.services:
        if s.change == "remove":
            inv.services = [x for x in inv.services if x.name != s.name]
            inv.dependencies = [d for d in inv.dependencies if s.name not in (d.source, d.target)]
            names.discard(s.name)
            continue
        if s.name not in names:
            inv.services.append(ServiceSpec(name=s.name, kind=s.kind or "service", description=s.responsibility))
            names.add(s.name)
        marked.add(s.name)
    for e in content.edges:
        key = (e.source, e.target)
        inv.dependencies = [d for d in inv.dependencies if (d.source, d.target) != key]
        if e.change == "remove":
            continue
        inv.dependencies.append(DependencySpec(source=e.source, target=e.target, kind=edge_kind(e), via="proposal"))
        marked_edges.add(key)
    present = {(d.source, d.target) for d in inv.dependencies}
    for ev in content.events:
        if ev.change == "remove":
            continue
        for consumer in ev.consumers:
            key = (ev.producer, consumer)
            if ev.producer and consumer and ev.producer != consumer and key not in present:
                inv.dependencies.append(DependencySpec(source=ev.producer, target=consumer, kind="async_event", via=f"event:{ev.name}"))
                present.add(key)
                marked_edges.add(key)
    return inv, marked, marked_edges
