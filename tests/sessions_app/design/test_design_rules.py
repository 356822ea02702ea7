"""The requirement read into a brief, and the rule-based designer's proposal, on three real
inventories (the demo shop, Google's Online Boutique, eShopOnContainers) with three requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessions_app.design.brief import brief_build, constraints_in
from sessions_app.design.cluster import Cluster
from sessions_app.design.drafts import drafts_for, feedback_drafts, route_by_design
from sessions_app.design.naming import mentions, service_stem
from sessions_app.design.proposal import merge, proposal_diff, proposal_lines
from sessions_app.design.schema import EdgeChange, ProposalChanges
from teams_app.inventory.importers import import_text
from teams_app.inventory.rules import analyze
from teams_app.inventory.types import ParsedInventory, ServiceSpec
from teams_app.management.commands.seed_demo import DEMO, DEMO_COMPOSE, PRD_BODY

PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "public"
PAY = "Add a payment service with Stripe: PCI scope isolated, latency under 100 ms, subscriptions and one-time payments"
ALL_ROLES = {"pattern", "integration", "dataflow", "security", "performance", "devops"}


def cluster_of(path: Path) -> Cluster:
    inv = import_text(path.read_text())
    return Cluster(inv, list(analyze(inv)))


@pytest.fixture(scope="module")
def shop() -> Cluster:
    return cluster_of(DEMO_COMPOSE)


@pytest.fixture(scope="module")
def boutique() -> Cluster:
    return cluster_of(PUBLIC / "online-boutique" / "kubernetes-manifests.yaml")


@pytest.fixture(scope="module")
def eshop() -> Cluster:
    return cluster_of(PUBLIC / "eshop" / "docker-compose.yml")


def proposal_for(requirement: str, cluster: Cluster, **brief_kw):
    brief = brief_build(requirement=requirement, cluster=cluster, **brief_kw)
    drafts = drafts_for(brief, cluster)
    result = merge(None, [("team", d.changes_for(ALL_ROLES)) for d in drafts])
    return brief, result.content


# -- names and numbers --------------------------------------------------------------------


def test_requirement_words_match_inventory_names():
    inv = ParsedInventory(format="manual", services=[
        ServiceSpec(name="checkoutservice"), ServiceSpec(name="ordering-api"), ServiceSpec(name="shippingservice"),
        ServiceSpec(name="user-db", kind="database"),
    ])
    found = {svc.name: word for svc, word in mentions("Checkout calls ordering when the parcel ships", inv)}
    assert found == {"checkoutservice": "checkout", "ordering-api": "ordering", "shippingservice": "ships"}
    assert service_stem("ordering-api") == service_stem("orders") == "order"


def test_constraints_keep_their_numbers_and_sources():
    text = ("Checkout p95 latency under 300 ms at 200 orders per minute. Keep invoices for 7 years (GDPR, SOC 2). "
            "99.95% availability. Handles 2k rps at peak.")
    got = {(c.kind, c.value) for c in constraints_in(text, "prd")}
    assert got == {
        ("latency", "300 ms"), ("throughput", "200 orders/min"), ("retention", "7 years"), ("compliance", "GDPR"),
        ("compliance", "SOC 2"), ("availability", "99.95%"), ("throughput", "2000 rps"),
    }
    assert {c.source for c in constraints_in(text, "prd")} == {"prd"}
    assert constraints_in("latency must stay within 0.5 s", "requirement")[0].value == "500 ms"


def test_demo_brief_capabilities_conflicts_and_questions(shop):
    brief = brief_build(requirement=PAY, prd_reference="PRD-101", prd_title="Subscriptions for recurring orders",
                        prd_body=PRD_BODY, project_constraints=DEMO["constraints"], cluster=shop)
    assert [c.key for c in brief.capabilities] == ["payments", "subscriptions"]
    implied = {s.name: s.exists for s in brief.new_services}
    assert implied == {"payments": True, "subscriptions": False}  # payments exists: changed, not added
    assert {"orders", "payments", "stripe"} <= {t.name for t in brief.touched_services}
    latency = sorted((c.value, c.source) for c in brief.constraints if c.kind == "latency")
    assert latency == [("100 ms", "requirement"), ("300 ms", "project")]
    assert any(c.kind == "compliance" and c.value == "PCI DSS" for c in brief.constraints)
    kinds = [c.kind for c in brief.conflicts]
    assert "constraint" in kinds and "existing_service" in kinds and "inventory" in kinds
    assert any("100 ms" in c.text and "300 ms" in c.text for c in brief.conflicts)
    assert any("STRIPE_API_KEY" in c.text for c in brief.conflicts)  # PCI vs a literal key in payments
    # Unknowns are questions for the USER, not guesses.
    assert any(q.startswith("Which latency target holds") for q in brief.questions)
    assert any("reservations and holds" in q for q in brief.questions)  # only the PRD asks for holds


def test_an_unknown_requirement_is_asked_not_guessed(shop):
    brief, proposal = proposal_for("Make the quarterly planning meeting shorter", shop)
    assert brief.capabilities == [] and proposal.is_empty()
    assert "no pattern for this requirement" in brief.questions[0]
    # "A new service" says what kind, not what for: it names nothing to design.
    brief, proposal = proposal_for("Add a new service that tracks shipments for customers", shop)
    assert brief.capabilities == [] and proposal.is_empty()
    assert "no pattern for this requirement" in brief.questions[0]


# -- a service outside the catalogue ---------------------------------------------------------

LOYALTY = "Add a loyalty points service that awards points for completed orders and lets customers redeem them at checkout"


def test_a_service_the_requirement_names_outside_the_catalogue_is_designed_on_the_cluster(shop):
    brief, p = proposal_for(LOYALTY, shop)
    assert [c.key for c in brief.capabilities] == ["named-service"]
    assert [(n.name, n.exists) for n in brief.new_services] == [("loyalty-points", False)]
    assert not any("no pattern for this requirement" in q for q in brief.questions)
    assert any(q.startswith("Which state changes of orders does loyalty-points need") for q in brief.questions)
    services = {s.name: s for s in p.services}
    assert services["loyalty-points"].change == "add" and "awards points for completed orders" in services["loyalty-points"].responsibility
    assert services["loyalty-points-db"].kind == "database"
    edges = {(e.source, e.target): e for e in p.edges}
    assert edges[("gateway", "loyalty-points")].protocol == "REST"  # customers use it: through the shop's gateway
    assert ("orders", "loyalty-points") in edges  # the partner the requirement names
    # The shop's two ways for the orders edge (REST, and its RabbitMQ) are a question for the team, not a pick.
    drafts = drafts_for(brief, shop)
    by_role = [(role, d.changes_for({role})) for d in drafts for role in ("integration", "dataflow")]
    conflicts = merge(None, by_role).conflicts
    assert [(c.source, c.target, sorted(e.protocol for e, _ in c.variants)) for c in conflicts] == [
        ("orders", "loyalty-points", ["AMQP", "REST"])
    ]
    assert {t.key for t in drafts[0].tasks} >= {"contracts:loyalty-points", "container:loyalty-points", "review:loyalty-points"}
    # The shop's postgres is already shared (a rule found it): whether the new service gets its own is asked.
    store = next(q for q in drafts[0].questions if q.key == "loyalty-points.store")
    assert store.options[0].startswith("A separate") and store.grounds["dataflow"].option == 0


def test_a_named_service_follows_its_input_and_its_cluster(shop, boutique):
    _b, other = proposal_for("Add a gift registry service for customers' carts", shop)
    assert {s.name for s in other.services} == {"gift-registry", "gift-registry-db"}
    assert {(e.source, e.target) for e in other.edges} >= {("cart", "gift-registry"), ("gateway", "gift-registry")}
    # An inventory that already runs the service: the design changes it instead of adding a second one.
    brief, existing = proposal_for("Add a recommendations service that suggests products to shoppers", boutique)
    assert [(n.name, n.exists) for n in brief.new_services] == [("recommendationservice", True)]
    assert {s.name: s.change for s in existing.services} == {"recommendationservice": "change"}


def test_a_catalogue_pattern_keeps_its_own_service_and_the_fallback_adds_only_what_it_does_not_cover(shop):
    brief, _p = proposal_for("Add a subscriptions service that creates recurring orders", shop)
    assert [c.key for c in brief.capabilities] == ["subscriptions"]
    brief, p = proposal_for("Add a loyalty points service that sends customers an email when they earn points", shop)
    assert [c.key for c in brief.capabilities] == ["notifications", "named-service"]
    assert {"loyalty-points", "notifications"} <= {s.name for s in p.services}


# -- proposals on three inventories --------------------------------------------------------


def test_demo_payment_proposal(shop):
    _brief, p = proposal_for(PAY, shop, project_constraints=DEMO["constraints"])
    services = {s.name: s for s in p.services}
    assert services["payments"].change == "change" and "payments-db" in services["payments"].store
    assert services["payments-db"].kind == "database" and services["subscriptions"].change == "add"
    edges = {(e.source, e.target): e for e in p.edges}
    assert edges[("orders", "payments")].protocol == "REST" and edges[("orders", "payments")].mode == "sync"
    assert ("cart", "payments") in edges  # the checkout's part: cart plays checkout in this shop
    assert edges[("stripe", "payments")].protocol == "webhook"
    assert edges[("payments", "rabbitmq")].protocol == "AMQP" and edges[("payments", "rabbitmq")].mode == "async"
    events = {e.name: e for e in p.events}
    assert set(events["payment.completed"].consumers) == {"orders", "notifications"}
    assert "order_id" in events["payment.completed"].fields
    assert any("PCI DSS scope" in r for r in p.risks)


def test_boutique_notification_and_audit_proposal(boutique):
    req = "Send an email notification to customers when their order ships, and keep an audit log of notifications for 2 years (GDPR)"
    brief, p = proposal_for(req, boutique)
    assert [c.key for c in brief.capabilities] == ["notifications", "audit"]
    services = {s.name: s for s in p.services}
    assert services["emailservice"].change == "change"  # the existing email service, not a new one
    assert "2 years" in services["audit-log"].responsibility
    edges = {(e.source, e.target): e for e in p.edges}
    # No broker in this cluster: the shipping step calls the email service over the cluster's gRPC.
    assert edges[("shippingservice", "emailservice")].protocol == "gRPC"
    assert not any(e.mode == "async" for e in p.edges)
    assert any("GDPR" in r for r in p.risks)
    assert any(q.startswith("What latency") for q in brief.questions)


def test_eshop_search_proposal(eshop):
    req = "Add full-text search over the catalog with autocomplete, p95 latency under 150 ms at 50 requests per second"
    brief, p = proposal_for(req, eshop)
    assert [c.key for c in brief.capabilities] == ["search"]
    assert {"catalog-api"} <= {t.name for t in brief.touched_services}
    assert {(c.kind, c.value) for c in brief.constraints} == {("latency", "150 ms"), ("throughput", "50 requests/s")}
    assert {s.name for s in p.services} == {"search"}
    assert {(e.source, e.target) for e in p.edges} == {("mobileshoppingapigw", "search"), ("webshoppingapigw", "search")}
    event = next(e for e in p.events if e.name == "catalog.item.updated")
    assert (event.producer, event.consumers) == ("catalog-api", ["search"])


def test_different_requirements_differ_and_the_same_input_gives_the_same_output(shop):
    a1 = proposal_lines(proposal_for(PAY, shop)[1])
    a2 = proposal_lines(proposal_for(PAY, shop)[1])
    b = proposal_lines(proposal_for("Add full-text search over the catalog", shop)[1])
    assert a1 == a2
    assert a1 != b and "add service search [service], owns search-index (OpenSearch): " in " ".join(b)


# -- merge, conflicts, diff, routing --------------------------------------------------------


def test_two_protocols_for_one_edge_are_a_conflict_not_a_pick():
    grpc = ProposalChanges(edges=[EdgeChange(source="orders", target="inventory", protocol="gRPC")])
    amqp = ProposalChanges(edges=[EdgeChange(source="orders", target="inventory", protocol="AMQP", mode="async")])
    result = merge(None, [("Integration Architect", grpc), ("Data Flow Analyst", amqp)])
    assert len(result.conflicts) == 1
    variants = {e.protocol: names for e, names in result.conflicts[0].variants}
    assert variants == {"gRPC": ["Integration Architect"], "AMQP": ["Data Flow Analyst"]}
    decided = merge(None, [("IA", grpc), ("DFA", amqp)], decided_edges={("orders", "inventory"): amqp.edges[0]})
    assert decided.conflicts == [] and decided.content.edges[0].protocol == "AMQP"


def test_feedback_about_holds_goes_to_the_data_flow_roles(shop):
    brief = brief_build(requirement=PAY, cluster=shop)
    drafts = feedback_drafts(brief, shop, "Payment works but no inventory hold during processing")
    assert [d.key for d in drafts] == ["reservations"]  # payments is designed already
    team = [{"specialist": s, "focus": f} for s, f in [
        ("pattern-archaeologist", ["pattern"]), ("integration-architect", ["integration"]),
        ("data-flow-analyst", ["dataflow"]), ("security-guardian", ["security"]),
        ("transaction-coordinator", ["dataflow", "integration"]),
    ]]
    assert route_by_design(drafts, team) == ["data-flow-analyst", "transaction-coordinator"]
    before = proposal_for(PAY, shop)[1]
    after = merge(before, [("DFA", drafts[0].changes_for({"dataflow"}))]).content
    diff = proposal_diff(before, after)
    assert any("inventory.reserved" in line for line in diff["added"])
    assert any("orders → inventory AMQP async" in line for line in diff["added"])
