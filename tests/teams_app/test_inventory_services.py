"""Inventory writes: every import or hand edit is a new revision; errors change nothing."""

from __future__ import annotations

import json

import pytest

from sessions_app.diagrams.mermaid import render_mermaid
from sessions_app.models import Diagram, DiagramVersion
from teams_app.errors import ApplicationError
from teams_app.inventory import services
from teams_app.inventory.selectors import findings_for_project, inventory_current, inventory_diff, revisions_diff
from teams_app.inventory.store import MASK, revision_to_inventory
from teams_app.inventory.types import DependencySpec, ParsedInventory, ServiceSpec
from teams_app.models import InventoryRevision, Service, ServiceDependency
from tests.teams_app.inventory_samples import (
    SECRET_KEY_VALUE,
    SECRET_PASSWORD,
    SMALL,
    SMALL_EDGES,
    SMALL_KINDS,
    SMALL_V2,
)

pytestmark = pytest.mark.django_db


def _edges(revision: InventoryRevision) -> dict[tuple[str, str], str]:
    return {(d.source, d.target): d.kind for d in revision_to_inventory(revision).dependencies}


def _kinds(revision: InventoryRevision) -> dict[str, str]:
    return dict(revision.services.values_list("name", "kind"))


def _counts() -> tuple[int, int, int, int]:
    return (
        InventoryRevision.objects.count(),
        Service.objects.count(),
        ServiceDependency.objects.count(),
        DiagramVersion.objects.count(),
    )


@pytest.fixture
def imported(project, make_user):
    user = make_user("arch")
    return services.inventory_import(project=project, text=SMALL, user=user, source_name="docker-compose.yml")


# --- import ------------------------------------------------------------------------------


def test_import_stores_revision_services_edges_and_a_cluster_diagram_version(project, imported):
    assert imported.number == 1
    assert imported.source_format == "compose"
    assert imported.source_name == "docker-compose.yml"
    assert _kinds(imported) == SMALL_KINDS
    assert _edges(imported) == SMALL_EDGES

    version = DiagramVersion.objects.get()
    assert version.diagram.project == project and version.diagram.kind == Diagram.Kind.CLUSTER
    assert version.number == 1
    assert version.inventory_revision == imported
    assert version.author_kind == DiagramVersion.Author.SYSTEM
    assert version.mermaid == render_mermaid(revision_to_inventory(imported))
    assert "svc_orders" in version.mermaid and "orders" in version.ascii


def test_a_second_import_is_revision_two_with_a_new_diagram_version(project, imported):
    second = services.inventory_import(project=project, text=SMALL_V2)
    assert second.number == 2
    assert set(_kinds(second)) == {"gateway", "orders", "payments", "db"}
    assert set(_kinds(imported)) == set(SMALL_KINDS)  # the earlier revision is a snapshot, untouched
    versions = list(DiagramVersion.objects.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert versions[1].inventory_revision == second
    assert "svc_payments" in versions[1].mermaid and "svc_payments" not in versions[0].mermaid


def test_reimporting_identical_content_makes_a_revision_but_no_new_diagram_version(project, imported):
    again = services.inventory_import(project=project, text=SMALL)
    assert again.number == 2
    assert _kinds(again) == SMALL_KINDS
    assert DiagramVersion.objects.count() == 1
    assert DiagramVersion.objects.get().inventory_revision == imported


def test_revision_numbers_are_per_project(project, imported):
    from teams_app.models import Project

    other = Project.objects.create(name="Other", slug="other")
    assert services.inventory_import(project=other, text=SMALL).number == 1
    assert services.inventory_import(project=project, text=SMALL).number == 2


def test_a_parse_error_stores_nothing(project, imported):
    before = _counts()
    with pytest.raises(ApplicationError, match="Invalid YAML"):
        services.inventory_import(project=project, text="services:\n  web: [unclosed\n")
    assert _counts() == before


def test_an_edge_to_an_unknown_service_rolls_the_whole_revision_back(project, imported):
    """inventory_store is the last line of defence when a caller skips the importers."""
    inventory = ParsedInventory(
        format="manual",
        services=[ServiceSpec(name="web", image="a:1")],
        dependencies=[DependencySpec(source="web", target="ghost", kind="sync_http")],
    )
    before = _counts()
    with pytest.raises(ApplicationError, match="unknown service 'ghost'"):
        services.inventory_store(project=project, inventory=inventory)
    assert _counts() == before


# --- secrets -----------------------------------------------------------------------------


def test_secrets_are_masked_in_stored_rows_yet_still_reported(project, imported):
    orders = Service.objects.get(revision=imported, name="orders")
    assert orders.environment["STRIPE_API_KEY"] == MASK
    assert orders.environment["DATABASE_URL"] == f"postgres://orders:{MASK}@db:5432/orders"
    assert orders.environment["AMQP_URL"] == "amqp://mq:5672"  # no secret, left readable
    stored = json.dumps(list(Service.objects.values("environment")))
    assert SECRET_KEY_VALUE not in stored and SECRET_PASSWORD not in stored
    version = DiagramVersion.objects.get()
    assert SECRET_KEY_VALUE not in version.mermaid + version.ascii

    findings = findings_for_project(project=project)
    sec002 = [f for f in findings if f.rule == "SEC002"]
    assert [f.services for f in sec002] == [("orders",)]
    assert "STRIPE_API_KEY" in sec002[0].why
    assert all(SECRET_KEY_VALUE not in f.why and SECRET_PASSWORD not in f.why for f in findings)


@pytest.mark.parametrize(
    "name,value,stored",
    [
        ("STRIPE_API_KEY", "sk_live_1234", MASK),
        ("DB_PASSWORD", "hunter2", MASK),
        ("GOOGLE_CREDENTIALS", '{"private_key": "x"}', MASK),
        ("DB_PASSWORD", "${DB_PASSWORD}", "${DB_PASSWORD}"),
        ("DB_PASSWORD", "$DB_PASSWORD", "$DB_PASSWORD"),
        ("DB_PASSWORD", "secret:orders-db/password", "secret:orders-db/password"),
        ("DB_PASSWORD", "${DB_PASSWORD:-changeme}", f"${{DB_PASSWORD:-{MASK}}}"),
        ("DATABASE_URL", "postgres://app:pw@db:5432/app", f"postgres://app:{MASK}@db:5432/app"),
        ("DATABASE_URL", "postgres://app:${DB_PASSWORD}@db:5432/app", "postgres://app:${DB_PASSWORD}@db:5432/app"),
        ("TOKEN_URL", "https://auth.example/token", "https://auth.example/token"),
        ("LOG_LEVEL", "info", "info"),
    ],
)
def test_mask_value_hides_literals_and_keeps_references(name, value, stored):
    from teams_app.inventory.store import mask_value

    assert mask_value(name, value) == stored


@pytest.mark.parametrize("text", [SMALL, SMALL_V2], ids=["small", "small-v2"])
def test_findings_on_the_stored_revision_equal_findings_on_the_parsed_file(project, text):
    """Masking must not invent or hide findings: a ${VAR} password is a reference, not a secret."""
    from teams_app.inventory.importers import import_text
    from teams_app.inventory.rules import analyze

    services.inventory_import(project=project, text=text)
    assert findings_for_project(project=project) == analyze(import_text(text))


def test_demo_inventory_findings_survive_storage(project):
    from pathlib import Path

    from teams_app.inventory.importers import import_text
    from teams_app.inventory.rules import analyze

    text = (Path(services.__file__).parent / "demo" / "shop-compose.yml").read_text()
    services.inventory_import(project=project, text=text)
    assert findings_for_project(project=project) == analyze(import_text(text))


def test_a_password_reference_in_a_url_is_stored_as_written_and_not_reported(project):
    revision = services.inventory_import(project=project, text=SMALL_V2)
    orders = revision.services.get(name="orders")
    assert orders.environment["DATABASE_URL"] == "postgres://orders:${DB_PASSWORD}@db:5432/orders"
    assert not [f for f in findings_for_project(project=project) if f.rule == "SEC005"]


# --- hand edits --------------------------------------------------------------------------


def test_adding_a_service_is_a_new_revision(project, imported, make_user):
    user = make_user("editor")
    revision = services.service_save(project=project, user=user, name="payments", kind="service", image="acme/pay:1")
    assert revision.number == 2
    assert revision.created_by == user
    assert revision.source_format == "manual"
    assert _kinds(revision) == {**SMALL_KINDS, "payments": "service"}
    assert _edges(revision) == SMALL_EDGES
    assert "payments" not in _kinds(imported)


def test_editing_a_service_keeps_its_edges_and_the_chosen_kind(project, imported):
    revision = services.service_save(
        project=project,
        user=None,
        original_name="orders",
        name="orders",
        kind="gateway",
        image="acme/orders:2.0",
        replicas=3,
        healthcheck=True,
        restart="always",
    )
    orders = revision.services.get(name="orders")
    assert (orders.kind, orders.image, orders.replicas, orders.healthcheck, orders.restart) == (
        "gateway",
        "acme/orders:2.0",
        3,
        True,
        "always",
    )
    # Fields the form does not show survive the edit.
    assert orders.environment["AMQP_URL"] == "amqp://mq:5672"
    assert _edges(revision) == SMALL_EDGES


def test_renaming_a_service_renames_its_edges(project, imported):
    revision = services.service_save(
        project=project, user=None, original_name="orders", name="checkout", kind="service", image="acme/orders:1.0"
    )
    assert "orders" not in _kinds(revision) and _kinds(revision)["checkout"] == "service"
    assert set(_edges(revision)) == {("gateway", "checkout"), ("checkout", "db"), ("checkout", "mq")}


def test_removing_a_service_removes_its_edges(project, imported):
    revision = services.service_remove(project=project, user=None, name="mq")
    assert "mq" not in _kinds(revision)
    assert _edges(revision) == {k: v for k, v in SMALL_EDGES.items() if "mq" not in k}
    assert revision.note == "Removed service mq"


def test_adding_and_removing_a_dependency(project, imported):
    added = services.dependency_add(project=project, user=None, source="gateway", target="mq", kind="async_event")
    assert added.number == 2
    assert _edges(added) == {**SMALL_EDGES, ("gateway", "mq"): "async_event"}
    removed = services.dependency_remove(project=project, user=None, source="orders", target="db")
    assert removed.number == 3
    assert ("orders", "db") not in _edges(removed) and ("gateway", "mq") in _edges(removed)


def test_a_hand_edit_that_changes_the_graph_makes_a_new_diagram_version(project, imported):
    services.dependency_add(project=project, user=None, source="gateway", target="mq", kind="async_event")
    latest = DiagramVersion.objects.order_by("-number").first()
    assert latest.number == 2
    assert "svc_gateway -.->|event| svc_mq" in latest.mermaid


def test_the_first_service_can_be_added_by_hand(project):
    revision = services.service_save(project=project, user=None, name="web", kind="service", image="a:1")
    assert revision.number == 1 and _kinds(revision) == {"web": "service"}


ERRORS = [
    (
        "remove unknown service",
        lambda p: services.service_remove(project=p, user=None, name="ghost"),
        "no service named ghost",
    ),
    (
        "edit unknown service",
        lambda p: services.service_save(project=p, user=None, original_name="ghost", name="ghost"),
        "no service named ghost",
    ),
    (
        "edge from unknown service",
        lambda p: services.dependency_add(project=p, user=None, source="ghost", target="db", kind="database"),
        "no service named ghost",
    ),
    (
        "edge to unknown service",
        lambda p: services.dependency_add(project=p, user=None, source="orders", target="ghost", kind="database"),
        "no service named ghost",
    ),
    (
        "remove missing edge",
        lambda p: services.dependency_remove(project=p, user=None, source="db", target="orders"),
        "db does not depend on orders",
    ),
    (
        "duplicate name",
        lambda p: services.service_save(project=p, user=None, name="db", kind="database"),
        "A service named db already exists",
    ),
    (
        "rename onto another",
        lambda p: services.service_save(project=p, user=None, original_name="orders", name="db"),
        "A service named db already exists",
    ),
    (
        "self edge",
        lambda p: services.dependency_add(project=p, user=None, source="orders", target="orders", kind="sync_http"),
        "cannot depend on itself",
    ),
    (
        "duplicate edge",
        lambda p: services.dependency_add(project=p, user=None, source="orders", target="db", kind="database"),
        "orders already depends on db",
    ),
    (
        "bad service kind",
        lambda p: services.service_save(project=p, user=None, name="fn", kind="lambda"),
        "known kind of service",
    ),
    (
        "bad edge kind",
        lambda p: services.dependency_add(project=p, user=None, source="gateway", target="db", kind="telepathy"),
        "known kind of dependency",
    ),
    ("bad name", lambda p: services.service_save(project=p, user=None, name="Not A Name!"), "Service name"),
    ("negative replicas", lambda p: services.service_save(project=p, user=None, name="web", replicas=-1), "Replicas"),
    (
        "nothing changed",
        lambda p: services.service_save(
            project=p, user=None, original_name="db", name="db", kind="database", image="postgres:16"
        ),
        "Nothing changed",
    ),
]


@pytest.mark.parametrize("call,message", [(c, m) for _, c, m in ERRORS], ids=[label for label, _, _ in ERRORS])
def test_bad_hand_edits_raise_and_change_nothing(project, imported, call, message):
    before = _counts()
    with pytest.raises(ApplicationError, match=message):
        call(project)
    assert _counts() == before
    revision, _ = inventory_current(project=project)
    assert revision == imported


def test_edits_without_an_inventory_say_so(project):
    with pytest.raises(ApplicationError, match="Import an inventory first"):
        services.service_remove(project=project, user=None, name="web")
    with pytest.raises(ApplicationError, match="Import an inventory first"):
        services.dependency_add(project=project, user=None, source="a", target="b", kind="sync_http")
    assert InventoryRevision.objects.count() == 0


# --- diff --------------------------------------------------------------------------------


def test_revisions_diff_reports_added_removed_and_changed(project, imported):
    services.inventory_import(project=project, text=SMALL_V2)
    diff = revisions_diff(project=project, a=1, b=2)
    assert diff.services_added == ["payments"]
    assert diff.services_removed == ["mq"]
    assert set(diff.services_changed) == {"orders"}
    assert {"image", "environment"} <= set(diff.services_changed["orders"])
    assert diff.edges_added == [("orders", "payments", "sync_http")]
    assert diff.edges_removed == [("orders", "mq", "async_event")]
    assert diff.edges_changed == []
    assert not diff.empty


def test_diff_reports_an_edge_whose_kind_changed(project, imported):
    services.dependency_remove(project=project, user=None, source="orders", target="mq")
    services.dependency_add(project=project, user=None, source="orders", target="mq", kind="sync_http")
    diff = revisions_diff(project=project, a=1, b=3)
    assert diff.edges_changed == [("orders", "mq", "async_event", "sync_http")]
    assert diff.edges_added == diff.edges_removed == []


def test_identical_revisions_have_an_empty_diff(project, imported):
    services.inventory_import(project=project, text=SMALL)
    diff = revisions_diff(project=project, a=1, b=2)
    assert diff.empty


def test_inventory_diff_ignores_declaration_order():
    a = ParsedInventory(format="manual", services=[ServiceSpec(name="x", networks=["a", "b"]), ServiceSpec(name="y")])
    b = ParsedInventory(format="manual", services=[ServiceSpec(name="y"), ServiceSpec(name="x", networks=["b", "a"])])
    assert inventory_diff(a, b).empty
