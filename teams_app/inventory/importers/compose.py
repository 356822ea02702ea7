"""Docker Compose files (the compose specification; ``version:`` is ignored as Compose does).

Ports: ``PortSpec.host`` is the published host port; ``0`` means published on an ephemeral host
port (short syntax ``"80"``, ``"127.0.0.1::80"``, long syntax without ``published``), which is
still reachable from outside the host; ``None`` never occurs for compose ``ports`` entries,
because every entry there publishes. Port ranges are expanded up to 100 ports.

Edges come from ``depends_on`` (both forms), ``links`` and environment values naming another
service by its name, ``container_name``, ``hostname``, network alias or ``maestro.hosts`` label.
A service is only ever external when labelled ``maestro.kind: external``; such an entry needs no
image (Compose itself would refuse it, so keep it in a profile that is never started).
"""

from __future__ import annotations

from typing import Any

from teams_app.errors import ApplicationError
from teams_app.inventory.hosts import HostRef
from teams_app.inventory.importers.base import (
    Importer,
    check_name,
    check_service_count,
    declared_host_matcher,
    edges_from_environment,
    expect_int,
    expect_list,
    expect_mapping,
    expect_str,
    scalar_text,
    shape_error,
    string_map,
    type_name,
)
from teams_app.inventory.inference import LABEL_DESCRIPTION, LABEL_KIND
from teams_app.inventory.types import (
    DependencySpec,
    ParsedInventory,
    PortSpec,
    ServiceSpec,
)

MAX_PORT_RANGE = 100


class ComposeImporter(Importer):
    format = "compose"

    def detect(self, docs: list[Any]) -> bool:
        return any(
            isinstance(doc, dict) and "services" in doc and not ("apiVersion" in doc and "kind" in doc) for doc in docs
        )

    def read(self, docs: list[Any]) -> ParsedInventory:
        inv = ParsedInventory(format=self.format)
        aliases: dict[str, str] = {}
        for number, doc in enumerate(docs, 1):
            if not isinstance(doc, dict):
                raise ApplicationError(
                    f"Document {number} must be a mapping with 'services', not {type_name(doc)}.", {"document": number}
                )
            if "services" not in doc:
                raise ApplicationError(f"Document {number} has no 'services' section.", {"document": number})
            services = doc["services"]
            if services is not None and not isinstance(services, dict):
                raise shape_error(f"Document {number}", "services", "a mapping of service names to settings", services)
            services = services or {}
            check_service_count(len(inv.services) + len(services))
            for raw_name, body in services.items():
                # An unquoted numeric key (`2048:`) is still a name.
                name = check_name(str(raw_name) if isinstance(raw_name, int) else raw_name, "A service")
                spec, deps, names = _read_service(name, body, inv.warnings)
                inv.services.append(spec)
                inv.dependencies.extend(deps)
                for alias, target in names:
                    aliases.setdefault(alias.lower(), target)

        declared_host = declared_host_matcher(inv.services)

        def resolve(source: ServiceSpec, ref: HostRef) -> list[str]:
            if ref.host in aliases:
                return [aliases[ref.host]]
            return declared_host(source, ref.host)

        inv.dependencies.extend(edges_from_environment(inv.services, resolve, inv.warnings))
        return inv


def _read_service(
    name: str, body: Any, warnings: list[str]
) -> tuple[ServiceSpec, list[DependencySpec], list[tuple[str, str]]]:
    """The service, its declared edges, and (host name, service) pairs it makes resolvable."""
    where = f"Service '{name}'"
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApplicationError(
            f"{where} must be a mapping of settings, not {type_name(body)}.", {"service": name, "field": ""}
        )
    spec = ServiceSpec(name=name)
    spec.image = expect_str(body.get("image"), where, "image").strip()
    spec.build = _build_context(body.get("build"), where)

    for index, item in enumerate(expect_list(body.get("ports"), where, "ports")):
        spec.ports.extend(_ports(item, where, f"ports[{index}]", warnings))
    for index, item in enumerate(expect_list(body.get("expose"), where, "expose")):
        for port in _port_numbers(scalar_text(item, where, f"expose[{index}]").split("/")[0], where, f"expose[{index}]"):
            if port not in spec.expose:
                spec.expose.append(port)

    spec.environment = string_map(body.get("environment"), where, "environment")
    spec.env_files = _env_files(body.get("env_file"), where)
    spec.labels = string_map(body.get("labels"), where, "labels")
    spec.description = spec.labels.get(LABEL_DESCRIPTION, "")

    names = [(name, name)]
    for field in ("container_name", "hostname"):
        value = expect_str(body.get(field), where, field).strip()
        if value:
            names.append((value, name))
    spec.networks, network_aliases = _networks(body.get("networks"), where)
    names.extend((alias, name) for alias in network_aliases)

    spec.healthcheck = _healthcheck(body.get("healthcheck"), where)
    restart = body.get("restart")
    # `restart: no` unquoted is the YAML 1.1 boolean false.
    spec.restart = "no" if restart is False else scalar_text(restart, where, "restart").strip()
    if "scale" in body:
        spec.replicas = expect_int(body["scale"], where, "scale")
    _deploy(body.get("deploy"), spec, where)
    if "mem_limit" in body and "memory" not in spec.resources:
        spec.resources["memory"] = scalar_text(body["mem_limit"], where, "mem_limit")
    if "cpus" in body and "cpus" not in spec.resources:
        spec.resources["cpus"] = scalar_text(body["cpus"], where, "cpus")

    deps = [DependencySpec(name, target, "unknown", "depends_on") for target in _depends_on(body.get("depends_on"), where)]
    for index, item in enumerate(expect_list(body.get("links"), where, "links")):
        target, _, alias = expect_str(item, where, f"links[{index}]").partition(":")
        deps.append(DependencySpec(name, target.strip(), "unknown", "links"))
        if alias.strip():
            names.append((alias.strip(), target.strip()))

    if not spec.image and not spec.build and spec.labels.get(LABEL_KIND, "").strip().lower() != "external":
        warnings.append(f"Service '{name}' has neither an image nor a build context.")
    return spec, deps, names


def _build_context(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return expect_str(value.get("context"), where, "build.context").strip() or "."
    raise shape_error(where, "build", "a path or a mapping with 'context'", value)


def _port_numbers(text: str, where: str, field: str) -> list[int]:
    text = text.strip()
    first, dash, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if dash else low
    except ValueError:
        raise ApplicationError(
            f"{where}: '{field}' has an invalid port {text!r}.", {"where": where, "field": field}
        ) from None
    if not (1 <= low <= 65535 and 1 <= high <= 65535) or high < low:
        raise ApplicationError(f"{where}: '{field}' has an invalid port {text!r}.", {"where": where, "field": field})
    return list(range(low, high + 1))


def _ports(item: Any, where: str, field: str, warnings: list[str]) -> list[PortSpec]:
    if isinstance(item, dict):
        return [_long_port(item, where, field)]
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise shape_error(where, field, 'a port ("8080:80") or a mapping with "target"', item)
    text = str(item).strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        protocol = protocol.strip().lower() or "tcp"
    host_ip = ""
    if text.startswith("["):  # [::1]:8080:80
        end = text.find("]:")
        if end < 0:
            raise ApplicationError(f"{where}: '{field}' has an invalid port {item!r}.", {"where": where, "field": field})
        host_ip = text[1:end]
        text = text[end + 2 :]
        parts = ["::", *text.split(":")]
    else:
        parts = text.split(":")
    if len(parts) == 1:
        host_text, container_text = "", parts[0]
    elif len(parts) == 2:
        host_text, container_text = parts
    elif len(parts) == 3:
        host_ip = host_ip or parts[0].strip()
        host_text, container_text = parts[1], parts[2]
    else:
        raise ApplicationError(f"{where}: '{field}' has an invalid port {item!r}.", {"where": where, "field": field})

    containers = _port_numbers(container_text, where, field)
    hosts = _port_numbers(host_text, where, field) if host_text.strip() else []
    if hosts and len(containers) == 1 and len(hosts) > 1:
        hosts = hosts[:1]  # "8000-8010:80": Compose picks one free host port of the range
    if hosts and len(hosts) != len(containers):
        raise ApplicationError(
            f"{where}: '{field}' maps {len(hosts)} host ports to {len(containers)} container ports.",
            {"where": where, "field": field},
        )
    pairs = list(zip(hosts, containers, strict=True)) if hosts else [(0, c) for c in containers]
    if len(pairs) > MAX_PORT_RANGE:
        warnings.append(f"{where}: '{field}' publishes {len(pairs)} ports; only the first is kept.")
        pairs = pairs[:1]
    return [PortSpec(container=c, host=h, protocol=protocol, host_ip=host_ip) for h, c in pairs]


def _long_port(item: dict[str, Any], where: str, field: str) -> PortSpec:
    if "target" not in item:
        raise ApplicationError(f"{where}: '{field}' has no 'target' port.", {"where": where, "field": field})
    container = expect_int(item["target"], where, f"{field}.target", minimum=1)
    published = item.get("published")
    host = 0
    if published not in (None, ""):
        host = _port_numbers(scalar_text(published, where, f"{field}.published"), where, f"{field}.published")[0]
    protocol = scalar_text(item.get("protocol") or "tcp", where, f"{field}.protocol").lower()
    if container > 65535:
        raise ApplicationError(f"{where}: '{field}.target' is not a port: {container}.", {"where": where, "field": field})
    host_ip = scalar_text(item.get("host_ip"), where, f"{field}.host_ip").strip().strip("[]")
    return PortSpec(container=container, host=host, protocol=protocol, host_ip=host_ip)


def _env_files(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    files: list[str] = []
    for index, item in enumerate(expect_list(value, where, "env_file")):
        if isinstance(item, dict):
            files.append(expect_str(item.get("path"), where, f"env_file[{index}].path"))
        else:
            files.append(expect_str(item, where, f"env_file[{index}]"))
    return [f for f in files if f]


def _networks(value: Any, where: str) -> tuple[list[str], list[str]]:
    if value is None:
        return [], []
    if isinstance(value, list):
        return [expect_str(item, where, f"networks[{i}]") for i, item in enumerate(value)], []
    aliases: list[str] = []
    for network, config in expect_mapping(value, where, "networks").items():
        config = expect_mapping(config, where, f"networks.{network}")
        for index, alias in enumerate(expect_list(config.get("aliases"), where, f"networks.{network}.aliases")):
            aliases.append(expect_str(alias, where, f"networks.{network}.aliases[{index}]"))
    return [str(n) for n in value], aliases


def _healthcheck(value: Any, where: str) -> bool:
    if value is None:
        return False
    config = expect_mapping(value, where, "healthcheck")
    if config.get("disable") is True:
        return False
    test = config.get("test")
    # test: ["NONE"] is Compose's other spelling of "disabled".
    return not (test == "NONE" or (isinstance(test, list) and test[:1] == ["NONE"]))


def _deploy(value: Any, spec: ServiceSpec, where: str) -> None:
    deploy = expect_mapping(value, where, "deploy")
    if "replicas" in deploy and deploy["replicas"] is not None:
        spec.replicas = expect_int(deploy["replicas"], where, "deploy.replicas")
    resources = expect_mapping(deploy.get("resources"), where, "deploy.resources")
    limits = expect_mapping(resources.get("limits"), where, "deploy.resources.limits")
    for key in ("cpus", "memory", "pids"):
        if limits.get(key) is not None:
            spec.resources[key] = scalar_text(limits[key], where, f"deploy.resources.limits.{key}")
    policy = expect_mapping(deploy.get("restart_policy"), where, "deploy.restart_policy")
    if not spec.restart and policy.get("condition"):
        spec.restart = scalar_text(policy["condition"], where, "deploy.restart_policy.condition")


def _depends_on(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [expect_str(item, where, f"depends_on[{i}]").strip() for i, item in enumerate(value)]
    targets: list[str] = []
    for target, config in expect_mapping(value, where, "depends_on").items():
        expect_mapping(config, where, f"depends_on.{target}")  # {condition: service_healthy}
        targets.append(str(target))
    return targets
