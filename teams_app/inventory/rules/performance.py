"""Performance Engineer: single points of failure, long synchronous chains, fan-out, caches."""

from __future__ import annotations

from collections.abc import Iterator

from .base import APP_KINDS, Context, Hit, RuleSet, hit, names

rules = RuleSet("performance")

CRITICAL_PATH_CALLERS = 2
LONG_CHAIN_HOPS = 4
FAN_OUT_THRESHOLD = 4
MAX_REPORTED_CHAINS = 10


@rules.rule(
    "PERF001",
    "warning",
    "Single replica on a critical path",
    "A service with one replica that the gateway's request path runs through, or that two or "
    "more services call synchronously: one crash or deploy interrupts all of those requests.",
    runtime=True,
)
def single_replica_critical(ctx: Context) -> Iterator[Hit]:
    """Flag single-replica services on the gateway path or with several synchronous callers."""
    from_gateway = ctx.reachable_from_gateways
    for spec in ctx.of_kind(*sorted(APP_KINDS)):
        if spec.replicas != 1:
            continue  # 0 means scaled down on purpose; more than one is what we recommend
        callers = sorted(ctx.sync_in.get(spec.name, ()))
        path = from_gateway.get(spec.name)
        if len(callers) >= CRITICAL_PATH_CALLERS:
            reason = f"receives synchronous calls from {len(callers)} services ({', '.join(callers)})"
        elif path is not None and len(path) > 1:
            reason = f"is on the gateway's request path ({' → '.join(path)})"
        elif path is not None and ctx.sync_out.get(spec.name):
            reason = "is the gateway every request passes through"
        else:
            continue
        yield hit([spec.name], f"{spec.name} runs a single replica and {reason}")


@rules.rule(
    "PERF002",
    "warning",
    "Long synchronous chain",
    f"A chain of {LONG_CHAIN_HOPS} or more synchronous hops: end-to-end latency is the sum of "
    "every hop and tail latencies compound; consider events, caching or collapsing hops.",
)
def long_sync_chain(ctx: Context) -> Iterator[Hit]:
    """Report synchronous chains of four or more hops as a latency risk."""
    chains = [c for c in ctx.sync_chains if len(c) - 1 >= LONG_CHAIN_HOPS][:MAX_REPORTED_CHAINS]
    for chain in chains:
        yield hit(
            chain,
            f"{' → '.join(chain)} is {len(chain) - 1} synchronous hops deep; "
            "end-to-end latency is the sum of every hop",
        )


@rules.rule(
    "PERF003",
    "warning",
    "Synchronous fan-out",
    f"A service making synchronous calls to {FAN_OUT_THRESHOLD} or more services per request "
    "path: its latency is the slowest callee's and its availability the product of theirs.",
)
def sync_fan_out(ctx: Context) -> Iterator[Hit]:
    """Flag services calling many others synchronously."""
    for name in ctx.nodes:
        targets = sorted(ctx.sync_out.get(name, ()))
        if len(targets) >= FAN_OUT_THRESHOLD:
            yield hit(
                [name, *targets],
                f"{name} calls {len(targets)} services synchronously ({', '.join(targets)})",
            )


@rules.rule(
    "PERF004",
    "info",
    "Unused cache",
    "A cache no service is declared to use: either the dependency is missing from the "
    "inventory or the cache costs memory for nothing.",
)
def unused_cache(ctx: Context) -> Iterator[Hit]:
    """Flag caches with no clients."""
    for cache in ctx.of_kind("cache"):
        if not ctx.neighbours(cache.name):
            yield hit([cache.name], f"{cache.name} is a cache no service uses")


@rules.rule(
    "PERF005",
    "info",
    "Uncached readers of a cached database",
    "Services reading a database that other services front with a cache: they bypass it and "
    "carry the full read load to the database.",
)
def uncached_readers(ctx: Context) -> Iterator[Hit]:
    """Flag services sharing a database with a cache user while not using a cache themselves."""

    def caches_of(name: str) -> list[str]:
        return [t for t in ctx.outs(name) if ctx.kind(t) == "cache"]

    for db in ctx.of_kind("database"):
        clients = ctx.ins(db.name)
        cached = [c for c in clients if caches_of(c)]
        uncached = [c for c in clients if not caches_of(c)]
        if cached and uncached:
            used = sorted({cache for c in cached for cache in caches_of(c)})
            yield hit(
                [db.name, *uncached],
                f"{names(uncached)} read{'s' if len(uncached) == 1 else ''} {db.name} without a cache "
                f"while {names(cached)} cache{'s' if len(cached) == 1 else ''} it in {names(used)}",
            )
