"""DevOps Specialist: healthchecks, image tags, restart policies, resource limits."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Context, Hit, RuleSet, hit

rules = RuleSet("devops")

# Tags that name a branch or channel: the image behind them changes without the file changing.
MOVING_TAGS = frozenset(
    {
        "main",
        "master",
        "dev",
        "develop",
        "development",
        "edge",
        "nightly",
        "stable",
        "snapshot",
        "canary",
        "head",
    }
)


def image_tag(image: str) -> str | None:
    """The tag of an image reference; "" when untagged, None when pinned by digest."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]  # a registry host may carry a port: localhost:5000/app
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _pulled(ctx: Context) -> Iterator[tuple[str, str, str]]:
    """(name, image, tag) of services run from a pulled image (not built here, not external)."""
    for spec in ctx.internal():
        if spec.build or not spec.image:
            continue
        tag = image_tag(spec.image.strip())
        if tag is not None:
            yield spec.name, spec.image.strip(), tag


@rules.rule(
    "OPS001",
    "warning",
    "Missing healthcheck",
    "A service without a healthcheck (compose healthcheck, Kubernetes readiness/liveness probe): "
    "the orchestrator routes traffic to it and starts dependants before it is ready.",
    runtime=True,
)
def missing_healthcheck(ctx: Context) -> Iterator[Hit]:
    """Flag services without a healthcheck."""
    for spec in ctx.internal():
        if not spec.healthcheck:
            yield hit(
                [spec.name],
                f"{spec.name} has no healthcheck; failures are noticed only by its callers",
            )


@rules.rule(
    "OPS002",
    "warning",
    "latest or missing image tag",
    "An image pulled as :latest or with no tag: every pull may run different code, and "
    "rollbacks have nothing to roll back to.",
    runtime=True,
)
def latest_tag(ctx: Context) -> Iterator[Hit]:
    """Flag images pulled with the latest tag or without a tag."""
    for name, image, tag in _pulled(ctx):
        if tag == "":
            yield hit(
                [name],
                f"{name} runs image {image} with no tag (implicitly latest); pin a version",
            )
        elif tag.lower() == "latest":
            yield hit([name], f"{name} runs image {image}; pin a version instead of latest")


@rules.rule(
    "OPS003",
    "warning",
    "No restart policy",
    "A compose service without a restart policy stays down after a crash or a host reboot.",
)
def no_restart_policy(ctx: Context) -> Iterator[Hit]:
    """Flag compose services without a restart policy."""
    if ctx.format != "compose":
        return  # Kubernetes restarts pods itself; Backstage and manual entries carry no policy.
    for spec in ctx.internal():
        if not spec.restart:
            yield hit(
                [spec.name],
                f"{spec.name} has no restart policy; it stays down after a crash",
            )


@rules.rule(
    "OPS004",
    "info",
    "No resource limits",
    "A service without CPU or memory limits can starve its neighbours on the same host or node.",
    runtime=True,
)
def no_resource_limits(ctx: Context) -> Iterator[Hit]:
    """Flag services without resource limits."""
    for spec in ctx.internal():
        if not spec.resources:
            yield hit(
                [spec.name],
                f"{spec.name} has no CPU or memory limits; it can starve its neighbours",
            )


@rules.rule(
    "OPS005",
    "info",
    "Moving image tag",
    "An image pulled by a branch or channel tag (main, develop, stable, nightly, ...): like "
    "latest, the code behind it changes without the inventory changing.",
    runtime=True,
)
def moving_tag(ctx: Context) -> Iterator[Hit]:
    """Flag images pulled by a branch or channel tag."""
    for name, image, tag in _pulled(ctx):
        if tag.lower() in MOVING_TAGS:
            yield hit([name], f"{name} runs image {image}; the {tag} tag moves, pin a version")
