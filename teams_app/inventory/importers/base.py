"""The importer contract and the checks every importer shares.

An importer turns already-parsed YAML documents (see ``safe_yaml.load_documents``) into a
``ParsedInventory``. ``Importer.parse`` runs the format-specific ``read`` and then ``finalize``:
limits, name and edge validation, inference, de-duplication. Everything raises
``ApplicationError`` with a message a person can act on; nothing is half-imported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from teams_app.errors import ApplicationError
from teams_app.inventory.hosts import HostRef, host_refs, is_public_host
from teams_app.inventory.inference import LABEL_HOSTS, LABEL_KIND, infer
from teams_app.inventory.types import DependencySpec, ParsedInventory, ServiceSpec

MAX_SERVICES = 2000
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

# Edges declared on purpose win over those guessed from environment values when both exist.
DECLARED_VIAS = ("depends_on", "links", "dependsOn", "dependencyOf", "consumesApis", "manual")
# A kind that says more about the edge beats one that says less.
_KIND_RANK = {"": 0, "unknown": 0, "sync_http": 1, "sync_grpc": 2, "async_event": 2, "cache": 3, "database": 3}


class Importer:
    """One input format. Subclasses set ``format`` and implement ``detect`` and ``read``."""

    format: str = ""

    def detect(self, docs: list[Any]) -> bool:
        raise NotImplementedError

    def parse(self, docs: list[Any]) -> ParsedInventory:
        return finalize(self.read(docs))

    def read(self, docs: list[Any]) -> ParsedInventory:
        """Build services and raw edges; ``finalize`` validates and infers afterwards."""
        raise NotImplementedError


# --- shape checks ---------------------------------------------------------------------------


def type_name(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def shape_error(where: str, field: str, expected: str, value: Any) -> ApplicationError:
    return ApplicationError(
        f"{where}: '{field}' must be {expected}, not {type_name(value)}.",
        {"where": where, "field": field},
    )


def expect_mapping(value: Any, where: str, field: str, *, allow_none: bool = True) -> dict[str, Any]:
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        raise shape_error(where, field, "a mapping", value)
    return value


def expect_list(value: Any, where: str, field: str, *, allow_none: bool = True) -> list[Any]:
    if value is None and allow_none:
        return []
    if not isinstance(value, list):
        raise shape_error(where, field, "a list", value)
    return value


def expect_str(value: Any, where: str, field: str, *, allow_none: bool = True) -> str:
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise shape_error(where, field, "a string", value)
    return value


def expect_int(value: Any, where: str, field: str, *, minimum: int = 0) -> int:
    # bool is an int subclass in Python; `replicas: true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise shape_error(where, field, "an integer", value)
    if value < minimum:
        raise ApplicationError(
            f"{where}: '{field}' must be at least {minimum}, not {value}.", {"where": where, "field": field}
        )
    return value


def scalar_text(value: Any, where: str, field: str) -> str:
    """A scalar as the string a container would see (YAML booleans as true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        raise shape_error(where, field, "a string, number or boolean", value)
    return str(value)  # dates and the like


def string_map(value: Any, where: str, field: str) -> dict[str, str]:
    """A mapping, or a list of "KEY=VALUE" / "KEY" items, as str -> str (compose style)."""
    if value is None:
        return {}
    result: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            result[str(key)] = scalar_text(item, where, f"{field}.{key}")
        return result
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise shape_error(where, f"{field}[{index}]", 'a "KEY=VALUE" string', item)
            key, _, text = item.partition("=")
            if not key.strip():
                raise ApplicationError(
                    f"{where}: '{field}[{index}]' has no name before '='.", {"where": where, "field": field}
                )
            result[key.strip()] = text
        return result
    raise shape_error(where, field, 'a mapping or a list of "KEY=VALUE" strings', value)


def check_name(name: Any, what: str) -> str:
    """Names are kept as written, but must be usable as a DNS label and a database key."""
    if not isinstance(name, str):
        raise ApplicationError(f"{what} has a name that is {type_name(name)}, not a string.", {"name": str(name)})
    if not NAME_RE.match(name):
        if not name:
            problem = "is empty"
        elif len(name) > 63:
            problem = "is longer than 63 characters"
        elif any(ch.isspace() for ch in name):
            problem = "contains whitespace"
        else:
            problem = "must start with a letter or digit and contain only letters, digits, '.', '-' and '_'"
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise ApplicationError(f"{what} name {shown!r} {problem}.", {"name": shown})
    return name


# --- finishing an inventory -----------------------------------------------------------------


def check_service_count(count: int) -> None:
    if count > MAX_SERVICES:
        raise ApplicationError(
            f"The file declares {count} services; at most {MAX_SERVICES} are supported.",
            {"count": count, "max": MAX_SERVICES},
        )


def finalize(inv: ParsedInventory) -> ParsedInventory:
    """Validate names and edges, infer kinds and patterns, then collapse duplicate edges."""
    if not inv.services:
        raise ApplicationError(f"The {inv.format} file declares no services.", {"format": inv.format})
    check_service_count(len(inv.services))
    for spec in inv.services:
        check_name(spec.name, "A service")
    counts = Counter(spec.name for spec in inv.services)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        raise ApplicationError(
            "Duplicate service names: " + ", ".join(duplicates) + ".", {"duplicates": duplicates}
        )
    for dep in inv.dependencies:
        if dep.target not in counts:
            raise ApplicationError(
                f"Service '{dep.source}' depends on unknown service '{dep.target}'.",
                {"source": dep.source, "target": dep.target, "via": dep.via},
            )
        if dep.source not in counts:  # pragma: no cover - importers only emit edges from declared services
            raise ApplicationError(f"Unknown service '{dep.source}' has dependencies.", {"source": dep.source})
        if dep.source == dep.target:
            raise ApplicationError(f"Service '{dep.source}' depends on itself.", {"source": dep.source})
    infer(inv)
    inv.dependencies = dedupe_dependencies(inv.dependencies)
    inv.warnings = list(dict.fromkeys(inv.warnings))
    return inv


def dedupe_dependencies(deps: Iterable[DependencySpec]) -> list[DependencySpec]:
    """One edge per (source, target): a declared ``via`` wins, and so does the more specific kind."""
    merged: dict[tuple[str, str], DependencySpec] = {}
    for dep in deps:
        key = (dep.source, dep.target)
        kept = merged.get(key)
        if kept is None:
            merged[key] = DependencySpec(dep.source, dep.target, dep.kind, dep.via)
            continue
        more_specific = _KIND_RANK.get(dep.kind, 0) > _KIND_RANK.get(kept.kind, 0)
        # Between two declarations, keep the one that explains the kept kind (consumesApis of an
        # asyncapi API over a bare dependsOn), so that re-inference reaches the same kind.
        if _is_declared(dep.via) and (not _is_declared(kept.via) or more_specific):
            kept.via = dep.via
        if more_specific:
            kept.kind = dep.kind
    return list(merged.values())


def _is_declared(via: str) -> bool:
    return via in DECLARED_VIAS


# --- edges from environment values ----------------------------------------------------------


def edges_from_environment(
    services: Iterable[ServiceSpec],
    resolve: Callable[[ServiceSpec, HostRef], list[str]],
    warnings: list[str],
) -> list[DependencySpec]:
    """One edge per (service, variable, declared target) whose value names the target's host.

    ``resolve`` maps a host reference to the names of declared services (empty when none);
    undeclared internet hosts only produce a warning, never a service.
    """
    edges: list[DependencySpec] = []
    for spec in services:
        warned: set[str] = set()
        for var, value in spec.environment.items():
            for ref in host_refs(value, var):
                targets = resolve(spec, ref)
                for target in targets:
                    if target != spec.name:
                        edges.append(DependencySpec(spec.name, target, "unknown", f"env:{var}"))
                if not targets and is_public_host(ref.host) and ref.host not in warned:
                    warned.add(ref.host)
                    warnings.append(
                        f"Service '{spec.name}' calls {ref.host} (env {var}), which the file does not declare; "
                        f"declare it as a service with labels {LABEL_KIND}=external and {LABEL_HOSTS}={ref.host} "
                        "to see the dependency."
                    )
    return edges


def host_entries(spec: ServiceSpec) -> list[str]:
    """Host names a service declares it answers to through the maestro.hosts label."""
    raw = str(spec.labels.get(LABEL_HOSTS, ""))
    return [h.strip().lower().rstrip(".") for h in re.split(r"[,;\s]+", raw) if h.strip()]


def declared_host_matcher(services: Iterable[ServiceSpec]) -> Callable[[ServiceSpec, str], list[str]]:
    """Map a host name to the service that declares it: one of its maestro.hosts names or a
    sub-domain of one; for a service labelled external, a domain containing its name also counts
    (api.stripe.com -> stripe). Built once, since few services declare hosts."""
    candidates = [
        (spec, host_entries(spec), str(spec.labels.get(LABEL_KIND, "")).strip().lower() == "external")
        for spec in services
    ]
    candidates = [c for c in candidates if c[1] or c[2]]

    def match(source: ServiceSpec, host: str) -> list[str]:
        for spec, entries, external in candidates:
            if spec is source:
                continue
            if any(host == entry or host.endswith("." + entry) for entry in entries):
                return [spec.name]
            if external and "." in host and spec.name.lower() in host.split(".")[:-1]:
                return [spec.name]
        return []

    return match
