"""Hand-built inventories for rules and diagram tests (no importers, no Django).

``svc`` gives every service the defaults of a well-run cluster (healthcheck, restart policy,
limits, pinned image, two replicas, REST + JWT), so a test changes only what it is about.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable

from teams_app.inventory.types import DependencySpec, ParsedInventory, PortSpec, ServiceSpec

EdgeLike = DependencySpec | tuple[str, str] | tuple[str, str, str]

_DATASTORE_IMAGES = {"database": "postgres:16.3", "cache": "redis:7.2", "broker": "rabbitmq:3.13"}
_DATASTORE_STORAGE = {"database": "postgresql", "cache": "redis", "broker": ""}


def svc(
    name: str,
    kind: str = "service",
    *,
    comm: list[str] | None = None,
    auth: list[str] | None = None,
    storage: str | None = None,
    host_ports: Iterable[int] = (),
    **fields: object,
) -> ServiceSpec:
    """A ServiceSpec with clean defaults for its kind; keyword fields override them."""
    if kind == "external":
        spec = ServiceSpec(name=name, kind=kind)
    elif kind in _DATASTORE_IMAGES:
        spec = ServiceSpec(
            name=name,
            kind=kind,
            image=_DATASTORE_IMAGES[kind],
            healthcheck=True,
            restart="unless-stopped",
            replicas=1,
            resources={"cpus": "1", "memory": "1G"},
            patterns={"communication": [], "storage": _DATASTORE_STORAGE[kind], "auth": []},
        )
    else:
        spec = ServiceSpec(
            name=name,
            kind=kind,
            image=f"acme/{name}:1.4.2",
            healthcheck=True,
            restart="unless-stopped",
            replicas=2,
            resources={"cpus": "0.5", "memory": "256M"},
            patterns={"communication": ["rest"], "storage": "", "auth": ["jwt"]},
        )
    patterns = dict(spec.patterns)
    if comm is not None:
        patterns["communication"] = comm
    if auth is not None:
        patterns["auth"] = auth
    if storage is not None:
        patterns["storage"] = storage
    spec.patterns = patterns
    spec.ports = [PortSpec(container=p, host=p) for p in host_ports]
    return dataclasses.replace(spec, **fields)  # type: ignore[arg-type]


def dep(source: str, target: str, kind: str = "sync_http") -> DependencySpec:
    return DependencySpec(source=source, target=target, kind=kind, via="test")


def _as_dep(edge: EdgeLike) -> DependencySpec:
    if isinstance(edge, DependencySpec):
        return edge
    return dep(*edge)


def make_inventory(
    services: Iterable[ServiceSpec | str] = (),
    edges: Iterable[EdgeLike] = (),
    *,
    format: str = "compose",
) -> ParsedInventory:
    """An inventory from specs (or bare names, made with ``svc``) and (source, target[, kind]) edges."""
    specs = [s if isinstance(s, ServiceSpec) else svc(s) for s in services]
    return ParsedInventory(format=format, services=specs, dependencies=[_as_dep(e) for e in edges])


def clean_cluster(*, format: str = "compose") -> ParsedInventory:
    """A small, healthy cluster on which no rule reports a warning or a critical finding.

    gateway → orders → payments (HTTP); each service owns its database; orders caches in
    redis; both services publish to rabbitmq.
    """
    return make_inventory(
        [
            svc("gateway", "gateway", image="traefik:v3.0", host_ports=[443]),
            svc("orders", comm=["amqp", "rest"], storage="postgresql"),
            svc("payments", comm=["amqp", "rest"], storage="postgresql"),
            svc("orders-db", "database"),
            svc("payments-db", "database"),
            svc("redis", "cache"),
            svc("rabbitmq", "broker"),
        ],
        [
            ("gateway", "orders", "sync_http"),
            ("orders", "payments", "sync_http"),
            ("orders", "orders-db", "database"),
            ("payments", "payments-db", "database"),
            ("orders", "redis", "cache"),
            ("orders", "rabbitmq", "async_event"),
            ("payments", "rabbitmq", "async_event"),
        ],
        format=format,
    )


def updated(inv: ParsedInventory, name: str, **fields: object) -> ParsedInventory:
    """A copy of ``inv`` with service ``name`` changed; comm/auth/storage edit its patterns."""
    out = copy.deepcopy(inv)
    for index, spec in enumerate(out.services):
        if spec.name == name:
            patterns = dict(spec.patterns)
            for key, pattern in (("comm", "communication"), ("auth", "auth"), ("storage", "storage")):
                if key in fields:
                    patterns[pattern] = fields.pop(key)
            if "host_ports" in fields:
                fields["ports"] = [PortSpec(container=p, host=p) for p in fields.pop("host_ports")]  # type: ignore[attr-defined]
            out.services[index] = dataclasses.replace(spec, patterns=patterns, **fields)  # type: ignore[arg-type]
            return out
    raise KeyError(name)


def extended(
    inv: ParsedInventory, services: Iterable[ServiceSpec | str] = (), edges: Iterable[EdgeLike] = ()
) -> ParsedInventory:
    """A copy of ``inv`` with more services and edges."""
    out = copy.deepcopy(inv)
    out.services += [s if isinstance(s, ServiceSpec) else svc(s) for s in services]
    out.dependencies += [_as_dep(e) for e in edges]
    return out


def without_edges(inv: ParsedInventory, *pairs: tuple[str, str]) -> ParsedInventory:
    """A copy of ``inv`` without the edges between the given (source, target) pairs."""
    out = copy.deepcopy(inv)
    drop = set(pairs)
    out.dependencies = [d for d in out.dependencies if (d.source, d.target) not in drop]
    return out
