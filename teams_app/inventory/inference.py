"""Inferring what each service is and how it talks, from what an inventory file says.

``infer(inv)`` sets every ``ServiceSpec.kind`` (service, database, cache, broker, gateway,
external), every ``ServiceSpec.patterns`` and every ``DependencySpec.kind``::

    patterns = {
        "communication": sorted subset of rest, grpc, graphql, amqp, kafka, nats, redis_pubsub,
        "storage": a storage engine ("postgresql", "mysql", "mongodb", "redis", ...) or "",
        "auth": sorted subset of jwt, oauth2, api_key, mtls, basic, session,
    }

Signals, strongest first: explicit labels, a kind the importer was told (a Backstage Resource of
type database, a Kubernetes ExternalName Service), the image (postgres, bitnami/kafka,
confluentinc/cp-kafka, traefik ...), server-only environment variables (MYSQL_ROOT_PASSWORD,
KAFKA_PROCESS_ROLES ...), well-known container ports (5432, 6379, 5672, 9092, 50051 ...), and for
image-less entries the name and tags. Environment names and values give protocols, auth and
storage (DATABASE_URL=postgres://..., JWT_SECRET, OAUTH_*, API_KEY, GRPC_*, KAFKA_BROKERS,
AMQP_URL). A service that uses a database gets that database's engine as its storage.

Override labels (on a compose service, a Kubernetes workload's labels or ``maestro.*``
annotations, a Backstage entity's labels); they replace whatever was inferred:

``maestro.kind``
    one of service, database, cache, broker, gateway, external. ``external`` is the only way a
    compose entry becomes external (a third-party API such as Stripe, declared without an image).
``maestro.patterns.communication``
    comma-separated subset of the communication values above; ``none`` for an empty list.
``maestro.patterns.storage``
    a storage engine name; ``none`` for no storage.
``maestro.patterns.auth``
    comma-separated subset of the auth values above; ``none`` for an empty list.
``maestro.hosts`` (read by the importers)
    comma-separated host names the service answers to, e.g. ``api.stripe.com``; environment
    values naming one of them (or a sub-domain) become edges to the service.
``maestro.description`` (read by the importers)
    a one-line description.
``maestro.declared.communication`` (written by the importers)
    protocols the source format states: a Backstage API's type (openapi -> rest, grpc, graphql,
    asyncapi -> kafka/amqp/nats), a Kubernetes port named or appProtocol ``grpc``/``http``.
    Unlike the overrides above it adds to what is inferred.

Values are separated by commas, semicolons or spaces; Kubernetes label values cannot hold commas,
so use annotations there for several values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from teams_app.inventory.hosts import HostRef, host_refs
from teams_app.inventory.types import (
    SERVICE_KINDS,
    DependencySpec,
    ParsedInventory,
    ServiceSpec,
)

COMMUNICATION_PATTERNS: tuple[str, ...] = ("amqp", "graphql", "grpc", "kafka", "nats", "redis_pubsub", "rest")
AUTH_PATTERNS: tuple[str, ...] = ("api_key", "basic", "jwt", "mtls", "oauth2", "session")

LABEL_KIND = "maestro.kind"
LABEL_COMMUNICATION = "maestro.patterns.communication"
LABEL_STORAGE = "maestro.patterns.storage"
LABEL_AUTH = "maestro.patterns.auth"
LABEL_HOSTS = "maestro.hosts"
LABEL_DESCRIPTION = "maestro.description"
LABEL_TAGS = "backstage.tags"  # set by the Backstage importer from metadata.tags
LABEL_DECLARED_COMMUNICATION = "maestro.declared.communication"  # set by importers; adds, never replaces
LABEL_KIND_UNCERTAIN = "maestro.kind.uncertain"  # set by inference: why the kind is only a guess


def port_protocol(name: str) -> str:
    """The protocol a port name or appProtocol states (Istio's convention: grpc, grpc-web,
    http, http2, https, tcp-amqp ...), "" when it states none."""
    text = name.strip().lower()
    if text.startswith("grpc") or text in ("h2c", "kubernetes.io/h2c"):
        return "grpc"
    if text.startswith(("http", "https", "kubernetes.io/ws")) or text in ("web", "rest"):
        return "rest"
    for word in re.split(r"[^a-z0-9]+", text):
        if word in ("amqp", "amqps"):
            return "amqp"
        if word in ("kafka", "nats", "graphql"):
            return word
    return ""

_SYNC = frozenset({"rest", "grpc", "graphql"})
# Edges whose kind was stated, not guessed: a Backstage API's type, a person's edit.
_KIND_DECLARING_VIAS = frozenset({"consumesApis", "manual"})
_HTTP_PORTS = frozenset({80, 443, 3000, 5000, 8000, 8080, 8081, 8443})
_GRPC_PORTS = frozenset({50051})


@dataclass(frozen=True)
class _Tech:
    kind: str
    engine: str = ""
    communication: tuple[str, ...] = ()
    auth: tuple[str, ...] = ()


_DB = "database"
_TECH: dict[str, _Tech] = {
    "postgres": _Tech(_DB, "postgresql"),
    "postgresql": _Tech(_DB, "postgresql"),
    "postgis": _Tech(_DB, "postgresql"),
    "timescaledb": _Tech(_DB, "postgresql"),
    "pgvector": _Tech(_DB, "postgresql"),
    "mysql": _Tech(_DB, "mysql"),
    "percona": _Tech(_DB, "mysql"),
    "mariadb": _Tech(_DB, "mariadb"),
    "mongo": _Tech(_DB, "mongodb"),
    "mongodb": _Tech(_DB, "mongodb"),
    "cassandra": _Tech(_DB, "cassandra"),
    "scylla": _Tech(_DB, "scylladb"),
    "elasticsearch": _Tech(_DB, "elasticsearch"),
    "opensearch": _Tech(_DB, "opensearch"),
    "couchdb": _Tech(_DB, "couchdb"),
    "neo4j": _Tech(_DB, "neo4j"),
    "influxdb": _Tech(_DB, "influxdb"),
    "clickhouse": _Tech(_DB, "clickhouse"),
    "cockroach": _Tech(_DB, "cockroachdb"),
    "cockroachdb": _Tech(_DB, "cockroachdb"),
    "mssql": _Tech(_DB, "sqlserver"),
    "dynamodb": _Tech(_DB, "dynamodb"),
    "minio": _Tech(_DB, "minio"),
    "sqlite": _Tech(_DB, "sqlite"),
    "redis": _Tech("cache", "redis"),
    "valkey": _Tech("cache", "valkey"),
    "memcached": _Tech("cache", "memcached"),
    "keydb": _Tech("cache", "keydb"),
    "dragonfly": _Tech("cache", "dragonfly"),
    "rabbitmq": _Tech("broker", "rabbitmq", ("amqp",)),
    "kafka": _Tech("broker", "kafka", ("kafka",)),
    "redpanda": _Tech("broker", "redpanda", ("kafka",)),
    "nats": _Tech("broker", "nats", ("nats",)),
    "activemq": _Tech("broker", "activemq", ("amqp",)),
    "artemis": _Tech("broker", "activemq", ("amqp",)),
    "pulsar": _Tech("broker", "pulsar"),
    "mosquitto": _Tech("broker", "mosquitto"),
    "emqx": _Tech("broker", "emqx"),
    "nginx": _Tech("gateway", "", ("rest",)),
    "openresty": _Tech("gateway", "", ("rest",)),
    "traefik": _Tech("gateway", "", ("rest",)),
    "envoy": _Tech("gateway", "", ("rest",)),
    "kong": _Tech("gateway", "", ("rest",)),
    "haproxy": _Tech("gateway", "", ("rest",)),
    "caddy": _Tech("gateway", "", ("rest",)),
    "apisix": _Tech("gateway", "", ("rest",)),
    "krakend": _Tech("gateway", "", ("rest",)),
    "tyk": _Tech("gateway", "", ("rest",)),
    "emissary": _Tech("gateway", "", ("rest",)),
    "yarp": _Tech("gateway", "", ("rest",)),
    "ocelot": _Tech("gateway", "", ("rest",)),
    "keycloak": _Tech("service", "", ("rest",), ("oauth2",)),
}
# Image names whose first word is not the product.
_IMAGE_ALIASES = {
    "cp-kafka": "kafka",
    "cp-server": "kafka",
    "cp-enterprise-kafka": "kafka",
    "mongodb-community-server": "mongodb",
    "mongodb-enterprise-server": "mongodb",
    "redis-stack": "redis",
    "redis-stack-server": "redis",
}
# Tools named after the product they serve (postgres-exporter, kafka-ui, redis-commander,
# mongo-express) and apps named after their datastore (redis-cart-service) are not the product.
_NOT_THE_PRODUCT = frozenset(
    {
        "admin", "agent", "api", "app", "backup", "box", "cli", "client", "commander", "connect",
        "consumer", "cron", "dashboard", "dashboards", "exporter", "express", "init", "job",
        "migrate", "migration", "migrations", "operator", "producer", "proxy", "registry", "rest",
        "service", "sidecar", "svc", "sync", "test", "tools", "ui", "worker",
    }
)  # fmt: skip
_PORT_TECH = {
    5432: "postgres", 3306: "mysql", 27017: "mongo", 9042: "cassandra", 9200: "elasticsearch",
    6379: "redis", 11211: "memcached", 5672: "rabbitmq", 9092: "kafka", 4222: "nats",
}  # fmt: skip
# Variables only the server container itself sets (clients set POSTGRES_PASSWORD too).
_SERVER_ENV = {
    "POSTGRES_INITDB_ARGS": "postgres", "POSTGRES_HOST_AUTH_METHOD": "postgres", "PGDATA": "postgres",
    "MYSQL_ROOT_PASSWORD": "mysql", "MYSQL_RANDOM_ROOT_PASSWORD": "mysql", "MYSQL_ALLOW_EMPTY_PASSWORD": "mysql",
    "MARIADB_ROOT_PASSWORD": "mariadb", "MONGO_INITDB_ROOT_USERNAME": "mongo", "MONGO_INITDB_DATABASE": "mongo",
    "RABBITMQ_DEFAULT_USER": "rabbitmq", "RABBITMQ_ERLANG_COOKIE": "rabbitmq",
    "KAFKA_BROKER_ID": "kafka", "KAFKA_NODE_ID": "kafka", "KAFKA_PROCESS_ROLES": "kafka",
    "KAFKA_CFG_NODE_ID": "kafka", "KAFKA_CFG_PROCESS_ROLES": "kafka", "KAFKA_ADVERTISED_LISTENERS": "kafka",
    "DISCOVERY.TYPE": "elasticsearch", "ES_JAVA_OPTS": "elasticsearch",
}  # fmt: skip
# Names of image-less entries (Backstage, manual) that say what they are.
_NAME_KIND = {"db": _DB, "database": _DB, "cache": "cache", "queue": "broker", "broker": "broker", "mq": "broker", "gateway": "gateway", "ingress": "gateway"}
_SCHEME_ENGINE = {
    "postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb",
    "mongodb": "mongodb", "sqlite": "sqlite", "sqlite3": "sqlite", "cassandra": "cassandra",
    "cockroachdb": "cockroachdb", "clickhouse": "clickhouse", "sqlserver": "sqlserver",
    "mssql": "sqlserver", "neo4j": "neo4j", "bolt": "neo4j",
}  # fmt: skip
_CACHE_SCHEMES = {"redis": "redis", "rediss": "redis", "memcached": "memcached", "valkey": "valkey"}
_VAR_ENGINE = {
    "POSTGRES": "postgresql", "POSTGRESQL": "postgresql", "PGHOST": "postgresql", "MYSQL": "mysql",
    "MARIADB": "mariadb", "MONGO": "mongodb", "MONGODB": "mongodb", "ELASTICSEARCH": "elasticsearch",
    "CASSANDRA": "cassandra", "SQLITE": "sqlite",
}  # fmt: skip
_SCHEME_COMMUNICATION = {
    "amqp": "amqp", "amqps": "amqp", "kafka": "kafka", "nats": "nats", "grpc": "grpc", "grpcs": "grpc",
    "http": "rest", "https": "rest", "ws": "rest", "wss": "rest",
}  # fmt: skip
_VAR_COMMUNICATION = {
    "GRPC": "grpc", "GRAPHQL": "graphql", "AMQP": "amqp", "RABBITMQ": "amqp", "RABBIT": "amqp",
    "KAFKA": "kafka", "NATS": "nats",
}  # fmt: skip
# Searched in "_" + VAR_NAME + "_" so that each needle starts at a word boundary.
_VAR_AUTH = (
    ("jwt", ("_JWT", "_JWKS")),
    ("oauth2", ("_OAUTH", "_OIDC", "_OPENID", "_KEYCLOAK", "_AUTH0", "_COGNITO", "_CLIENT_SECRET")),
    ("api_key", ("_API_KEY", "_APIKEY")),
    ("mtls", ("_MTLS", "_CLIENT_CERT")),
    ("basic", ("_BASIC_AUTH", "_HTPASSWD")),
    ("session", ("_SESSION", "_COOKIE_SECRET", "_SECRET_KEY_BASE")),
)


@dataclass
class _Facts:
    kind: str = "service"
    engine: str = ""
    communication: set[str] = field(default_factory=set)
    auth: set[str] = field(default_factory=set)
    storage_override: str | None = None
    uncertain: str = ""
    communication_override: list[str] | None = None
    auth_override: list[str] | None = None


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _var_tokens(var: str) -> list[str]:
    return [t for t in re.split(r"[^A-Z0-9]+", var.upper()) if t]


def image_components(image: str) -> list[str]:
    """``registry:5000/org/name:tag@sha256:...`` -> ["org", "name"], lower-cased."""
    ref = image.strip().lower().split("@", 1)[0]
    parts = [p for p in ref.split("/") if p]
    if not parts:
        return []
    parts[-1] = parts[-1].split(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return parts


_GATEWAY = _Tech("gateway", "", ("rest",))


def _gateway_name(words: list[str], text: str) -> bool:
    """Names that say reverse proxy or API gateway: *apigw*, *gateway*, edge-router, ingress."""
    # The last word decides: orders-gateway-adapter is a service that talks to a gateway.
    last = words[-1] if words else ""
    return (
        "apigw" in text
        or "apigateway" in text
        or last in ("gateway", "gw")
        or (last.endswith(("gateway", "apigw")) and len(words) == 1)
        or "ingress" in words
        or ("router" in words and "edge" in words)
        or any(w in ("yarp", "ocelot", "traefik", "envoy", "kong", "haproxy") for w in words)
    )


def _image_tech(image: str) -> _Tech | None:
    parts = image_components(image)
    if not parts:
        return None
    last = parts[-1]
    if last in _IMAGE_ALIASES:
        return _TECH[_IMAGE_ALIASES[last]]
    words = re.split(r"[-_.]", last)
    if any(w in _NOT_THE_PRODUCT for w in words):
        return _GATEWAY if "proxy" in words and any(w in ("envoy", "traefik", "nginx", "haproxy") for w in words) else None
    if words[0] in _TECH:
        return _TECH[words[0]]
    if "mssql" in parts[:-1]:  # mcr.microsoft.com/mssql/server
        return _TECH["mssql"]
    if _gateway_name(words, last):
        return _GATEWAY
    if len(words) > 1 and words[-1] in ("db", "database"):  # weaveworksdemos/user-db: a database image
        return next((_TECH[w] for w in words if w in _TECH and _TECH[w].kind == _DB), _Tech(_DB))
    return None


def _name_tech(words: list[str]) -> _Tech | None:
    if any(w in _NOT_THE_PRODUCT for w in words):
        return None
    for word in words:
        if word in _TECH:
            return _TECH[word]
    for word in words:
        if word in _NAME_KIND:
            return _Tech(_NAME_KIND[word])
    return None


def _split_values(text: str) -> list[str]:
    return [v for v in re.split(r"[,;\s]+", text.strip().lower()) if v]


def _override_list(spec: ServiceSpec, label: str, allowed: tuple[str, ...], warnings: list[str]) -> list[str] | None:
    if label not in spec.labels:
        return None
    values = _split_values(str(spec.labels[label]))
    if values == ["none"]:
        return []
    unknown = [v for v in values if v not in allowed]
    if unknown:
        warnings.append(
            f"Service '{spec.name}': label {label} has unknown value(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(allowed)}."
        )
    return sorted({v for v in values if v in allowed})


def _env_communication(var: str, value: str) -> set[str]:
    found = {_VAR_COMMUNICATION[t] for t in _var_tokens(var) if t in _VAR_COMMUNICATION}
    tokens = _var_tokens(var)
    if "PUBSUB" in tokens or ("REDIS" in tokens and ("CHANNEL" in tokens or "CHANNELS" in tokens)):
        found.add("redis_pubsub")
    for ref in host_refs(value, var):
        if ref.scheme in _SCHEME_COMMUNICATION:
            found.add(_SCHEME_COMMUNICATION[ref.scheme])
        elif ref.port in _GRPC_PORTS:
            found.add("grpc")
    if "/graphql" in value.lower():
        found.add("graphql")
    return found


def _env_auth(var: str) -> set[str]:
    padded = "_" + "_".join(_var_tokens(var)) + "_"
    return {name for name, needles in _VAR_AUTH if any(n in padded for n in needles)}


def _label_auth(labels: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for key, value in labels.items():
        k, v = key.lower(), str(value).lower()
        if "basicauth" in k:
            found.add("basic")
        if (k == "sidecar.istio.io/inject" and v == "true") or (k == "linkerd.io/inject" and v == "enabled"):
            found.add("mtls")
    return found


def _env_engines(spec: ServiceSpec) -> tuple[str, str]:
    """(database engine, cache engine) named by the service's own environment, "" when none."""
    database = cache = ""
    for var, value in spec.environment.items():
        for ref in host_refs(value, var):
            if not database and ref.scheme in _SCHEME_ENGINE:
                database = _SCHEME_ENGINE[ref.scheme]
            if not cache and ref.scheme in _CACHE_SCHEMES:
                cache = _CACHE_SCHEMES[ref.scheme]
        if value.lower().startswith(("sqlite:", "file:")) and not database and "DATABASE" in var.upper():
            database = "sqlite"
        tokens = _var_tokens(var)
        if not database:
            database = next((_VAR_ENGINE[t] for t in tokens if t in _VAR_ENGINE), "")
        if not cache and "REDIS" in tokens:
            cache = "redis"
    return database, cache


def _own_facts(spec: ServiceSpec, warnings: list[str]) -> _Facts:
    facts = _Facts()
    label_kind = str(spec.labels.get(LABEL_KIND, "")).strip().lower()
    if label_kind and label_kind not in SERVICE_KINDS:
        warnings.append(
            f"Service '{spec.name}': label {LABEL_KIND}={label_kind} is not one of {', '.join(SERVICE_KINDS)}; ignored."
        )
        label_kind = ""
    declared = spec.kind if spec.kind in SERVICE_KINDS and spec.kind != "service" else ""

    # Signals strongest first, each with what it is, so that a guess can say it is one.
    candidates: list[tuple[_Tech, str]] = []
    image_tech = _image_tech(spec.image) if spec.image else None
    if image_tech:
        candidates.append((image_tech, f"its image {spec.image}"))
    for var in spec.environment:
        if var.upper() in _SERVER_ENV:
            candidates.append((_TECH[_SERVER_ENV[var.upper()]], f"its environment ({var})"))
            break
    tags = _split_values(str(spec.labels.get(LABEL_TAGS, "")))
    name_words = _tokens(spec.name) + tags
    # A reverse proxy or API gateway is told by its name before its ports (edge-router on :80).
    if _gateway_name(_tokens(spec.name), spec.name.lower()):
        candidates.append((_GATEWAY, "its name"))
    # Code built from source that happens to listen on 5432 is still the team's own service.
    for port in [] if spec.build else [p.container for p in spec.ports] + list(spec.expose):
        if port in _PORT_TECH:
            candidates.append((_TECH[_PORT_TECH[port]], f"its port {port}"))
            break
    name_tech = _name_tech(name_words)
    if name_tech and not spec.image and not spec.build:
        candidates.append((name_tech, "its name"))

    facts.kind = label_kind or declared or (candidates[0][0].kind if candidates else "service")
    if not label_kind and not declared:
        basis = candidates[0][1] if candidates else ""
        if basis.startswith(("its port", "its name")):
            facts.uncertain = f"the kind {facts.kind} is guessed from {basis} only"
        elif not candidates and name_tech is not None and name_tech.kind != "service" and not spec.build:
            facts.uncertain = f"named like a {name_tech.kind}, but nothing else says what it is"
    candidates_tech = [t for t, _ in candidates]
    chosen = next((t for t in candidates_tech if t.kind == facts.kind), None)
    if chosen is None and name_tech and name_tech.kind == facts.kind:
        chosen = name_tech  # an engine named by a Resource's name or tags, e.g. orders-postgres
    if chosen is None and facts.kind in (_DB, "cache"):
        # e.g. a Backstage Resource "orders-db" tagged postgres: any engine word will do.
        chosen = next((_TECH[w] for w in name_words if w in _TECH and _TECH[w].kind == facts.kind), None)
    if chosen:
        facts.engine = chosen.engine
        facts.communication.update(chosen.communication)
        facts.auth.update(chosen.auth)

    for var, value in spec.environment.items():
        facts.communication |= _env_communication(var, value)
        facts.auth |= _env_auth(var)
    facts.auth |= _label_auth(spec.labels)
    for word in tags:
        if word in COMMUNICATION_PATTERNS:
            facts.communication.add(word)
        if word in AUTH_PATTERNS:
            facts.auth.add(word)
    ports = {p.container for p in spec.ports} | set(spec.expose)
    declared_protocols = _declared(spec)
    if ports & _GRPC_PORTS:
        facts.communication.add("grpc")
    # A port number is only a guess: a port the file names (grpc on :8080) says more.
    if ports & _HTTP_PORTS and facts.kind in ("service", "gateway", "external") and not declared_protocols:
        facts.communication.add("rest")
    if "GRPC" in _tokens(spec.image.upper()) or "grpc" in _tokens(spec.image):
        facts.communication.add("grpc")
    if facts.kind in (_DB, "cache"):
        # A database's own client settings are not protocols it offers.
        facts.communication -= _SYNC
    # Protocols the source format states (Backstage API types, Kubernetes port names). Kept in a
    # label rather than in patterns so that re-running inference after an edit starts afresh.
    facts.communication |= declared_protocols

    facts.communication_override = _override_list(spec, LABEL_COMMUNICATION, COMMUNICATION_PATTERNS, warnings)
    facts.auth_override = _override_list(spec, LABEL_AUTH, AUTH_PATTERNS, warnings)
    if LABEL_STORAGE in spec.labels:
        storage = str(spec.labels[LABEL_STORAGE]).strip().lower()
        facts.storage_override = "" if storage == "none" else storage
    return facts


def _declared(spec: ServiceSpec) -> set[str]:
    return {
        v for v in _split_values(str(spec.labels.get(LABEL_DECLARED_COMMUNICATION, ""))) if v in COMMUNICATION_PATTERNS
    }


def _edge_refs(source: ServiceSpec, target: ServiceSpec, dep: DependencySpec) -> list[tuple[str, HostRef]]:
    if dep.via.startswith("env:"):
        var = dep.via[4:]
        value = source.environment.get(var, "")
        return [(var, ref) for ref in host_refs(value, var)]
    name = target.name.lower()
    return [
        (var, ref)
        for var, value in source.environment.items()
        for ref in host_refs(value, var)
        if ref.host == name or ref.host.split(".", 1)[0] == name
    ]


def _edge_protocols(source: ServiceSpec, refs: list[tuple[str, HostRef]], declared: set[str]) -> set[str]:
    """What the caller's settings say the call speaks: a scheme or variable name first, then the
    protocol the callee's file declares for its ports, and only then a well-known port number."""
    found: set[str] = set()
    stated = declared & {"grpc", "rest"}
    for var, ref in refs:
        if "GRPC" in _var_tokens(var) or ref.scheme in ("grpc", "grpcs"):
            found.add("grpc")
        elif ref.scheme in ("http", "https", "ws", "wss"):
            found.add("rest")
        elif len(stated) == 1:
            found |= stated
        elif ref.port in _GRPC_PORTS:
            found.add("grpc")
        elif not ref.scheme and ref.port in _HTTP_PORTS:
            found.add("rest")
        if "/graphql" in source.environment.get(var, "").lower():
            found.add("graphql")
    return found


def infer(inv: ParsedInventory) -> ParsedInventory:
    """Set kinds and patterns of every service and the kind of every edge, in place."""
    by_name = {s.name: s for s in inv.services}
    facts = {s.name: _own_facts(s, inv.warnings) for s in inv.services}
    edges = [
        (dep, by_name[dep.source], by_name[dep.target])
        for dep in inv.dependencies
        if dep.source in by_name and dep.target in by_name
    ]

    # What the callers' configuration says about each callee (http://orders:8000 -> REST).
    evidence: dict[int, set[str]] = {}
    for dep, source, target in edges:
        seen = _edge_protocols(source, _edge_refs(source, target, dep), _declared(target))
        evidence[id(dep)] = seen
        if facts[target.name].kind in ("service", "gateway", "external"):
            facts[target.name].communication |= seen

    for dep, _source, target in edges:
        t = facts[target.name]
        seen = evidence[id(dep)]
        if t.kind in (_DB, "cache", "broker"):
            dep.kind = {_DB: "database", "cache": "cache", "broker": "async_event"}[t.kind]
        elif dep.via in _KIND_DECLARING_VIAS and dep.kind in ("sync_http", "sync_grpc", "async_event"):
            pass  # the source said what kind of call this is; anything else is recomputed
        elif "grpc" in seen or (not seen and "grpc" in t.communication):
            dep.kind = "sync_grpc"
        else:
            dep.kind = "sync_http"

    # A caller speaks the protocol of what it calls.
    for dep, source, target in edges:
        s, t = facts[source.name], facts[target.name]
        if dep.kind == "async_event":
            s.communication |= t.communication - _SYNC
        elif dep.kind == "sync_grpc":
            s.communication.add("grpc")
        elif dep.kind == "sync_http":
            s.communication |= evidence[id(dep)] or (t.communication & {"rest", "graphql"})

    outgoing: dict[str, list[str]] = {}
    for _dep, source, target in edges:
        outgoing.setdefault(source.name, []).append(target.name)
    # A database nothing names the engine of: its callers' settings may (MONGO_HOST=user-db:27017).
    for dep, source, target in edges:
        t = facts[target.name]
        if t.kind == _DB and not t.engine:
            for var, ref in _edge_refs(source, target, dep):
                tech = _PORT_TECH.get(ref.port or 0)
                engine = _SCHEME_ENGINE.get(ref.scheme) or next(
                    (_VAR_ENGINE[x] for x in _var_tokens(var) if x in _VAR_ENGINE), ""
                ) or (_TECH[tech].engine if tech and _TECH[tech].kind == _DB else "")
                if engine:
                    t.engine = engine
                    break

    for spec in inv.services:
        f = facts[spec.name]
        spec.kind = f.kind
        if f.uncertain:
            spec.labels[LABEL_KIND_UNCERTAIN] = f.uncertain
            inv.warnings.append(
                f"Service '{spec.name}': {f.uncertain}; set the label {LABEL_KIND} to say what it is."
            )
        else:
            spec.labels.pop(LABEL_KIND_UNCERTAIN, None)
        if f.storage_override is not None:
            storage = f.storage_override
        elif f.kind in (_DB, "cache"):
            storage = f.engine
        elif f.kind in ("broker", "external"):
            storage = ""
        else:
            storage = _service_storage(spec, [facts[t] for t in outgoing.get(spec.name, [])])
        communication = f.communication_override if f.communication_override is not None else sorted(f.communication)
        auth = f.auth_override if f.auth_override is not None else sorted(f.auth)
        spec.patterns = {"communication": communication, "storage": storage, "auth": auth}
    return inv


def _service_storage(spec: ServiceSpec, targets: list[_Facts]) -> str:
    """The engine of the database it uses; failing that its cache; failing that what its env names."""
    env_database, env_cache = _env_engines(spec)
    for candidate in (
        next((t.engine for t in targets if t.kind == _DB and t.engine), ""),
        env_database,
        next((t.engine for t in targets if t.kind == "cache" and t.engine), ""),
        env_cache,
    ):
        if candidate:
            return candidate
    return ""
