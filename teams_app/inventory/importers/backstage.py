"""Backstage software catalogs (``catalog-info.yaml``, apiVersion backstage.io/v1alpha1 or v1beta1).

Components and Resources become services; APIs, Systems, Domains, Groups and Users are context.
``dependsOn`` (and the reverse ``dependencyOf``) give edges; a consumer of an API gets an edge to
every component providing it, its kind taken from the API's type (openapi/graphql -> sync_http,
grpc -> sync_grpc, asyncapi -> async_event). Entity references are read as Backstage reads them:
``[kind:][namespace/]name``, the kind and namespace defaulting by field.

A per-repository ``catalog-info.yaml`` normally names entities that live in other repositories.
Such a reference becomes an ``external`` node with a note (never an error): an API consumed but
neither described nor provided here, a component depended on, an API described here that no
component in the file provides.

Labels set on each service: ``backstage.kind`` (Component/Resource), ``backstage.type``
(spec.type), ``system`` (the system's name, from spec.system), ``backstage.owner``, and
``backstage.tags`` (metadata.tags, plus a Resource's type, read by inference for the engine).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from teams_app.errors import ApplicationError
from teams_app.inventory.importers.base import (
    Importer,
    check_name,
    check_service_count,
    expect_list,
    expect_mapping,
    expect_str,
    scalar_text,
    type_name,
)
from teams_app.inventory.inference import (
    LABEL_DECLARED_COMMUNICATION,
    LABEL_DESCRIPTION,
    LABEL_KIND,
    LABEL_TAGS,
)
from teams_app.inventory.types import DependencySpec, ParsedInventory, ServiceSpec

ENTITY_KINDS_AS_SERVICES = ("component", "resource")
KIND_NAMES = {"api": "API", "user": "User", "group": "Group", "system": "System", "domain": "Domain"}

_RESOURCE_KINDS = {
    "database": "database", "db": "database", "rds": "database", "postgres": "database",
    "postgresql": "database", "mysql": "database", "mariadb": "database", "mongodb": "database",
    "cassandra": "database", "elasticsearch": "database", "dynamodb": "database",
    "cache": "cache", "redis": "cache", "memcached": "cache", "valkey": "cache",
    "queue": "broker", "topic": "broker", "kafka-topic": "broker", "message-queue": "broker",
    "broker": "broker", "message-broker": "broker", "event-bus": "broker", "sqs": "broker",
    "sns": "broker", "pubsub": "broker", "stream": "broker", "kafka": "broker", "rabbitmq": "broker",
    "external-api": "external", "external": "external", "saas": "external", "third-party": "external",
    "gateway": "gateway", "api-gateway": "gateway", "load-balancer": "gateway",
}  # fmt: skip
_COMPONENT_KINDS = {
    "gateway": "gateway", "api-gateway": "gateway", "external": "external", "external-api": "external",
    "database": "database",
}  # fmt: skip
# API spec.type -> (edge kind, communication pattern)
_API_TYPES = {
    "openapi": ("sync_http", "rest"),
    "swagger": ("sync_http", "rest"),
    "rest": ("sync_http", "rest"),
    "graphql": ("sync_http", "graphql"),
    "grpc": ("sync_grpc", "grpc"),
    "asyncapi": ("async_event", ""),
}
_ASYNC_PROTOCOLS = (("kafka", "kafka"), ("amqp", "amqp"), ("rabbitmq", "amqp"), ("nats", "nats"))


@dataclass
class _Entity:
    kind: str  # lower-case
    namespace: str
    name: str
    where: str
    spec: dict[str, Any]
    service: ServiceSpec | None = None
    api_type: str = ""
    api_protocol: str = ""
    providers: list[str] = field(default_factory=list)


def _parse_ref(ref: Any, default_kind: str, default_namespace: str, where: str, field_name: str) -> tuple[str, str, str]:
    """``[kind:][namespace/]name`` -> (kind, namespace, name), as Backstage's parseEntityRef: the
    kind is what precedes the first ``:``, the namespace what precedes the first ``/`` after it;
    each defaults when absent. Kind and namespace are compared case-insensitively, so lower-cased."""
    text = expect_str(ref, where, field_name, allow_none=False).strip()
    kind, sep, rest = text.partition(":")
    if not sep or "/" in kind:  # "default/team-a": no kind; a ":" only after a "/" is part of the name
        kind, rest = default_kind, text
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = default_namespace, rest
    if not name.strip() or (sep and not namespace.strip()) or ":" in name or "/" in name:
        raise ApplicationError(
            f"{where}: '{field_name}' has a malformed entity reference {text!r}; expected [kind:][namespace/]name.",
            {"where": where},
        )
    return kind.strip().lower(), namespace.strip().lower() or "default", name.strip()


class BackstageImporter(Importer):
    format = "backstage"

    def detect(self, docs: list[Any]) -> bool:
        return any(
            isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and doc["apiVersion"].startswith("backstage.io/")
            for doc in docs
        )

    def read(self, docs: list[Any]) -> ParsedInventory:
        inv = ParsedInventory(format=self.format)
        entities: dict[tuple[str, str, str], _Entity] = {}
        for number, doc in enumerate(docs, 1):
            entity = _read_entity(doc, number, inv.warnings)
            if entity is None:
                continue
            key = (entity.kind, entity.namespace, entity.name.lower())
            if key in entities and entity.kind not in ENTITY_KINDS_AS_SERVICES:
                raise ApplicationError(f"{entity.where} is declared twice.", {"where": entity.where})
            entities.setdefault(key, entity)
            if entity.service is not None:
                inv.services.append(entity.service)
                check_service_count(len(inv.services))

        def find(kind: str, namespace: str, name: str) -> _Entity | None:
            for ns in dict.fromkeys((namespace, "default")):
                if (kind, ns, name.lower()) in entities:
                    return entities[(kind, ns, name.lower())]
            return None

        def find_service(kind: str, namespace: str, name: str) -> _Entity | None:
            kinds = (kind,) if kind else ENTITY_KINDS_AS_SERVICES
            for k in kinds:
                found = find(k, namespace, name)
                if found is not None and found.service is not None:
                    return found
            return None

        if not inv.services:
            counts = Counter(e.kind for e in entities.values())
            has = ", ".join(f"{n} {KIND_NAMES.get(k, k.capitalize())}{'s' if n > 1 else ''}" for k, n in sorted(counts.items()))
            raise ApplicationError(
                "The catalog declares no Component or Resource, so there is no service to show"
                + (f" (it has {has})" if has else "")
                + "; import it together with the files that declare the components.",
                {"format": self.format},
            )
        taken = {e.service.name for e in entities.values() if e.service is not None}
        externals: dict[tuple[str, str, str], ServiceSpec] = {}

        def external(kind: str, namespace: str, name: str, why: str) -> str:
            """The external node standing for an entity defined in another file."""
            key = (kind, namespace, name.lower())
            if key not in externals:
                node = name if name not in taken else f"{name}-{kind or 'entity'}"
                if namespace != "default" and node in taken:
                    node = f"{namespace}.{node}"
                check_name(node, "An external entity")
                spec = ServiceSpec(
                    name=node,
                    kind="external",
                    description=f"{(kind or 'entity').capitalize()} '{name}', defined in another catalog file",
                    labels={LABEL_KIND: "external", "backstage.kind": kind.capitalize() or "Entity", "backstage.ref": f"{kind or 'component'}:{namespace}/{name}"},
                )
                externals[key] = spec
                taken.add(node)
                inv.services.append(spec)
                check_service_count(len(inv.services))
                inv.warnings.append(f"{why}; it is shown as the external node '{node}'.")
            return externals[key].name

        def _consume(source: ServiceSpec, entity: _Entity, namespace: str, name: str) -> list[DependencySpec]:
            api = find("api", namespace, name)
            edge_kind, pattern = _API_TYPES.get(api.api_type, ("unknown", "")) if api is not None else ("unknown", "")
            if api is not None:
                _seed(source, pattern or api.api_protocol)
            if api is None or not api.providers:
                why = (
                    f"{entity.where} consumes API '{name}', which is not in the file"
                    if api is None
                    else f"{entity.where} consumes API '{name}', which no component in the file provides"
                )
                node = external("api", namespace, name, why)
                return [DependencySpec(source.name, node, edge_kind, "consumesApis")]
            return [
                DependencySpec(source.name, provider, edge_kind, "consumesApis")
                for provider in api.providers
                if provider != source.name
            ]

        services = [e for e in entities.values() if e.service is not None]
        # Providers first, so that consumers can be linked whatever order the documents come in.
        for entity in services:
            assert entity.service is not None
            for index, ref in enumerate(expect_list(entity.spec.get("providesApis"), entity.where, "spec.providesApis")):
                _kind, namespace, name = _parse_ref(ref, "api", entity.namespace, entity.where, f"spec.providesApis[{index}]")
                api = find("api", namespace, name)
                if api is None:  # provided but not described in this file: still linkable
                    api = _Entity("api", namespace, name, f"API '{name}'", {})
                    entities[("api", namespace, name.lower())] = api
                api.providers.append(entity.service.name)
                if api.api_type in _API_TYPES or api.api_protocol:
                    _seed(entity.service, _API_TYPES.get(api.api_type, ("", ""))[1] or api.api_protocol)

        for entity in services:
            source = entity.service
            assert source is not None
            for index, ref in enumerate(expect_list(entity.spec.get("dependsOn"), entity.where, "spec.dependsOn")):
                field_name = f"spec.dependsOn[{index}]"
                kind, namespace, name = _parse_ref(ref, "", entity.namespace, entity.where, field_name)
                if kind == "api":  # depending on an API is consuming it
                    inv.dependencies.extend(_consume(source, entity, namespace, name))
                    continue
                if kind not in ("", *ENTITY_KINDS_AS_SERVICES):
                    inv.warnings.append(f"{entity.where}: dependsOn {ref!r} is a {kind}, not a service; skipped.")
                    continue
                target = find_service(kind, namespace, name)
                if target is None or target.service is None:
                    node = external(kind or "component", namespace, name, f"{entity.where} depends on '{ref}', which is not in the file")
                    inv.dependencies.append(DependencySpec(source.name, node, "unknown", "dependsOn"))
                    continue
                inv.dependencies.append(DependencySpec(source.name, target.service.name, "unknown", "dependsOn"))
            for index, ref in enumerate(expect_list(entity.spec.get("dependencyOf"), entity.where, "spec.dependencyOf")):
                kind, namespace, name = _parse_ref(ref, "", entity.namespace, entity.where, f"spec.dependencyOf[{index}]")
                if kind not in ("", *ENTITY_KINDS_AS_SERVICES):
                    continue
                dependant = find_service(kind, namespace, name)
                if dependant is None or dependant.service is None:
                    node = external(kind or "component", namespace, name, f"{entity.where} is a dependency of '{ref}', which is not in the file")
                    inv.dependencies.append(DependencySpec(node, source.name, "unknown", "dependencyOf"))
                    continue
                inv.dependencies.append(DependencySpec(dependant.service.name, source.name, "unknown", "dependencyOf"))
            for index, ref in enumerate(expect_list(entity.spec.get("consumesApis"), entity.where, "spec.consumesApis")):
                kind, namespace, name = _parse_ref(ref, "api", entity.namespace, entity.where, f"spec.consumesApis[{index}]")
                if kind in ENTITY_KINDS_AS_SERVICES:
                    # consumesApis: ['component:artist-lookup'] names the provider itself.
                    target = find_service(kind, namespace, name)
                    node = target.service.name if target is not None and target.service is not None else external(
                        kind, namespace, name, f"{entity.where} consumes '{ref}', which is not in the file"
                    )
                    if node != source.name:
                        inv.dependencies.append(DependencySpec(source.name, node, "unknown", "consumesApis"))
                    continue
                inv.dependencies.extend(_consume(source, entity, namespace, name))
        return inv


def _seed(spec: ServiceSpec, pattern: str) -> None:
    """Record a protocol an API declares, for inference to add to what it finds."""
    if not pattern:
        return
    declared = [v for v in spec.labels.get(LABEL_DECLARED_COMMUNICATION, "").split(",") if v]
    if pattern not in declared:
        declared.append(pattern)
    spec.labels[LABEL_DECLARED_COMMUNICATION] = ",".join(declared)


def _read_entity(doc: Any, number: int, warnings: list[str]) -> _Entity | None:
    where = f"Document {number}"
    if not isinstance(doc, dict):
        raise ApplicationError(f"{where} must be a Backstage entity (a mapping), not {type_name(doc)}.", {"document": number})
    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str) or not api_version.startswith("backstage.io/"):
        raise ApplicationError(f"{where} is not a Backstage entity (apiVersion {api_version!r}).", {"document": number})
    kind = expect_str(doc.get("kind"), where, "kind").strip()
    if not kind:
        raise ApplicationError(f"{where} has no 'kind'.", {"document": number, "field": "kind"})
    meta = expect_mapping(doc.get("metadata"), f"{where} ({kind})", "metadata")
    if not meta.get("name"):
        raise ApplicationError(f"{where} ({kind}) has no metadata.name.", {"document": number, "field": "metadata.name"})
    name = check_name(meta["name"], kind)
    namespace = expect_str(meta.get("namespace"), f"{kind} '{name}'", "metadata.namespace").strip().lower() or "default"
    where = f"{kind} '{name}'"
    spec = expect_mapping(doc.get("spec"), where, "spec")
    entity = _Entity(kind.lower(), namespace, name, where, spec)

    if entity.kind == "api":
        entity.api_type = expect_str(spec.get("type"), where, "spec.type").strip().lower()
        definition = spec.get("definition")
        if entity.api_type == "asyncapi" and isinstance(definition, str):
            text = definition.lower()
            entity.api_protocol = next((p for needle, p in _ASYNC_PROTOCOLS if needle in text), "")
        return entity
    if entity.kind not in ENTITY_KINDS_AS_SERVICES:
        if entity.kind == "location":
            warnings.append(f"{where}: Location targets are not followed; import those files separately.")
        return entity  # System, Domain, Group, User: context only

    spec_type = expect_str(spec.get("type"), where, "spec.type").strip()
    service = ServiceSpec(name=name)
    service.description = expect_str(meta.get("description"), where, "metadata.description").strip()
    labels = {str(k): scalar_text(v, where, f"metadata.labels.{k}") for k, v in expect_mapping(meta.get("labels"), where, "metadata.labels").items()}
    annotations = expect_mapping(meta.get("annotations"), where, "metadata.annotations")
    labels.update({str(k): scalar_text(v, where, f"metadata.annotations.{k}") for k, v in annotations.items() if str(k).startswith("maestro.")})
    labels["backstage.kind"] = kind
    if spec_type:
        labels["backstage.type"] = spec_type
    if spec.get("system"):
        _k, _ns, system = _parse_ref(spec["system"], "system", namespace, where, "spec.system")
        labels["system"] = system
    if spec.get("owner"):
        _k, _ns, owner = _parse_ref(scalar_text(spec["owner"], where, "spec.owner"), "group", namespace, where, "spec.owner")
        labels["backstage.owner"] = owner
    tags = [scalar_text(t, where, f"metadata.tags[{i}]") for i, t in enumerate(expect_list(meta.get("tags"), where, "metadata.tags"))]
    if entity.kind == "resource" and spec_type:
        tags.append(spec_type)
    if tags:
        labels[LABEL_TAGS] = ",".join(tags)
    service.labels = labels
    if not service.description:
        service.description = labels.get(LABEL_DESCRIPTION, "")
    table = _RESOURCE_KINDS if entity.kind == "resource" else _COMPONENT_KINDS
    service.kind = table.get(spec_type.lower(), "service")
    entity.service = service
    return entity
