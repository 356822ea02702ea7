"""Public topologies that others wrote (tests/fixtures/public, origins in its README): what each
imports as, and the findings that the rules analyst gives for it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.rules import analyze
from teams_app.inventory.types import ParsedInventory

PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "public"


def read(*names: str) -> str:
    texts = [(PUBLIC / name).read_text(encoding="utf-8") for name in names]
    return "---\n".join(t if t.endswith("\n") else t + "\n" for t in texts)


def kinds(inv: ParsedInventory) -> dict[str, str]:
    return {s.name: s.kind for s in inv.services}


def edges(inv: ParsedInventory) -> set[tuple[str, str, str]]:
    return {(d.source, d.target, d.kind) for d in inv.dependencies}


# -- Backstage -----------------------------------------------------------------------------------

BACKSTAGE = sorted(p.name for p in (PUBLIC / "backstage-examples").glob("*.yaml"))


def test_backstage_examples_import_together() -> None:
    inv = import_text(read(*(f"backstage-examples/{n}" for n in BACKSTAGE)))
    assert kinds(inv) == {
        "artist-lookup": "service",
        "artists-db": "database",
        "different-namespace": "service",
        "wayback-archive": "service",
        "wayback-search": "service",
        "www-artist": "service",
    }
    assert edges(inv) == {
        ("artist-lookup", "artists-db", "database"),  # dependsOn: ['resource:artists-db']
        ("wayback-search", "wayback-archive", "sync_http"),  # the openapi API wayback-archive provides
        ("www-artist", "artist-lookup", "sync_http"),  # consumesApis: ['component:artist-lookup']
    }
    artist = inv.service("artist-lookup")
    assert artist.labels["system"] == "artist-engagement-portal" and artist.labels["backstage.owner"] == "team-a"
    assert inv.service("different-namespace").labels["backstage.owner"] == "team-a"  # owner: default/team-a


def test_a_per_repository_catalog_file_names_the_others_as_external_nodes() -> None:
    inv = import_text(read("backstage-examples/wayback-search-component.yaml"))
    assert kinds(inv) == {"wayback-search": "service", "wayback-archive": "external"}
    assert edges(inv) == {("wayback-search", "wayback-archive", "sync_http")}
    assert inv.warnings == [
        "Component 'wayback-search' consumes API 'wayback-archive', which is not in the file; "
        "it is shown as the external node 'wayback-archive'."
    ]
    inv = import_text(read("backstage-examples/artist-lookup-component.yaml"))
    assert kinds(inv) == {"artist-lookup": "service", "artists-db": "external"}


def test_a_catalog_gets_no_findings_about_running_containers() -> None:
    inv = import_text(read(*(f"backstage-examples/{n}" for n in BACKSTAGE)))
    rules = {f.rule for f in analyze(inv)}
    assert not rules & {"OPS001", "OPS002", "OPS004", "OPS005", "PERF001"}, rules


def test_a_file_of_groups_and_users_says_what_it_lacks() -> None:
    with pytest.raises(ApplicationError, match=r"no Component or Resource.*\(it has 1 Group, 5 Users\)"):
        import_text(read("backstage-examples/team-a-group.yaml"))


# -- Kubernetes ----------------------------------------------------------------------------------


def test_online_boutique_calls_are_grpc() -> None:
    inv = import_text(read("online-boutique/kubernetes-manifests.yaml"))
    calls = {(d.source, d.target): d.kind for d in inv.dependencies if d.kind.startswith("sync_")}
    # All 14 calls between its services are gRPC (Service ports named grpc); only the load
    # generator browses the HTTP front end.
    assert len(calls) == 15 and list(calls.values()).count("sync_grpc") == 14
    assert {pair for pair, kind in calls.items() if kind != "sync_grpc"} == {("loadgenerator", "frontend")}
    assert calls[("frontend", "recommendationservice")] == "sync_grpc"  # on :8080, named grpc
    assert calls[("checkoutservice", "emailservice")] == "sync_grpc"  # on :5000, named grpc
    for name in ("adservice", "cartservice", "productcatalogservice"):
        assert inv.service(name).patterns["communication"] == ["grpc"], name
    findings = analyze(inv)
    (catalogue,) = [f for f in findings if f.rule == "PAT001"]
    assert catalogue.why.startswith("grpc is the dominant communication pattern (10 of 11 services)")
    assert not [f for f in findings if f.rule == "PAT005"]


def test_sock_shop_nodeport_front_end_is_reachable_from_outside() -> None:
    inv = import_text(read("sock-shop/complete-demo.yaml"))
    front = inv.service("front-end")
    assert [(p.container, p.host) for p in front.ports] == [(8079, 30001)]
    assert any(f.rule == "SEC007" and f.services == ("front-end",) and "30001" in f.why for f in analyze(inv))
    assert kinds(inv)["user-db"] == "database" and inv.service("user-db").patterns["storage"] == "mongodb"


# -- Compose -------------------------------------------------------------------------------------


def test_sock_shop_compose_kinds_match_its_kubernetes_files() -> None:
    compose = import_text(read("sock-shop/docker-compose.yml"))
    k8s = import_text(read("sock-shop/complete-demo.yaml"))
    assert kinds(compose)["edge-router"] == "gateway"  # Traefik behind weaveworksdemos/edge-router
    shared = set(kinds(compose)) & set(kinds(k8s))
    assert {n: kinds(compose)[n] for n in shared} == {n: kinds(k8s)[n] for n in shared}
    assert kinds(compose)["user-db"] == "database" and compose.service("user-db").patterns["storage"] == "mongodb"
    # queue-master is an application named after the queue it reads: the guess says it is one.
    assert "nothing else says what it is" in compose.service("queue-master").labels["maestro.kind.uncertain"]


def test_sock_shop_compose_findings() -> None:
    findings = analyze(import_text(read("sock-shop/docker-compose.yml")))
    by_rule = {f.rule: f for f in findings}
    # MYSQL_ALLOW_EMPTY_PASSWORD=true is no plaintext secret but no password at all.
    assert by_rule["SEC006"].services == ("catalogue-db",)
    assert "MYSQL_ALLOW_EMPTY_PASSWORD=true" in by_rule["SEC006"].why
    assert "SEC002" not in by_rule
    # One service speaks REST as far as the file shows: that is no convention.
    assert by_rule["PAT001"].why == "no communication pattern is dominant: rest (1) of 10 services"
    assert "PAT002" not in by_rule


def test_eshop_gateways_and_collapsed_findings() -> None:
    inv = import_text(read("eshop/docker-compose.yml"))
    assert kinds(inv)["webshoppingapigw"] == "gateway" and kinds(inv)["mobileshoppingapigw"] == "gateway"
    findings = analyze(inv)
    per_rule = Counter(f.rule for f in findings)
    # A rule that fires on most services is one finding that names them, not 21.
    for rule in ("OPS001", "OPS003", "OPS004"):
        assert per_rule[rule] == 1, rule
        (finding,) = [f for f in findings if f.rule == rule]
        assert len(finding.services) == 21 and " on 21 of 21 services: " in finding.why
    assert len(findings) < 40


def test_a_loopback_bind_is_not_exposure() -> None:
    inv = import_text(
        "services:\n"
        "  db:\n    image: postgres:16\n    ports: ['127.0.0.1:5432:5432']\n"
        "  api:\n    image: acme/api:1.0\n    ports: ['127.0.0.1:8080:8080']\n"
    )
    assert not {f.rule for f in analyze(inv)} & {"SEC001", "SEC003", "SEC007"}
