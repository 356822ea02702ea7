"""The demo project's compose file imports cleanly and holds what the rules analyst should find."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from teams_app.inventory.importers import import_text

DEMO = Path(__file__).resolve().parents[3] / "teams_app" / "inventory" / "demo" / "shop-compose.yml"


def load():
    return import_text(DEMO.read_text(encoding="utf-8"))


def test_demo_imports_with_expected_counts() -> None:
    inv = load()
    assert inv.format == "compose"
    assert len(inv.services) == 14
    assert len(inv.dependencies) == 26
    assert Counter(s.kind for s in inv.services) == {
        "service": 9,
        "gateway": 1,
        "database": 1,
        "cache": 1,
        "broker": 1,
        "external": 1,
    }
    assert Counter(d.kind for d in inv.dependencies) == {
        "sync_http": 13,
        "sync_grpc": 1,
        "database": 4,
        "cache": 3,
        "async_event": 5,
    }
    # Only the SMTP relay is an undeclared third party.
    assert len(inv.warnings) == 1 and "smtp.mailgun.org" in inv.warnings[0]


def test_demo_plants_findings_for_the_rules_analyst() -> None:
    inv = load()
    by = {s.name: s for s in inv.services}
    edges = {(d.source, d.target): d.kind for d in inv.dependencies}

    postgres_users = sorted(s for (s, t), k in edges.items() if t == "postgres")
    assert postgres_users == ["catalog", "inventory", "orders", "users"]  # a shared database
    assert any(p.host == 5432 for p in by["postgres"].ports)  # datastore on a host port
    assert by["postgres"].environment["POSTGRES_PASSWORD"] == "shop-admin-pass"  # plaintext secret
    assert by["notifications"].image.endswith(":latest")
    assert not by["cart"].healthcheck and not by["shipping"].healthcheck
    assert by["shipping"].restart == "" and by["notifications"].restart == ""
    assert by["orders"].replicas == 1
    assert by["inventory"].resources == {}  # no resource limits
    # gateway -> storefront -> orders -> payments -> stripe: a long synchronous chain
    for hop in [("gateway", "storefront"), ("storefront", "orders"), ("orders", "payments"), ("payments", "stripe")]:
        assert edges[hop] == "sync_http"
    assert edges[("orders", "inventory")] == "sync_grpc"  # the one gRPC deviation
    assert by["stripe"].kind == "external" and by["stripe"].image == ""
    assert by["inventory"].patterns["auth"] == []  # a service with no auth pattern
    assert by["users"].patterns["auth"] == ["jwt", "oauth2"]
    assert by["orders"].patterns == {"communication": ["amqp", "grpc", "rest"], "storage": "postgresql", "auth": ["jwt"]}


def test_reinferring_the_demo_changes_nothing() -> None:
    from teams_app.inventory.inference import infer

    inv = load()
    before = [(s.kind, s.patterns) for s in inv.services], [(d.source, d.target, d.kind) for d in inv.dependencies]
    infer(inv)
    assert ([(s.kind, s.patterns) for s in inv.services], [(d.source, d.target, d.kind) for d in inv.dependencies]) == before
