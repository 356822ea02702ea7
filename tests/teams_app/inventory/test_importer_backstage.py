"""The Backstage catalog importer: entities, references, APIs and bad input."""

from __future__ import annotations

import textwrap

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.inference import infer
from teams_app.inventory.types import ParsedInventory

CATALOG = """
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: shop}
spec: {owner: team-shop}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: storefront
  description: Customer web shop
  tags: [session]
spec:
  type: website
  lifecycle: production
  owner: team-web
  system: shop
  dependsOn: [component:default/orders]
  consumesApis: [orders-api, api:catalog-grpc, order-events]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: orders}
spec:
  type: service
  owner: team-orders
  system: system:default/shop
  providesApis: [orders-api]
  dependsOn: [resource:orders-db, cache, component:catalog]
---
apiVersion: backstage.io/v1beta1
kind: Component
metadata: {name: catalog}
spec: {type: service, owner: team-catalog, providesApis: [catalog-grpc]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: notifications}
spec: {type: service, owner: team-orders, providesApis: [order-events]}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: orders-db, tags: [postgres]}
spec: {type: database, owner: team-orders, system: shop, dependencyOf: [component:notifications]}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: cache}
spec: {type: redis, owner: team-orders}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: stripe}
spec: {type: external-api, owner: team-payments}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: orders-api}
spec: {type: openapi, lifecycle: production, owner: team-orders, definition: "openapi: 3.0.0"}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: catalog-grpc}
spec: {type: grpc, owner: team-catalog, definition: "syntax = \\"proto3\\";"}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: order-events}
spec:
  type: asyncapi
  owner: team-orders
  definition: |
    asyncapi: 2.6.0
    servers:
      production: {url: "broker:5672", protocol: amqp}
"""


def backstage(text: str) -> ParsedInventory:
    return import_text(textwrap.dedent(text), "backstage")


def edges(inv: ParsedInventory) -> set[tuple[str, str, str, str]]:
    return {(d.source, d.target, d.kind, d.via) for d in inv.dependencies}


def test_components_and_resources_become_services_apis_and_systems_do_not() -> None:
    inv = backstage(CATALOG)
    assert [s.name for s in inv.services] == ["storefront", "orders", "catalog", "notifications", "orders-db", "cache", "stripe"]
    kinds = {s.name: s.kind for s in inv.services}
    assert kinds == {
        "storefront": "service",
        "orders": "service",
        "catalog": "service",
        "notifications": "service",
        "orders-db": "database",
        "cache": "cache",
        "stripe": "external",
    }


def test_labels_carry_system_type_and_owner() -> None:
    inv = backstage(CATALOG)
    storefront = inv.service("storefront")
    orders = inv.service("orders")
    assert storefront is not None and orders is not None
    assert storefront.labels["system"] == "shop"
    assert orders.labels["system"] == "shop"  # from a full system:default/shop reference
    assert storefront.labels["backstage.type"] == "website"
    assert storefront.labels["backstage.kind"] == "Component"
    assert storefront.labels["backstage.owner"] == "team-web"
    assert storefront.description == "Customer web shop"
    assert "system" not in (inv.service("catalog") or storefront).labels


def test_depends_on_and_apis_become_edges_with_kinds_from_api_types() -> None:
    inv = backstage(CATALOG)
    assert edges(inv) == {
        ("storefront", "orders", "sync_http", "dependsOn"),  # also consumes orders-api (openapi)
        ("storefront", "catalog", "sync_grpc", "consumesApis"),
        ("storefront", "notifications", "async_event", "consumesApis"),
        ("orders", "orders-db", "database", "dependsOn"),
        ("orders", "cache", "cache", "dependsOn"),
        ("orders", "catalog", "sync_grpc", "dependsOn"),  # catalog speaks gRPC
        ("notifications", "orders-db", "database", "dependencyOf"),
    }


def test_patterns_from_api_types_tags_and_resources() -> None:
    inv = backstage(CATALOG)
    patterns = {s.name: s.patterns for s in inv.services}
    assert patterns["orders"] == {"communication": ["grpc", "rest"], "storage": "postgresql", "auth": []}
    assert patterns["catalog"]["communication"] == ["grpc"]
    assert patterns["notifications"]["communication"] == ["amqp"]
    assert patterns["storefront"]["communication"] == ["amqp", "grpc", "rest"]
    assert patterns["storefront"]["auth"] == ["session"]  # from metadata.tags
    assert patterns["orders-db"]["storage"] == "postgresql"
    assert patterns["cache"]["storage"] == "redis"


def test_plain_and_namespaced_references() -> None:
    inv = backstage(
        """
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: web, namespace: shop}
        spec: {type: website, dependsOn: [api, "component:shop/auth", "resource:default/db"]}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: api, namespace: shop}
        spec: {type: service}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: auth, namespace: shop}
        spec: {type: service}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Resource
        metadata: {name: db}
        spec: {type: database}
        """
    )
    assert {(d.source, d.target) for d in inv.dependencies} == {("web", "api"), ("web", "auth"), ("web", "db")}


def test_consuming_an_api_nobody_in_the_file_provides_is_an_external_node() -> None:
    inv = backstage(
        """
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: web}
        spec: {type: website, consumesApis: [legacy-api]}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: API
        metadata: {name: legacy-api}
        spec: {type: openapi}
        """
    )
    assert [(d.source, d.target, d.kind) for d in inv.dependencies] == [("web", "legacy-api", "sync_http")]
    assert inv.service("legacy-api").kind == "external"
    assert any("no component in the file provides" in w and "'legacy-api'" in w for w in inv.warnings)


@pytest.mark.parametrize(
    ("spec", "node", "kind"),
    [
        ("{dependsOn: [component:ghost]}", "ghost", "component"),
        ("{dependsOn: [ghost]}", "ghost", "component"),
        ("{dependsOn: ['resource:default/orders-db']}", "orders-db", "resource"),
        ("{consumesApis: [nope]}", "nope", "api"),
        ("{consumesApis: ['api:payments/charge']}", "charge", "api"),
    ],
)
def test_references_to_other_files_become_external_nodes(spec: str, node: str, kind: str) -> None:
    inv = backstage(f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: api}}\nspec: {spec}\n")
    assert [(d.source, d.target) for d in inv.dependencies] == [("api", node)]
    external = inv.service(node)
    assert external.kind == "external" and external.labels["backstage.kind"] == kind.capitalize()
    assert any(f"external node '{node}'" in w for w in inv.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: api}\nspec: {dependsOn: ['component:a/b/c']}\n",
            "malformed entity reference",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: api}\nspec: {dependsOn: component:x}\n",
            "Component 'api': 'spec.dependsOn' must be a list",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: api}\nspec: [1]\n",
            "Component 'api': 'spec' must be a mapping",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: api}\nspec: {dependsOn: [{a: b}]}\n",
            "'spec.dependsOn[0]' must be a string",
        ),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {}\n", "Document 1 (Component) has no metadata.name"),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\n",
            "Document 2 is not a Backstage entity",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n---\n"
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata: {name: a}\n",
            "Duplicate service names: a",
        ),
        ("apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: shop}\n", "declares no Component or Resource"),
    ],
)
def test_bad_catalogs(text: str, message: str) -> None:
    with pytest.raises(ApplicationError) as exc:
        import_text(text, "backstage")
    assert message in str(exc.value)


def test_reinference_keeps_api_edge_kinds() -> None:
    inv = backstage(CATALOG)
    before = {(d.source, d.target): d.kind for d in inv.dependencies}
    infer(inv)
    assert {(d.source, d.target): d.kind for d in inv.dependencies} == before


def test_async_api_and_depends_on_between_the_same_pair() -> None:
    inv = backstage(
        """
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: mailer}
        spec: {type: service, dependsOn: [component:orders], consumesApis: [order-events]}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: orders}
        spec: {type: service, providesApis: [order-events]}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: API
        metadata: {name: order-events}
        spec: {type: asyncapi, definition: "channels: {}"}
        """
    )
    assert [(d.source, d.target, d.kind, d.via) for d in inv.dependencies] == [
        ("mailer", "orders", "async_event", "consumesApis")
    ]
