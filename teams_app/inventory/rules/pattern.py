"""Pattern Archaeologist: the cluster's dominant patterns and who deviates from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from teams_app.inventory.types import ServiceSpec

from .base import (
    Context,
    Hit,
    RuleSet,
    auth,
    communication,
    hit,
    names,
    plural,
    storage,
)

rules = RuleSet("pattern")


def _ranking(specs: list[ServiceSpec], get: Callable[[ServiceSpec], list[str]]) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for spec in specs:
        counts.update(set(get(spec)))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# A pattern is a convention only when a real majority follows it, and more than a couple do.
MIN_DOMINANT = 2


def _dominant(ranking: list[tuple[str, int]], total: int, minimum: int = MIN_DOMINANT) -> tuple[str, int] | None:
    """The strictly most common value, used by at least ``minimum`` and by more than half of the
    ``total`` services; a tie has no dominant."""
    if not ranking or ranking[0][1] < minimum or ranking[0][1] * 2 <= total:
        return None
    if len(ranking) > 1 and ranking[1][1] == ranking[0][1]:
        return None
    return ranking[0]


def _apps(ctx: Context) -> list[ServiceSpec]:
    return ctx.of_kind("service", "gateway")


@rules.rule(
    "PAT001",
    "info",
    "Communication pattern catalogue",
    "Counts the communication patterns (REST, gRPC, GraphQL, AMQP, Kafka, NATS, Redis pub/sub) "
    "used by the cluster's services and names the dominant one new services should follow.",
)
def communication_catalogue(ctx: Context) -> Iterator[Hit]:
    """Catalogue communication patterns and name the dominant one."""
    apps = _apps(ctx)
    ranking = _ranking(apps, communication)
    if not ranking:
        return
    top = ranking[0][1]
    leaders = [p for p, c in ranking if c == top]
    others = ", ".join(f"{p} ({c})" for p, c in ranking if c != top)
    if _dominant(ranking, len(apps)) is not None:
        why = f"{leaders[0]} is the dominant communication pattern ({top} of {len(apps)} services)"
    elif len(leaders) > 1:
        why = f"{names(leaders)} are equally common communication patterns ({top} of {len(apps)} services each)"
    else:
        # 1 of 11 is no convention: say what is used without naming a pattern to follow.
        listing = ", ".join(f"{p} ({c})" for p, c in ranking)
        yield hit(
            (s.name for s in apps if communication(s)),
            f"no communication pattern is dominant: {listing} of {len(apps)} services",
        )
        return
    if others:
        why += f"; also used: {others}"
    yield hit((s.name for s in apps if set(communication(s)) & set(leaders)), why)


@rules.rule(
    "PAT002",
    "warning",
    "Deviation from the dominant communication pattern",
    "A service whose detected communication patterns do not include the cluster's dominant one "
    "(pattern proliferation): every extra protocol adds clients, tooling and failure modes.",
)
def communication_deviation(ctx: Context) -> Iterator[Hit]:
    """Flag services that do not speak the dominant communication pattern."""
    apps = _apps(ctx)
    dominant = _dominant(_ranking(apps, communication), len(apps))
    if dominant is None:
        return
    pattern, count = dominant
    for spec in apps:
        used = communication(spec)
        if used and pattern not in used:
            yield hit(
                [spec.name],
                f"{spec.name} communicates via {', '.join(used)} while the dominant pattern is "
                f"{pattern} ({count} of {len(apps)} services)",
            )


@rules.rule(
    "PAT003",
    "info",
    "Mixed storage engines",
    "More than one storage engine among the cluster's databases; each engine needs its own "
    "backups, monitoring and expertise, so a new one should be a deliberate choice.",
)
def mixed_storage(ctx: Context) -> Iterator[Hit]:
    """Report databases whose engine differs from the dominant storage engine."""
    holders = [s for s in ctx.of_kind("database") if storage(s)]
    unit = "database"
    if not holders:
        unit = "service"
        # No database containers (e.g. managed databases): judge the engines services use.
        holders = [s for s in _apps(ctx) if storage(s)]
    ranking = _ranking(holders, lambda s: [storage(s)])
    if len(ranking) < 2:
        return
    dominant = _dominant(ranking, len(holders), minimum=2)
    if dominant is None:
        listing = "; ".join(
            f"{engine} ({', '.join(s.name for s in holders if storage(s) == engine)})" for engine, _ in ranking
        )
        yield hit(
            (s.name for s in holders),
            f"storage engines are mixed with no dominant one: {listing}",
        )
        return
    engine, count = dominant
    for spec in holders:
        if storage(spec) != engine:
            yield hit(
                [spec.name],
                f"{spec.name} uses {storage(spec)} while the dominant storage engine is {engine} "
                f"({plural(count, unit)})",
            )


@rules.rule(
    "PAT004",
    "warning",
    "Deviation from the dominant auth pattern",
    "A service that authenticates differently from the cluster's dominant auth pattern "
    "(JWT, OAuth2, API keys, mTLS, basic, session); callers must handle one more scheme.",
)
def auth_deviation(ctx: Context) -> Iterator[Hit]:
    """Flag services whose auth pattern differs from the dominant one."""
    apps = _apps(ctx)
    dominant = _dominant(_ranking(apps, auth), len(apps))
    if dominant is None:
        return
    pattern, count = dominant
    for spec in apps:
        used = auth(spec)
        if used and pattern not in used:
            yield hit(
                [spec.name],
                f"{spec.name} authenticates with {', '.join(used)} while the dominant auth pattern is "
                f"{pattern} ({count} of {len(apps)} services)",
            )


@rules.rule(
    "PAT005",
    "info",
    "No detectable communication pattern",
    "A service whose image, ports, environment and labels reveal no communication pattern; "
    "its contract is undocumented, so integrating with it relies on assumptions.",
)
def no_communication(ctx: Context) -> Iterator[Hit]:
    """Flag services with no detectable communication pattern."""
    for spec in _apps(ctx):
        if not communication(spec):
            yield hit(
                [spec.name],
                f"{spec.name} has no detectable communication pattern (no known ports, protocol "
                "environment or labels); document how it is called",
            )
