"""Integration Architect: integration points, synchronous call chains, isolated services."""

from __future__ import annotations

from collections.abc import Iterator

from .base import APP_KINDS, DATASTORE_KINDS, Context, Hit, RuleSet, hit, names

rules = RuleSet("integration")

TOP_INTEGRATION_POINTS = 3
MIN_INTEGRATION_POINTS = 3
CHAIN_HOPS = 3
MAX_REPORTED_CHAINS = 10


@rules.rule(
    "INT001",
    "info",
    "Integration points per service",
    "The services with the most integration points (distinct inbound and outbound neighbours); "
    "changes to them ripple furthest and new services most likely integrate with them.",
)
def integration_points(ctx: Context) -> Iterator[Hit]:
    """Name the services with the most integration points."""
    degrees = [
        (len(ctx.neighbours(s.name)), s.name)
        for s in ctx.of_kind(*APP_KINDS)
        if len(ctx.neighbours(s.name)) >= MIN_INTEGRATION_POINTS
    ]
    for degree, name in sorted(degrees, key=lambda d: (-d[0], d[1]))[:TOP_INTEGRATION_POINTS]:
        ins, outs = ctx.ins(name), ctx.outs(name)
        parts = []
        if ins:
            parts.append(f"{len(ins)} inbound: {', '.join(ins)}")
        if outs:
            parts.append(f"{len(outs)} outbound: {', '.join(outs)}")
        yield hit([name], f"{name} has {degree} integration points ({'; '.join(parts)})")


@rules.rule(
    "INT002",
    "warning",
    "Synchronous call chain",
    f"A chain of {CHAIN_HOPS} or more synchronous calls (HTTP/gRPC); the caller at the head "
    "waits for every hop, and any hop failing fails the whole request.",
)
def sync_call_chain(ctx: Context) -> Iterator[Hit]:
    """Report synchronous call chains of three or more hops."""
    chains = [c for c in ctx.sync_chains if len(c) - 1 >= CHAIN_HOPS][:MAX_REPORTED_CHAINS]
    for chain in chains:
        yield hit(
            chain,
            f"synchronous call chain of {len(chain) - 1} hops: {' → '.join(chain)}; "
            f"{chain[0]} waits on every hop and fails if any of them fails",
        )


@rules.rule(
    "INT003",
    "warning",
    "Service in isolation",
    "A service with no integration points at all: either its dependencies are not declared "
    "(the analysis is blind to them) or it is unused.",
)
def isolated_service(ctx: Context) -> Iterator[Hit]:
    """Flag services with no edges at all (datastores and externals excluded)."""
    for spec in ctx.internal():
        if spec.kind in DATASTORE_KINDS:
            continue
        if not ctx.neighbours(spec.name):
            yield hit(
                [spec.name],
                f"{spec.name} has no integration points: no declared dependencies and no callers",
            )


@rules.rule(
    "INT004",
    "warning",
    "Dependency on an undeclared service",
    "A dependency whose target is not in the inventory (assumption-based integration): "
    "its contract, owner and availability are unknown.",
)
def undeclared_dependency(ctx: Context) -> Iterator[Hit]:
    """Flag edges whose endpoint is not declared in the inventory."""
    missing = sorted(n for n in ctx.nodes if not ctx.declared(n))
    for name in missing:
        callers = ctx.ins(name)
        callees = ctx.outs(name)
        if callers:
            why = f"{names(callers)} depend{'s' if len(callers) == 1 else ''} on {name}, which is not in the inventory"
        else:
            why = f"{name} is not in the inventory but depends on {names(callees)}"
        yield hit([name, *callers, *callees], why)
