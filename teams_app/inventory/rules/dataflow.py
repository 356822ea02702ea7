"""Data Flow Analyst: shared databases, dependency cycles, fan-in hotspots, idle brokers."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Context, Hit, RuleSet, hit, names

rules = RuleSet("dataflow")

FAN_IN_THRESHOLD = 4


@rules.rule(
    "DAT001",
    "warning",
    "Shared database",
    "A database used by two or more services: they are coupled through its schema, so one "
    "service's migration can break the others. Each service should own its data.",
)
def shared_database(ctx: Context) -> Iterator[Hit]:
    """Flag databases used by two or more services."""
    for db in ctx.of_kind("database"):
        clients = ctx.ins(db.name)
        if len(clients) >= 2:
            yield hit(
                [db.name, *clients],
                f"{db.name} is shared by {names(clients)}; a schema change for one can break the others",
            )


@rules.rule(
    "DAT002",
    "critical",
    "Dependency cycle",
    "Services that depend on each other in a cycle: none of them can be deployed, scaled or "
    "fail independently, and request loops become possible.",
)
def dependency_cycle(ctx: Context) -> Iterator[Hit]:
    """Name each dependency cycle (one per strongly connected group)."""
    for component in ctx.strongly_connected:
        cycle = ctx.shortest_cycle_through(component[0], set(component))
        why = f"{' → '.join(cycle)} form a dependency cycle"
        if len(component) > len(cycle) - 1:
            why += f" (strongly connected: {', '.join(component)})"
        why += "; none of them can be deployed or fail independently"
        yield hit(component, why)


@rules.rule(
    "DAT003",
    "warning",
    "Fan-in hotspot",
    f"A service that {FAN_IN_THRESHOLD} or more services depend on: its load and its "
    "outages are multiplied across the cluster.",
)
def fan_in_hotspot(ctx: Context) -> Iterator[Hit]:
    """Flag services with many inbound dependencies."""
    for name in ctx.nodes:
        # Databases are judged by DAT001, brokers and caches exist to be shared.
        if ctx.kind(name) in ("database", "broker", "cache"):
            continue
        callers = ctx.ins(name)
        if len(callers) >= FAN_IN_THRESHOLD:
            yield hit(
                [name, *callers],
                f"{name} is a fan-in hotspot: {len(callers)} services depend on it ({', '.join(callers)})",
            )


@rules.rule(
    "DAT004",
    "warning",
    "Unused broker",
    "A message broker no service is connected to: events published there, if any, are lost, "
    "or the broker is dead weight.",
)
def unused_broker(ctx: Context) -> Iterator[Hit]:
    """Flag brokers with no connected service."""
    for broker in ctx.of_kind("broker"):
        if not ctx.neighbours(broker.name):
            yield hit(
                [broker.name],
                f"{broker.name} is a broker with no producers or consumers in the inventory",
            )


@rules.rule(
    "DAT005",
    "warning",
    "Broker with a single participant",
    "A broker only one service is connected to: whatever it publishes has no consumer "
    "(or whatever it consumes has no producer) inside the cluster.",
)
def lonely_broker(ctx: Context) -> Iterator[Hit]:
    """Flag brokers that only one service talks to."""
    for broker in ctx.of_kind("broker"):
        peers = ctx.neighbours(broker.name)
        if len(peers) == 1:
            yield hit(
                [broker.name, peers[0]],
                f"{broker.name} is used only by {peers[0]}; its events reach no other service",
            )


@rules.rule(
    "DAT006",
    "info",
    "Database without clients",
    "A database no service is declared to use: either the dependency is missing from the "
    "inventory or the database is orphaned.",
)
def orphan_database(ctx: Context) -> Iterator[Hit]:
    """Flag databases that no service uses."""
    for db in ctx.of_kind("database"):
        if not ctx.neighbours(db.name):
            yield hit(
                [db.name],
                f"{db.name} has no clients in the inventory; its data flow is unknown",
            )
