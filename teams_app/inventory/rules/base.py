"""The rule contract and the read-only view of an inventory that every rule works on.

A rule is a small function ``check(ctx) -> Iterable[Hit]`` registered with its metadata on the
:class:`RuleSet` of its role. :class:`Context` normalises the inventory once (deduplicated edges,
adjacency, coerced patterns) so each rule stays a few lines and no rule trusts the raw input
shapes: inventories come from user files and the inference may leave gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from teams_app.inventory.types import ROLES, SEVERITIES, ParsedInventory, ServiceSpec

DATASTORE_KINDS: frozenset[str] = frozenset({"database", "cache", "broker"})
# Kinds that run our own code: the ones patterns, auth and replicas are judged on.
APP_KINDS: frozenset[str] = frozenset({"service", "gateway"})
SYNC_EDGE_KINDS: frozenset[str] = frozenset({"sync_http", "sync_grpc"})
# Formats that describe what runs (images, ports, probes, limits, replicas). A software catalog
# (Backstage) describes ownership and APIs only, so rules about running containers stay silent.
RUNTIME_FORMATS: frozenset[str] = frozenset({"compose", "k8s", "manual"})


@dataclass(frozen=True)
class Hit:
    """One occurrence found by a rule; the rule's metadata turns it into a Finding."""

    services: tuple[str, ...]
    why: str


Check = Callable[["Context"], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    role: str
    severity: str
    title: str
    description: str
    check: Check = field(compare=False, repr=False)
    runtime: bool = False  # judges what runs (healthchecks, limits, replicas, images): not for catalogs

    def __post_init__(self) -> None:
        # Metadata errors are programming errors; fail at import, not in a user's session.
        if self.role not in ROLES:
            raise ValueError(f"rule {self.id}: unknown role {self.role!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.id}: unknown severity {self.severity!r}")


class RuleSet:
    """The rules of one role, in registration order."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.rules: list[Rule] = []

    def rule(
        self, rule_id: str, severity: str, title: str, description: str, *, runtime: bool = False
    ) -> Callable[[Check], Check]:
        def register(fn: Check) -> Check:
            self.rules.append(Rule(rule_id, self.role, severity, title, description, fn, runtime))
            return fn

        return register


def hit(services: Iterable[str], why: str) -> Hit:
    return Hit(tuple(sorted(set(services))), why)


@dataclass(frozen=True, order=True)
class Edge:
    source: str
    target: str
    kind: str


def _str_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted({str(v) for v in value if v})
    return []


def communication(spec: ServiceSpec) -> list[str]:
    return _str_list((spec.patterns or {}).get("communication"))


def auth(spec: ServiceSpec) -> list[str]:
    return _str_list((spec.patterns or {}).get("auth"))


def storage(spec: ServiceSpec) -> str:
    value = (spec.patterns or {}).get("storage")
    return value if isinstance(value, str) else ""


def names(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c' for readable one-line whys."""
    seq = list(items)
    if len(seq) <= 1:
        return "".join(seq)
    return ", ".join(seq[:-1]) + " and " + seq[-1]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Context:
    """Normalised, read-only graph view of a ParsedInventory."""

    def __init__(self, inv: ParsedInventory) -> None:
        self.inv = inv
        self.format = inv.format
        services: dict[str, ServiceSpec] = {}
        for spec in inv.services:
            services.setdefault(spec.name, spec)  # first declaration wins, like the importers
        self.services = services
        edges = {
            Edge(d.source, d.target, d.kind or "unknown")
            for d in inv.dependencies
            # A service pointing at itself (its own URL in env) is not an integration point.
            if d.source and d.target and d.source != d.target
        }
        self.edges: list[Edge] = sorted(edges)
        self.out: dict[str, set[str]] = {}
        self.inc: dict[str, set[str]] = {}
        self.sync_out: dict[str, set[str]] = {}
        self.sync_in: dict[str, set[str]] = {}
        for e in self.edges:
            self.out.setdefault(e.source, set()).add(e.target)
            self.inc.setdefault(e.target, set()).add(e.source)
            if e.kind in SYNC_EDGE_KINDS:
                self.sync_out.setdefault(e.source, set()).add(e.target)
                self.sync_in.setdefault(e.target, set()).add(e.source)

    # --- lookups -------------------------------------------------------------------------

    def kind(self, name: str) -> str:
        spec = self.services.get(name)
        # An edge endpoint the inventory does not declare behaves like something outside it.
        return spec.kind if spec is not None else "external"

    def declared(self, name: str) -> bool:
        return name in self.services

    def of_kind(self, *kinds: str) -> list[ServiceSpec]:
        return [s for n, s in sorted(self.services.items()) if s.kind in kinds]

    def internal(self) -> list[ServiceSpec]:
        """Every declared service that runs inside the cluster (not external), sorted by name."""
        return [s for n, s in sorted(self.services.items()) if s.kind != "external"]

    def outs(self, name: str) -> list[str]:
        return sorted(self.out.get(name, ()))

    def ins(self, name: str) -> list[str]:
        return sorted(self.inc.get(name, ()))

    def neighbours(self, name: str) -> list[str]:
        return sorted(self.out.get(name, set()) | self.inc.get(name, set()))

    @cached_property
    def nodes(self) -> list[str]:
        found = set(self.services)
        for e in self.edges:
            found.add(e.source)
            found.add(e.target)
        return sorted(found)

    # --- graph algorithms ----------------------------------------------------------------

    @cached_property
    def strongly_connected(self) -> list[list[str]]:
        """Components with at least two members (iterative Tarjan: no recursion limit)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        result: list[list[str]] = []
        counter = 0
        for root in self.nodes:
            if root in index:
                continue
            work: list[tuple[str, Iterator[str]]] = [(root, iter(self.outs(root)))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, successors = work[-1]
                advanced = False
                for nxt in successors:
                    if nxt not in index:
                        index[nxt] = low[nxt] = counter
                        counter += 1
                        stack.append(nxt)
                        on_stack.add(nxt)
                        work.append((nxt, iter(self.outs(nxt))))
                        advanced = True
                        break
                    if nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
        return sorted(result)

    def shortest_cycle_through(self, start: str, members: set[str]) -> list[str]:
        """A shortest cycle start → … → start inside ``members`` (BFS, sorted neighbours)."""
        parent: dict[str, str] = {}
        frontier = [start]
        seen = {start}
        while frontier:
            nxt_frontier: list[str] = []
            for node in frontier:
                for nxt in self.outs(node):
                    if nxt not in members:
                        continue
                    if nxt == start:
                        back = [node]
                        while back[-1] != start:
                            back.append(parent[back[-1]])
                        return [*reversed(back), start]
                    if nxt not in seen:
                        seen.add(nxt)
                        parent[nxt] = node
                        nxt_frontier.append(nxt)
            frontier = nxt_frontier
        return [start]

    @cached_property
    def sync_chains(self) -> list[tuple[str, ...]]:
        """Maximal simple paths along synchronous edges, longest first.

        Enumeration is bounded (paths can be exponential in dense graphs); the traversal order
        is fixed, so the same inventory always yields the same chains.
        """
        max_steps, max_paths = 20000, 500
        steps = 0
        chains: list[tuple[str, ...]] = []
        sync_nodes = sorted(set(self.sync_out) | set(self.sync_in))
        starts = [n for n in sync_nodes if n in self.sync_out and n not in self.sync_in]
        # Nodes only reachable inside a cycle have no entry; start from them afterwards.
        starts += [n for n in sync_nodes if n in self.sync_out and n in self.sync_in]
        reached: set[str] = set()
        for start in starts:
            if start in reached and start in self.sync_in:
                continue
            path = [start]
            on_path = {start}
            work: list[Iterator[str]] = [iter(sorted(self.sync_out.get(start, ())))]
            extended = [False]
            reached.add(start)
            while work and steps < max_steps and len(chains) < max_paths:
                steps += 1
                nxt = next((n for n in work[-1] if n not in on_path), None)
                if nxt is None:
                    if not extended[-1] and len(path) > 1:
                        chains.append(tuple(path))
                    work.pop()
                    extended.pop()
                    on_path.discard(path.pop())
                    continue
                extended[-1] = True
                reached.add(nxt)
                path.append(nxt)
                on_path.add(nxt)
                work.append(iter(sorted(self.sync_out.get(nxt, ()))))
                extended.append(False)
        unique = sorted(set(chains), key=lambda c: (-len(c), c))
        return unique

    @cached_property
    def reachable_from_gateways(self) -> dict[str, tuple[str, ...]]:
        """Service → one shortest synchronous path from a gateway to it (BFS, sorted)."""
        paths: dict[str, tuple[str, ...]] = {}
        frontier: list[tuple[str, ...]] = []
        for gw in self.of_kind("gateway"):
            paths[gw.name] = (gw.name,)
            frontier.append((gw.name,))
        while frontier:
            nxt_frontier: list[tuple[str, ...]] = []
            for path in frontier:
                for nxt in sorted(self.sync_out.get(path[-1], ())):
                    if nxt not in paths:
                        paths[nxt] = (*path, nxt)
                        nxt_frontier.append(paths[nxt])
            frontier = nxt_frontier
        return paths
