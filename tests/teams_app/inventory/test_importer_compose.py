"""The docker-compose importer: every supported field, env edges, and bad input."""

from __future__ import annotations

import textwrap

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.types import ParsedInventory, PortSpec


def compose(text: str) -> ParsedInventory:
    return import_text(textwrap.dedent(text), "compose")


def edges(inv: ParsedInventory) -> set[tuple[str, str, str, str]]:
    return {(d.source, d.target, d.kind, d.via) for d in inv.dependencies}


def test_port_forms() -> None:
    inv = compose(
        """
        services:
          web:
            image: acme/web:1.0
            ports:
              - "8080:80"
              - "127.0.0.1:5433:5432"
              - "3000"
              - 9000
              - "8000-8001:8000-8001"
              - "53:53/udp"
              - "[::1]:6000:6000"
              - target: 7000
                published: "7001"
                protocol: tcp
              - target: 7100
        """
    )
    assert inv.services[0].ports == [
        PortSpec(80, 8080),
        PortSpec(5432, 5433, host_ip="127.0.0.1"),  # this host only: not exposed
        PortSpec(3000, 0),  # published on an ephemeral host port
        PortSpec(9000, 0),
        PortSpec(8000, 8000),
        PortSpec(8001, 8001),
        PortSpec(53, 53, "udp"),
        PortSpec(6000, 6000, host_ip="::1"),
        PortSpec(7000, 7001),
        PortSpec(7100, 0),
    ]


def test_huge_port_range_keeps_the_first_port() -> None:
    inv = compose(
        """
        services:
          web: {image: a, ports: ["10000-20000:10000-20000"]}
        """
    )
    assert inv.services[0].ports == [PortSpec(10000, 10000)]
    assert any("only the first is kept" in w for w in inv.warnings)


def test_service_fields() -> None:
    inv = compose(
        """
        services:
          api:
            image: acme/api:2.1
            build:
              context: ./api
              dockerfile: Dockerfile
            expose: ["3000", 3001, "4000-4001/tcp"]
            environment:
              - PLAIN=value=with=equals
              - FROM_HOST
              - EMPTY=
            env_file: [.env, {path: .env.local, required: false}]
            networks: [front, back]
            healthcheck:
              test: ["CMD", "true"]
            restart: on-failure:3
            deploy:
              replicas: 3
              resources:
                limits: {cpus: 0.5, memory: 256M}
            labels: ["team=core", "tier=backend"]
          worker:
            build: ./worker
            environment: {DEBUG: true, WORKERS: 4, NAME: null}
            env_file: .env.worker
            networks:
              back: {}
            healthcheck: {disable: true}
            restart: no
            labels: {team: core}
            scale: 2
            mem_limit: 512m
          cron:
            image: acme/cron
            healthcheck: {test: ["NONE"]}
            deploy: {restart_policy: {condition: on-failure}}
        """
    )
    api, worker, cron = inv.services
    assert api.image == "acme/api:2.1"
    assert api.build == "./api"
    assert api.expose == [3000, 3001, 4000, 4001]
    assert api.environment == {"PLAIN": "value=with=equals", "FROM_HOST": "", "EMPTY": ""}
    assert api.env_files == [".env", ".env.local"]
    assert api.networks == ["front", "back"]
    assert api.healthcheck is True
    assert api.restart == "on-failure:3"
    assert api.replicas == 3
    assert api.resources == {"cpus": "0.5", "memory": "256M"}
    assert api.labels == {"team": "core", "tier": "backend"}

    assert worker.build == "./worker"
    assert worker.environment == {"DEBUG": "true", "WORKERS": "4", "NAME": ""}
    assert worker.env_files == [".env.worker"]
    assert worker.networks == ["back"]
    assert worker.healthcheck is False
    assert worker.restart == "no"  # the unquoted YAML boolean
    assert worker.replicas == 2
    assert worker.resources == {"memory": "512m"}
    assert worker.labels == {"team": "core"}

    assert cron.healthcheck is False
    assert cron.restart == "on-failure"
    assert cron.replicas == 1


def test_build_mapping_without_context_means_current_directory() -> None:
    inv = compose("services:\n  a: {build: {dockerfile: Dockerfile.dev}}\n")
    assert inv.services[0].build == "."


def test_depends_on_list_and_mapping_forms() -> None:
    inv = compose(
        """
        services:
          api:
            image: a
            depends_on: [db, cache]
          worker:
            image: b
            depends_on:
              db: {condition: service_healthy}
              api:
                condition: service_started
                restart: true
          db: {image: postgres:16}
          cache: {image: redis:7}
        """
    )
    assert edges(inv) == {
        ("api", "db", "database", "depends_on"),
        ("api", "cache", "cache", "depends_on"),
        ("worker", "db", "database", "depends_on"),
        ("worker", "api", "sync_http", "depends_on"),
    }


def test_environment_values_naming_services_become_edges() -> None:
    inv = compose(
        """
        services:
          api:
            image: acme/api
            environment:
              AMQP_URL: amqp://guest:s3cret@rabbitmq:5672/
              ORDERS_URL: http://orders:8000
              DB_HOST: postgres
              REDIS_URL: redis://redis:6379/0
              POSTGRES_DB: orders
              MODE: orders
              SEARCH: ${SEARCH_URL:-http://search:9200}
          orders: {image: acme/orders}
          postgres: {image: postgres}
          redis: {image: redis}
          rabbitmq: {image: rabbitmq:3}
          search: {image: elasticsearch:8.15.0}
        """
    )
    assert edges(inv) == {
        ("api", "rabbitmq", "async_event", "env:AMQP_URL"),
        ("api", "orders", "sync_http", "env:ORDERS_URL"),
        ("api", "postgres", "database", "env:DB_HOST"),
        ("api", "redis", "cache", "env:REDIS_URL"),
        ("api", "search", "database", "env:SEARCH"),
    }


def test_env_list_form_and_aliases_resolve() -> None:
    inv = compose(
        """
        services:
          api:
            image: acme/api
            environment:
              - DATABASE_URL=postgresql+psycopg://u:p@main-db:5432/app
              - KAFKA_BROKERS=kafka-1:9092,kafka-2:9092
              - LEGACY=http://legacy-host/
          db:
            image: postgres:16
            container_name: main-db
          kafka:
            image: bitnami/kafka:3.7
            hostname: kafka-1
          kafka2:
            image: bitnami/kafka:3.7
            networks:
              back:
                aliases: [kafka-2]
          legacy:
            image: acme/legacy
            links: []
          web:
            image: acme/web
            links: ["legacy:legacy-host"]
        """
    )
    assert ("api", "db", "database", "env:DATABASE_URL") in edges(inv)
    assert ("api", "kafka", "async_event", "env:KAFKA_BROKERS") in edges(inv)
    assert ("api", "kafka2", "async_event", "env:KAFKA_BROKERS") in edges(inv)
    assert ("api", "legacy", "sync_http", "env:LEGACY") in edges(inv)
    assert ("web", "legacy", "sync_http", "links") in edges(inv)


def test_duplicate_edges_keep_the_declared_via() -> None:
    inv = compose(
        """
        services:
          api:
            image: a
            environment:
              ORDERS_URL: http://orders:8000
              ORDERS_ADMIN_URL: http://orders:8001/admin
            depends_on: [orders]
          orders: {image: b}
        """
    )
    assert [(d.source, d.target, d.kind, d.via) for d in inv.dependencies] == [
        ("api", "orders", "sync_http", "depends_on")
    ]


def test_external_service_needs_the_label_and_no_service_is_invented() -> None:
    labelled = compose(
        """
        services:
          payments:
            image: acme/payments
            environment: {STRIPE_API_BASE: "https://api.stripe.com/v1"}
          stripe:
            labels: {maestro.kind: external}
        """
    )
    assert labelled.service("stripe").kind == "external"
    assert ("payments", "stripe", "sync_http", "env:STRIPE_API_BASE") in edges(labelled)
    assert labelled.warnings == []

    unlabelled = compose(
        """
        services:
          payments:
            image: acme/payments
            environment: {STRIPE_API_BASE: "https://api.stripe.com/v1"}
        """
    )
    assert [s.name for s in unlabelled.services] == ["payments"]
    assert unlabelled.dependencies == []
    assert any("api.stripe.com" in w for w in unlabelled.warnings)


def test_maestro_hosts_label_links_hostnames() -> None:
    inv = compose(
        """
        services:
          api:
            image: a
            environment: {MAIL: "smtp://smtp.eu.mailgun.org:587"}
          mailgun:
            labels: {maestro.kind: external, maestro.hosts: "mailgun.org"}
        """
    )
    assert ("api", "mailgun", "sync_http", "env:MAIL") in edges(inv)


def test_service_without_image_or_build_is_a_warning() -> None:
    inv = compose("services:\n  a: {image: x}\n  b: {}\n")
    assert any("'b' has neither an image nor a build" in w for w in inv.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: [a, b]\n", "'services' must be a mapping"),
        ("services:\n  api: [image, nginx]\n", "Service 'api' must be a mapping of settings, not a list"),
        ("services:\n  api: {image: a, deploy: {replicas: three}}\n", "Service 'api': 'deploy.replicas' must be an integer"),
        ("services:\n  api: {image: a, deploy: {replicas: true}}\n", "'deploy.replicas' must be an integer, not a boolean"),
        ("services:\n  api: {image: a, deploy: {replicas: -1}}\n", "'deploy.replicas' must be at least 0"),
        ("services:\n  api: {image: [a]}\n", "Service 'api': 'image' must be a string, not a list"),
        ("services:\n  api: {image: a, ports: '80:80'}\n", "'ports' must be a list"),
        ("services:\n  api: {image: a, ports: ['http:80']}\n", "'ports[0]' has an invalid port 'http'"),
        ("services:\n  api: {image: a, ports: ['70000:80']}\n", "'ports[0]' has an invalid port '70000'"),
        ("services:\n  api: {image: a, ports: [{published: 80}]}\n", "'ports[0]' has no 'target' port"),
        ("services:\n  api: {image: a, ports: ['8000-8002:80-81']}\n", "maps 3 host ports to 2 container ports"),
        ("services:\n  api: {image: a, environment: {A: {b: c}}}\n", "'environment.A' must be a string, number or boolean"),
        ("services:\n  api: {image: a, environment: [1]}\n", "'environment[0]' must be a \"KEY=VALUE\" string"),
        ("services:\n  api: {image: a, environment: 'A=1'}\n", "'environment' must be a mapping or a list"),
        ("services:\n  api: {image: a, healthcheck: yes}\n", "'healthcheck' must be a mapping"),
        ("services:\n  api: {image: a, depends_on: 'db'}\n", "'depends_on' must be a mapping"),
        ("services:\n  api: {image: a, depends_on: {db: yes}}\n", "'depends_on.db' must be a mapping"),
        ("services:\n  api: {image: a, build: 3}\n", "'build' must be a path or a mapping"),
        ("services:\n  api: {image: a, labels: 'x'}\n", "'labels' must be a mapping or a list"),
        ("services:\n  api: {image: a, deploy: {resources: {limits: [1]}}}\n", "'deploy.resources.limits' must be a mapping"),
        ("services: {a: {image: x}}\n---\n- services\n", "Document 2 must be a mapping with 'services'"),
        ("services: {a: {image: x}}\n---\nvolumes: {}\n", "Document 2 has no 'services' section"),
    ],
)
def test_wrong_shapes_name_the_service_and_field(text: str, message: str) -> None:
    with pytest.raises(ApplicationError) as exc:
        import_text(text, "compose")
    assert message in str(exc.value)


def test_unknown_dependency_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="Service 'api' depends on unknown service 'ghost'"):
        compose("services:\n  api:\n    image: a\n    depends_on: [ghost]\n")


def test_unknown_link_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="Service 'api' depends on unknown service 'ghost'"):
        compose("services:\n  api: {image: a, links: ['ghost:g']}\n")


def test_self_dependency_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="depends on itself"):
        compose("services:\n  api: {image: a, depends_on: [api]}\n")


def test_duplicate_names_across_documents_are_listed() -> None:
    text = "services:\n  api: {image: a}\n  db: {image: b}\n---\nservices:\n  db: {image: c}\n  api: {image: d}\n"
    with pytest.raises(ApplicationError, match="Duplicate service names: api, db"):
        import_text(text, "compose")


def test_duplicate_key_in_one_file_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="duplicate key 'api'"):
        import_text("services:\n  api: {image: a}\n  api: {image: b}\n", "compose")


@pytest.mark.parametrize(
    ("name", "problem"),
    [("my service", "contains whitespace"), ("x" * 64, "longer than 63"), ("-api", "must start with a letter or digit"), ("a/b", "only letters")],
)
def test_invalid_names_are_rejected(name: str, problem: str) -> None:
    with pytest.raises(ApplicationError, match=problem):
        import_text(f"services:\n  '{name}': {{image: a}}\n", "compose")


def test_names_keep_their_case() -> None:
    inv = compose("services:\n  OrdersAPI: {image: a}\n  Orders_v2.1: {image: b}\n")
    assert [s.name for s in inv.services] == ["OrdersAPI", "Orders_v2.1"]


def test_no_services_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="declares no services"):
        compose("services: {}\n")


def test_at_most_2000_services() -> None:
    text = "services:\n" + "".join(f"  s{i}: {{image: a}}\n" for i in range(2001))
    with pytest.raises(ApplicationError, match="at most 2000"):
        import_text(text, "compose")
