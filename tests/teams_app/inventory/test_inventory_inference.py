"""Inference of service kinds, patterns and edge kinds."""

from __future__ import annotations

import pytest

from teams_app.inventory.inference import image_components, infer
from teams_app.inventory.types import DependencySpec, ParsedInventory, PortSpec, ServiceSpec


def one(spec: ServiceSpec) -> ServiceSpec:
    infer(ParsedInventory(format="manual", services=[spec]))
    return spec


@pytest.mark.parametrize(
    ("image", "kind", "storage", "communication"),
    [
        ("postgres:16-alpine", "database", "postgresql", []),
        ("docker.io/library/postgres@sha256:abc", "database", "postgresql", []),
        ("bitnami/postgresql:16", "database", "postgresql", []),
        ("postgis/postgis:16-3.4", "database", "postgresql", []),
        ("mysql:8", "database", "mysql", []),
        ("mariadb:11", "database", "mariadb", []),
        ("mongo:7", "database", "mongodb", []),
        ("docker.elastic.co/elasticsearch/elasticsearch:8.15.0", "database", "elasticsearch", []),
        ("cassandra:5", "database", "cassandra", []),
        ("mcr.microsoft.com/mssql/server:2022-latest", "database", "sqlserver", []),
        ("redis:7", "cache", "redis", []),
        ("valkey/valkey:8", "cache", "valkey", []),
        ("memcached:1.6", "cache", "memcached", []),
        ("rabbitmq:3-management", "broker", "", ["amqp"]),
        ("bitnami/kafka:3.7", "broker", "", ["kafka"]),
        ("confluentinc/cp-kafka:7.6.0", "broker", "", ["kafka"]),
        ("nats:2.10", "broker", "", ["nats"]),
        ("nginx:1.27", "gateway", "", ["rest"]),
        ("traefik:v3.1", "gateway", "", ["rest"]),
        ("envoyproxy/envoy:v1.31", "gateway", "", ["rest"]),
        ("kong:3.7", "gateway", "", ["rest"]),
        ("haproxy:3.0", "gateway", "", ["rest"]),
        # tools named after a product are not the product
        ("prometheuscommunity/postgres-exporter", "service", "", []),
        ("provectuslabs/kafka-ui", "service", "", []),
        ("mongo-express", "service", "", []),
        ("rediscommander/redis-commander", "service", "", []),
        ("acme/orders:1.0", "service", "", []),
    ],
)
def test_kind_and_engine_from_image(image: str, kind: str, storage: str, communication: list[str]) -> None:
    spec = one(ServiceSpec(name="x", image=image))
    assert spec.kind == kind
    assert spec.patterns == {"communication": communication, "storage": storage, "auth": []}


def test_image_components() -> None:
    assert image_components("registry.local:5000/team/app:1.2@sha256:00") == ["team", "app"]
    assert image_components("localhost/app") == ["app"]
    assert image_components("redis") == ["redis"]


def test_well_known_ports_when_the_image_says_nothing() -> None:
    assert one(ServiceSpec(name="a", image="acme/db", ports=[PortSpec(5432, 5432)])).kind == "database"
    assert one(ServiceSpec(name="b", image="acme/mq", expose=[5672])).kind == "broker"
    assert one(ServiceSpec(name="c", image="acme/kv", expose=[6379])).kind == "cache"
    # built from source: the team's own code, whatever it listens on
    assert one(ServiceSpec(name="d", build="./d", expose=[5432])).kind == "service"
    grpc = one(ServiceSpec(name="e", image="acme/e", expose=[50051, 8080]))
    assert grpc.kind == "service"
    assert grpc.patterns["communication"] == ["grpc", "rest"]


def test_server_only_environment_reveals_a_custom_database_image() -> None:
    spec = one(ServiceSpec(name="db", build="./db", environment={"MYSQL_ROOT_PASSWORD": "x"}))
    assert spec.kind == "database"
    assert spec.patterns["storage"] == "mysql"


def test_patterns_from_environment() -> None:
    spec = one(
        ServiceSpec(
            name="api",
            image="acme/api",
            environment={
                "DATABASE_URL": "postgres://u:p@db-host/app",
                "JWT_SECRET": "x",
                "OAUTH_CLIENT_ID": "id",
                "STRIPE_API_KEY": "sk",
                "TLS_CLIENT_CERT": "/certs/c.pem",
                "ADMIN_BASIC_AUTH": "a:b",
                "SESSION_COOKIE_NAME": "sid",
                "KAFKA_BROKERS": "k1:9092",
                "GRPC_PORT": "50051",
                "EVENTS_GRAPHQL_ENDPOINT": "http://gql/graphql",
                "NATS_URL": "nats://nats:4222",
                "REDIS_PUBSUB_CHANNEL": "orders",
                "AMQP_URL": "amqp://mq",
            },
        )
    )
    assert spec.patterns == {
        "communication": ["amqp", "graphql", "grpc", "kafka", "nats", "redis_pubsub", "rest"],
        "storage": "postgresql",
        "auth": ["api_key", "basic", "jwt", "mtls", "oauth2", "session"],
    }


def test_sqlite_and_labels_for_auth() -> None:
    spec = one(
        ServiceSpec(
            name="a",
            image="acme/a",
            environment={"DATABASE_URL": "sqlite:///data/app.db"},
            labels={"traefik.http.middlewares.auth.basicauth.users": "u:h", "sidecar.istio.io/inject": "true"},
        )
    )
    assert spec.patterns["storage"] == "sqlite"
    assert spec.patterns["auth"] == ["basic", "mtls"]


def test_label_overrides_replace_inference() -> None:
    spec = one(
        ServiceSpec(
            name="legacy",
            image="redis:7",
            environment={"JWT_SECRET": "x"},
            labels={
                "maestro.kind": "Broker",
                "maestro.patterns.communication": "grpc, redis_pubsub",
                "maestro.patterns.storage": "none",
                "maestro.patterns.auth": "none",
            },
        )
    )
    assert spec.kind == "broker"
    assert spec.patterns == {"communication": ["grpc", "redis_pubsub"], "storage": "", "auth": []}


def test_unknown_override_values_are_warnings() -> None:
    inv = ParsedInventory(
        format="manual",
        services=[ServiceSpec(name="a", labels={"maestro.kind": "lambda", "maestro.patterns.auth": "jwt,magic"})],
    )
    infer(inv)
    assert inv.services[0].kind == "service"
    assert inv.services[0].patterns["auth"] == ["jwt"]
    assert len(inv.warnings) == 2


def test_external_only_when_declared() -> None:
    assert one(ServiceSpec(name="stripe")).kind == "service"
    assert one(ServiceSpec(name="stripe", labels={"maestro.kind": "external"})).kind == "external"


def _inventory() -> ParsedInventory:
    return ParsedInventory(
        format="manual",
        services=[
            ServiceSpec(name="web", image="acme/web", environment={"API": "http://api:8000", "INV": "inventory:50051"}),
            ServiceSpec(name="api", image="acme/api", environment={"DB_HOST": "pg", "CACHE": "redis://cache"}),
            ServiceSpec(name="inventory", image="acme/inventory", environment={"GRPC_PORT": "50051"}),
            ServiceSpec(name="pg", image="postgres:16"),
            ServiceSpec(name="cache", image="valkey/valkey:8"),
            ServiceSpec(name="mq", image="rabbitmq:3"),
            ServiceSpec(name="worker", image="acme/worker"),
            ServiceSpec(name="stripe", labels={"maestro.kind": "external"}),
        ],
        dependencies=[
            DependencySpec("web", "api", via="env:API"),
            DependencySpec("web", "inventory", via="depends_on"),
            DependencySpec("api", "pg", via="env:DB_HOST"),
            DependencySpec("api", "cache", via="depends_on"),
            DependencySpec("api", "mq", via="depends_on"),
            DependencySpec("worker", "mq", via="depends_on"),
            DependencySpec("worker", "api", via="depends_on"),
            DependencySpec("api", "stripe", via="manual"),
        ],
    )


def test_edge_kinds_follow_the_target() -> None:
    inv = infer(_inventory())
    assert {(d.source, d.target): d.kind for d in inv.dependencies} == {
        ("web", "api"): "sync_http",
        ("web", "inventory"): "sync_grpc",
        ("api", "pg"): "database",
        ("api", "cache"): "cache",
        ("api", "mq"): "async_event",
        ("worker", "mq"): "async_event",
        ("worker", "api"): "sync_http",
        ("api", "stripe"): "sync_http",
    }


def test_storage_and_protocols_follow_the_edges() -> None:
    inv = infer(_inventory())
    patterns = {s.name: s.patterns for s in inv.services}
    assert patterns["api"]["storage"] == "postgresql"  # the database wins over the cache
    assert patterns["api"]["communication"] == ["amqp", "rest"]  # called over HTTP, publishes to AMQP
    assert patterns["web"]["communication"] == ["grpc", "rest"]
    assert patterns["worker"]["communication"] == ["amqp", "rest"]
    assert patterns["worker"]["storage"] == ""
    assert patterns["cache"]["storage"] == "valkey"
    assert patterns["mq"] == {"communication": ["amqp"], "storage": "", "auth": []}


def test_cache_only_service_stores_in_the_cache() -> None:
    inv = ParsedInventory(
        format="manual",
        services=[ServiceSpec(name="cart", image="acme/cart"), ServiceSpec(name="redis", image="redis:7")],
        dependencies=[DependencySpec("cart", "redis")],
    )
    infer(inv)
    assert inv.services[0].patterns["storage"] == "redis"


def test_infer_is_repeatable() -> None:
    inv = infer(_inventory())
    first = [(s.kind, s.patterns) for s in inv.services], [d.kind for d in inv.dependencies]
    infer(inv)
    assert ([(s.kind, s.patterns) for s in inv.services], [d.kind for d in inv.dependencies]) == first
