"""Kubernetes manifests: multi-document YAML and ``kind: List``.

Deployments, StatefulSets and DaemonSets become services (their first container). Services map DNS
names (``orders``, ``orders.shop``, ``orders.shop.svc.cluster.local``) to the workloads whose pod
template labels match their selector; environment values naming such a DNS name become edges to
the workloads behind it. ConfigMaps in the same input resolve ``envFrom``/``configMapKeyRef``, so
their values produce edges too. Secret values are never read: a ``secretKeyRef`` is recorded as
``secret:<name>/<key>``. A NodePort/LoadBalancer Service publishes the workload's port on the
host (``nodePort``, else ``port``). An ExternalName Service becomes an external service.
HorizontalPodAutoscalers set ``replicas`` to their ``minReplicas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    type_name,
)
from teams_app.inventory.inference import (
    LABEL_DECLARED_COMMUNICATION,
    LABEL_DESCRIPTION,
    LABEL_HOSTS,
    LABEL_KIND,
    port_protocol,
)
from teams_app.inventory.types import ParsedInventory, PortSpec, ServiceSpec

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
MAX_LIST_DEPTH = 5


@dataclass
class _Workload:
    spec: ServiceSpec
    namespace: str
    pod_labels: dict[str, str]
    named_ports: dict[str, int] = field(default_factory=dict)


class KubernetesImporter(Importer):
    format = "k8s"

    def detect(self, docs: list[Any]) -> bool:
        return any(_is_manifest(doc) for doc in docs)

    def read(self, docs: list[Any]) -> ParsedInventory:
        inv = ParsedInventory(format=self.format)
        objects = _flatten(docs)

        config_maps: dict[tuple[str, str], dict[str, str]] = {}
        secrets: dict[tuple[str, str], list[str]] = {}
        for where, obj in objects:
            kind = obj.get("kind")
            if kind not in ("ConfigMap", "Secret"):
                continue
            name, namespace, _meta = _metadata(obj, where)
            where = f"{kind} '{name}'"
            if kind == "ConfigMap":
                data = expect_mapping(obj.get("data"), where, "data")
                config_maps[(namespace, name)] = {str(k): scalar_text(v, where, f"data.{k}") for k, v in data.items()}
            else:  # only the key names: secret values must not end up in the inventory
                keys = list(expect_mapping(obj.get("data"), where, "data"))
                keys += list(expect_mapping(obj.get("stringData"), where, "stringData"))
                secrets[(namespace, name)] = [str(k) for k in keys]

        workloads: list[_Workload] = []
        for where, obj in objects:
            if obj.get("kind") in WORKLOAD_KINDS:
                workloads.append(_read_workload(obj, where, config_maps, secrets, inv.warnings))
                check_service_count(len(workloads))

        dns: dict[tuple[str, str], list[str]] = {}
        namespace_of = {w.spec.name: w.namespace for w in workloads}
        services = [w.spec for w in workloads]
        for where, obj in objects:
            if obj.get("kind") == "Service":
                external = _read_service(obj, where, workloads, dns, inv.warnings)
                if external is not None:
                    services.append(external[0])
                    namespace_of[external[0].name] = external[1]
                    check_service_count(len(services))
        for where, obj in objects:
            if obj.get("kind") == "HorizontalPodAutoscaler":
                _apply_autoscaler(obj, where, workloads)
            elif obj.get("kind") == "Ingress":
                _apply_ingress(obj, where, dns, workloads)

        inv.services = services
        declared_host = declared_host_matcher(services)

        def resolve(source: ServiceSpec, ref: HostRef) -> list[str]:
            key = _dns_key(ref.host, namespace_of.get(source.name, "default"))
            if key and key in dns:
                return dns[key]
            return declared_host(source, ref.host)

        inv.dependencies.extend(edges_from_environment(inv.services, resolve, inv.warnings))
        return inv


def _is_manifest(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("apiVersion"), str)
        and isinstance(doc.get("kind"), str)
        and not doc["apiVersion"].startswith("backstage.io/")
    )


def _flatten(docs: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every object with where it came from; ``kind: List`` (kubectl get -o yaml) is unpacked."""
    result: list[tuple[str, dict[str, Any]]] = []

    def walk(obj: Any, where: str, depth: int) -> None:
        if not isinstance(obj, dict):
            raise ApplicationError(f"{where} must be a Kubernetes object (a mapping), not {type_name(obj)}.")
        kind = obj.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ApplicationError(f"{where} has no 'kind'.", {"where": where, "field": "kind"})
        if kind == "List" or (kind.endswith("List") and "items" in obj):
            if depth >= MAX_LIST_DEPTH:
                raise ApplicationError(f"{where}: lists nested too deeply.", {"where": where})
            for index, item in enumerate(expect_list(obj.get("items"), where, "items")):
                walk(item, f"{where}, item {index + 1}", depth + 1)
            return
        result.append((where, obj))

    for number, doc in enumerate(docs, 1):
        walk(doc, f"Document {number}", 0)
    return result


def _metadata(obj: dict[str, Any], where: str) -> tuple[str, str, dict[str, Any]]:
    kind = obj.get("kind")
    meta = expect_mapping(obj.get("metadata"), f"{where} ({kind})", "metadata")
    if not meta.get("name"):
        raise ApplicationError(f"{where} ({kind}) has no metadata.name.", {"where": where, "field": "metadata.name"})
    name = check_name(meta["name"], str(kind))
    namespace = expect_str(meta.get("namespace"), f"{kind} '{name}'", "metadata.namespace").strip() or "default"
    return name, namespace, meta


def _string_dict(value: Any, where: str, field: str) -> dict[str, str]:
    return {str(k): scalar_text(v, where, f"{field}.{k}") for k, v in expect_mapping(value, where, field).items()}


def _cpu(value: str) -> str:
    # "500m" millicores -> "0.5", the unit compose uses, so limits compare across formats.
    if value.endswith("m") and value[:-1].isdigit():
        return f"{int(value[:-1]) / 1000:g}"
    return value


def _read_workload(
    obj: dict[str, Any],
    where: str,
    config_maps: dict[tuple[str, str], dict[str, str]],
    secrets: dict[tuple[str, str], list[str]],
    warnings: list[str],
) -> _Workload:
    kind = obj["kind"]
    name, namespace, meta = _metadata(obj, where)
    where = f"{kind} '{name}'"
    spec = ServiceSpec(name=name, networks=[namespace])
    spec.labels = _string_dict(meta.get("labels"), where, "metadata.labels")
    annotations = _string_dict(meta.get("annotations"), where, "metadata.annotations")
    # Label values cannot hold commas or free text, so maestro.* settings may be annotations.
    spec.labels.update({k: v for k, v in annotations.items() if k.startswith("maestro.")})
    spec.description = spec.labels.get(LABEL_DESCRIPTION) or annotations.get("description", "")

    body = expect_mapping(obj.get("spec"), where, "spec")
    if kind != "DaemonSet" and body.get("replicas") is not None:
        spec.replicas = expect_int(body["replicas"], where, "spec.replicas")
    template = expect_mapping(body.get("template"), where, "spec.template")
    pod_labels = _string_dict(
        expect_mapping(template.get("metadata"), where, "spec.template.metadata").get("labels"),
        where,
        "spec.template.metadata.labels",
    )
    pod = expect_mapping(template.get("spec"), where, "spec.template.spec")
    spec.restart = expect_str(pod.get("restartPolicy"), where, "spec.template.spec.restartPolicy") or "Always"
    containers = expect_list(pod.get("containers"), where, "spec.template.spec.containers")
    if not containers:
        raise ApplicationError(
            f"{where} has no containers.", {"where": where, "field": "spec.template.spec.containers"}
        )
    prefix = "spec.template.spec.containers[0]"
    container = expect_mapping(containers[0], where, prefix, allow_none=False)
    spec.image = expect_str(container.get("image"), where, f"{prefix}.image").strip()

    workload = _Workload(spec=spec, namespace=namespace, pod_labels=pod_labels)
    declared: list[str] = []
    for index, item in enumerate(expect_list(container.get("ports"), where, f"{prefix}.ports")):
        field_name = f"{prefix}.ports[{index}]"
        port = expect_mapping(item, where, field_name, allow_none=False)
        number = expect_int(port.get("containerPort"), where, f"{field_name}.containerPort", minimum=1)
        host = None
        if port.get("hostPort") is not None:
            host = expect_int(port["hostPort"], where, f"{field_name}.hostPort", minimum=1)
        protocol = expect_str(port.get("protocol"), where, f"{field_name}.protocol").lower() or "tcp"
        host_ip = expect_str(port.get("hostIP"), where, f"{field_name}.hostIP").strip()
        spec.ports.append(PortSpec(container=number, host=host, protocol=protocol, host_ip=host_ip))
        if isinstance(port.get("name"), str):
            workload.named_ports[port["name"]] = number
        # Istio-style port names and appProtocol say what the port speaks (grpc, http-web ...).
        speaks = port_protocol(str(port.get("appProtocol") or port.get("name") or ""))
        if speaks and speaks not in declared:
            declared.append(speaks)
    # A gRPC health probe says the container serves gRPC.
    if any(isinstance(container.get(p), dict) and "grpc" in container[p] for p in PROBES) and "grpc" not in declared:
        declared.append("grpc")
    if declared:
        spec.labels[LABEL_DECLARED_COMMUNICATION] = ",".join(declared)

    env: dict[str, str] = {}
    for index, item in enumerate(expect_list(container.get("envFrom"), where, f"{prefix}.envFrom")):
        source = expect_mapping(item, where, f"{prefix}.envFrom[{index}]", allow_none=False)
        env_prefix = expect_str(source.get("prefix"), where, f"{prefix}.envFrom[{index}].prefix")
        if source.get("configMapRef") is not None:
            ref = expect_mapping(source["configMapRef"], where, f"{prefix}.envFrom[{index}].configMapRef")
            ref_name = str(ref.get("name", ""))
            data = config_maps.get((namespace, ref_name))
            if data is None:
                warnings.append(f"{where} reads ConfigMap '{ref_name}', which is not in the file.")
            else:
                env.update({env_prefix + k: v for k, v in data.items()})
        if source.get("secretRef") is not None:
            ref = expect_mapping(source["secretRef"], where, f"{prefix}.envFrom[{index}].secretRef")
            ref_name = str(ref.get("name", ""))
            keys = secrets.get((namespace, ref_name))
            if keys is None:
                warnings.append(f"{where} reads Secret '{ref_name}', which is not in the file.")
            else:
                env.update({env_prefix + k: f"secret:{ref_name}/{k}" for k in keys})
    for index, item in enumerate(expect_list(container.get("env"), where, f"{prefix}.env")):
        field_name = f"{prefix}.env[{index}]"
        var = expect_mapping(item, where, field_name, allow_none=False)
        var_name = expect_str(var.get("name"), where, f"{field_name}.name").strip()
        if not var_name:
            raise ApplicationError(f"{where}: '{field_name}' has no name.", {"where": where, "field": field_name})
        if var.get("valueFrom") is not None:
            env[var_name] = _value_from(var["valueFrom"], where, f"{field_name}.valueFrom", namespace, config_maps)
        else:
            env[var_name] = scalar_text(var.get("value"), where, f"{field_name}.value")
    spec.environment = env

    spec.healthcheck = any(container.get(probe) is not None for probe in PROBES)
    resources = expect_mapping(container.get("resources"), where, f"{prefix}.resources")
    limits = _string_dict(resources.get("limits"), where, f"{prefix}.resources.limits")
    if limits.get("cpu"):
        spec.resources["cpus"] = _cpu(limits["cpu"])
    if limits.get("memory"):
        spec.resources["memory"] = limits["memory"]
    return workload


def _value_from(
    value: Any, where: str, field_name: str, namespace: str, config_maps: dict[tuple[str, str], dict[str, str]]
) -> str:
    source = expect_mapping(value, where, field_name, allow_none=False)
    if source.get("secretKeyRef") is not None:
        ref = expect_mapping(source["secretKeyRef"], where, f"{field_name}.secretKeyRef")
        return f"secret:{ref.get('name', '')}/{ref.get('key', '')}"
    if source.get("configMapKeyRef") is not None:
        ref = expect_mapping(source["configMapKeyRef"], where, f"{field_name}.configMapKeyRef")
        ref_name, key = str(ref.get("name", "")), str(ref.get("key", ""))
        data = config_maps.get((namespace, ref_name), {})
        return data.get(key, f"configmap:{ref_name}/{key}")
    if source.get("fieldRef") is not None:
        ref = expect_mapping(source["fieldRef"], where, f"{field_name}.fieldRef")
        return f"field:{ref.get('fieldPath', '')}"
    if source.get("resourceFieldRef") is not None:
        ref = expect_mapping(source["resourceFieldRef"], where, f"{field_name}.resourceFieldRef")
        return f"resource:{ref.get('resource', '')}"
    return ""


def _read_service(
    obj: dict[str, Any],
    where: str,
    workloads: list[_Workload],
    dns: dict[tuple[str, str], list[str]],
    warnings: list[str],
) -> tuple[ServiceSpec, str] | None:
    """Register the Service's DNS name; an ExternalName Service is returned as a service of its own."""
    name, namespace, _meta = _metadata(obj, where)
    where = f"Service '{name}'"
    body = expect_mapping(obj.get("spec"), where, "spec")
    service_type = expect_str(body.get("type"), where, "spec.type") or "ClusterIP"

    if service_type == "ExternalName":
        target = expect_str(body.get("externalName"), where, "spec.externalName").strip().lower().rstrip(".")
        external = ServiceSpec(name=name, kind="external", networks=[namespace], description=f"ExternalName {target}")
        external.labels = {LABEL_KIND: "external", LABEL_HOSTS: target} if target else {LABEL_KIND: "external"}
        dns[(namespace, name)] = [name]
        return external, namespace

    selector = _string_dict(body.get("selector"), where, "spec.selector")
    selected = [
        w
        for w in workloads
        if selector and w.namespace == namespace and all(w.pod_labels.get(k) == v for k, v in selector.items())
    ]
    if not selected:
        warnings.append(f"Service '{name}' selects no workload in the file.")
        return None
    dns.setdefault((namespace, name), [])
    for workload in selected:
        if workload.spec.name not in dns[(namespace, name)]:
            dns[(namespace, name)].append(workload.spec.name)

    for index, item in enumerate(expect_list(body.get("ports"), where, "spec.ports")):
        field_name = f"spec.ports[{index}]"
        port_def = expect_mapping(item, where, field_name, allow_none=False)
        port = expect_int(port_def.get("port"), where, f"{field_name}.port", minimum=1)
        node_port = port_def.get("nodePort")
        host: int | None = None
        if service_type in ("NodePort", "LoadBalancer"):
            host = expect_int(node_port, where, f"{field_name}.nodePort", minimum=1) if node_port is not None else port
        protocol = expect_str(port_def.get("protocol"), where, f"{field_name}.protocol").lower() or "tcp"
        target = port_def.get("targetPort", port)
        speaks = port_protocol(str(port_def.get("appProtocol") or port_def.get("name") or ""))
        for workload in selected:
            if speaks:
                _declare(workload.spec, speaks)
            container = workload.named_ports.get(target) if isinstance(target, str) and not target.isdigit() else None
            if container is None:
                if isinstance(target, str) and not target.isdigit():
                    warnings.append(f"Service '{name}': named port '{target}' is not declared by '{workload.spec.name}'.")
                    continue
                container = expect_int(target, where, f"{field_name}.targetPort", minimum=1)
            existing = next((p for p in workload.spec.ports if p.container == container), None)
            if existing is None:
                workload.spec.ports.append(PortSpec(container=container, host=host, protocol=protocol))
            elif host is not None and existing.host is None:
                existing.host = host
    return None


def _declare(spec: ServiceSpec, protocol: str) -> None:
    declared = [v for v in spec.labels.get(LABEL_DECLARED_COMMUNICATION, "").split(",") if v]
    if protocol not in declared:
        spec.labels[LABEL_DECLARED_COMMUNICATION] = ",".join([*declared, protocol])


def _apply_ingress(
    obj: dict[str, Any], where: str, dns: dict[tuple[str, str], list[str]], workloads: list[_Workload]
) -> None:
    """An Ingress publishes the workloads behind its backend Services on 80 (443 with TLS)."""
    name, namespace, _meta = _metadata(obj, where)
    where = f"Ingress '{name}'"
    body = expect_mapping(obj.get("spec"), where, "spec")
    host_port = 443 if expect_list(body.get("tls"), where, "spec.tls") else 80
    backends: list[Any] = [body.get("defaultBackend"), body.get("backend")]
    for index, rule in enumerate(expect_list(body.get("rules"), where, "spec.rules")):
        rule = expect_mapping(rule, where, f"spec.rules[{index}]")
        http = expect_mapping(rule.get("http"), where, f"spec.rules[{index}].http")
        for number, path in enumerate(expect_list(http.get("paths"), where, f"spec.rules[{index}].http.paths")):
            backends.append(expect_mapping(path, where, f"spec.rules[{index}].http.paths[{number}]").get("backend"))
    by_name = {w.spec.name: w for w in workloads}
    for backend in backends:
        if not isinstance(backend, dict):
            continue
        service = backend.get("service") if isinstance(backend.get("service"), dict) else {}
        target = str(service.get("name") or backend.get("serviceName") or "")
        for workload_name in dns.get((namespace, target), []):
            workload = by_name.get(workload_name)
            if workload is None:
                continue
            if workload.spec.ports:
                if all(p.host is None for p in workload.spec.ports):
                    workload.spec.ports[0].host = host_port
            else:
                workload.spec.ports.append(PortSpec(container=host_port, host=host_port))


def _apply_autoscaler(obj: dict[str, Any], where: str, workloads: list[_Workload]) -> None:
    name, namespace, _meta = _metadata(obj, where)
    where = f"HorizontalPodAutoscaler '{name}'"
    body = expect_mapping(obj.get("spec"), where, "spec")
    target = expect_mapping(body.get("scaleTargetRef"), where, "spec.scaleTargetRef")
    minimum = expect_int(body["minReplicas"], where, "spec.minReplicas") if body.get("minReplicas") is not None else 1
    for workload in workloads:
        if workload.spec.name == target.get("name") and workload.namespace == namespace:
            workload.spec.replicas = minimum


def _dns_key(host: str, namespace: str) -> tuple[str, str] | None:
    """orders -> (ns, orders); orders.shop[.svc[.cluster.local]] -> (shop, orders)."""
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, parts[0]
    if len(parts) == 2 or parts[2] == "svc":
        return parts[1], parts[0]
    return None
