"""The graph both diagram renderers draw: nodes and deduplicated edges of an inventory.

Edges may name services the inventory does not declare (a Backstage ``consumesApis`` of an
unknown API, an env URL to an outside host); those become ``external`` nodes so that no edge is
dropped from a diagram.
"""

from __future__ import annotations

from dataclasses import dataclass

from teams_app.inventory.types import EDGE_KINDS, SERVICE_KINDS, ParsedInventory

# Top-to-bottom reading order of a cluster: entry, logic, messaging, state, outside world.
KIND_ORDER: tuple[str, ...] = (
    "gateway",
    "service",
    "broker",
    "cache",
    "database",
    "external",
)

EDGE_LABELS: dict[str, str] = {
    "sync_http": "HTTP",
    "sync_grpc": "gRPC",
    "async_event": "event",
    "database": "data",
    "cache": "cache",
    "unknown": "uses",
}


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    networks: tuple[str, ...] = ()
    declared: bool = True


@dataclass(frozen=True, order=True)
class Edge:
    source: str
    target: str
    kind: str


def kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def build_graph(inv: ParsedInventory) -> tuple[dict[str, Node], list[Edge]]:
    """Nodes by name and edges sorted by (source, target, kind); self-loops dropped."""
    nodes: dict[str, Node] = {}
    for spec in inv.services:
        if spec.name in nodes:
            continue  # first declaration wins, as in the rules analyst
        kind = spec.kind if spec.kind in SERVICE_KINDS else "service"
        nodes[spec.name] = Node(spec.name, kind, tuple(spec.networks))
    edges: set[Edge] = set()
    for dep in inv.dependencies:
        if not dep.source or not dep.target or dep.source == dep.target:
            continue
        kind = dep.kind if dep.kind in EDGE_KINDS else "unknown"
        edges.add(Edge(dep.source, dep.target, kind))
        for name in (dep.source, dep.target):
            if name not in nodes:
                nodes[name] = Node(name, "external", declared=False)
    return nodes, sorted(edges)
