"""The assist tools answer from what they were given: a rule-based brief built from `context` and
the other parameters, grounded in the project's inventory, ahead of the specialist's answer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from mcp import Client

from sessions_app.hub.assist import AssistRequest, assist_brief
from sessions_app.hub.mcp_server import build_server
from sessions_app.hub.models import HubTask
from teams_app.inventory.services import inventory_store
from teams_app.inventory.types import DependencySpec, ParsedInventory, ServiceSpec

pytestmark = pytest.mark.django_db(transaction=True)

POOL = {
    "context": "Orders API: connection pool exhausted (QueuePool limit reached, timeout 30s) after scaling to 5 replicas.",
    "error": "sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 0 reached",
    "tags": "production, orders",
}


def shop_inventory() -> ParsedInventory:
    return ParsedInventory(
        format="manual",
        services=[
            ServiceSpec(name="orders", image="ghcr.io/acme/orders:3.1", environment={"DB_POOL_SIZE": "20"}),
            ServiceSpec(name="catalog", image="ghcr.io/acme/catalog:1.9", environment={"DB_POOL_SIZE": "10"}),
            ServiceSpec(name="ordersdb", kind="database", image="bitnami/postgresql:16",
                        environment={"POSTGRESQL_MAX_CONNECTIONS": "100"}),
            ServiceSpec(name="web", kind="gateway", image="nginx:1.27"),
            ServiceSpec(name="events", kind="broker", image="rabbitmq:3.13"),
        ],
        dependencies=[
            DependencySpec(source="orders", target="ordersdb", kind="database"),
            DependencySpec(source="catalog", target="ordersdb", kind="database"),
            DependencySpec(source="web", target="orders", kind="sync_http"),
            DependencySpec(source="orders", target="catalog", kind="sync_http"),
        ],
    )


def test_pool_exhaustion_is_replicas_times_pool_against_max_connections():
    brief = assist_brief(AssistRequest(tool="debug_assist", context=POOL["context"], error=POOL["error"]),
                         shop_inventory())
    assert brief.topic == "connection-pool exhaustion"
    assert brief.services == ["orders"]
    assert brief.arithmetic == [
        "orders: 5 replicas (from the request) × 20 pool (DB_POOL_SIZE) = 100 connections at peak (+ catalog 10) "
        "→ 110 of ordersdb's 100 max_connections (POSTGRESQL_MAX_CONNECTIONS): over the limit by 10."
    ]
    assert any("worker processes per replica: assumed 1" in u for u in brief.unknowns)
    assert any("at or below 18 per process for 5 processes" in s for s in brief.steps)


def test_what_the_inventory_does_not_say_is_named_as_unknown():
    inventory = shop_inventory()
    inventory.services[2].environment = {}
    inventory.services[2].image = "internal/db:1"
    brief = assist_brief(AssistRequest(tool="debug_assist", context=POOL["context"]), inventory)
    assert brief.arithmetic == ["orders: 5 replicas (from the request) × 20 pool (DB_POOL_SIZE) = 100 connections at peak "
                                "against ordersdb, whose max_connections is unknown."]
    assert "ordersdb's max_connections: not in its environment or labels." in brief.unknowns


def test_a_postgres_without_a_setting_uses_the_servers_default_and_says_so():
    inventory = shop_inventory()
    inventory.services[2].environment = {}
    inventory.services[2].image = "postgres:16"
    brief = assist_brief(AssistRequest(tool="database_assist", context="orders: too many connections, pool of 20"),
                         inventory)
    assert brief.topic == "connections"
    assert "100 max_connections (postgres's default, not set in the inventory)" in brief.arithmetic[0]


def ask(arguments: dict[str, dict]) -> dict[str, str]:
    async def main():
        out = {}
        async with Client(build_server(project_slug="shop")) as client:
            for tool, args in arguments.items():
                result = await client.call_tool(tool.split("#")[0], args)
                assert result.structured_content["status"] == "done", result.content[0].text
                out[tool] = result.content[0].text
        return out

    return async_to_sync(main)()


def test_four_contexts_across_the_four_tools_give_four_answers_in_their_own_terms(hub_project, hub_eager):
    inventory_store(project=hub_project, inventory=shop_inventory(), source_name="test")
    answers = ask({
        "debug_assist": POOL,
        "debug_assist#oom": {"context": "catalog pods OOMKilled during the nightly reindex", "logs": "Killed process 42"},
        "architect_assist": {"context": "Should orders publish an event to rabbitmq instead of calling catalog "
                                        "synchronously?", "tags": ["events"]},
        "database_assist": {"context": "Multi-tenant schema with row-level security for invoices", "tags": "tenancy"},
        "ui_assist": {"context": "Admin dashboard with revenue charts for tablets", "component": "RevenuePanel",
                      "files": ["web/src/RevenuePanel.tsx"]},
    })
    expected = {
        "debug_assist": ["connection-pool exhaustion", "110 of ordersdb's 100 max_connections", "`queuepool`"],
        "debug_assist#oom": ["memory exhaustion", "`oomkilled`", "`reindex`", "First error line: Killed process 42"],
        "architect_assist": ["synchronous calls against events", "`rabbitmq`", "ordersdb is shared by catalog, orders",
                             "orders waits on 1 synchronous call(s): catalog"],
        "database_assist": ["multi-tenancy", "`tenancy`", "row-level security", "ordersdb: postgres (bitnami/postgresql:16)"],
        "ui_assist": ["a dashboard", "`RevenuePanel`", "Design RevenuePanel's loading", "web/src/RevenuePanel.tsx"],
    }
    for tool, needles in expected.items():
        for needle in needles:
            assert needle in answers[tool], (tool, needle)
    briefs = [a.split("## Assist brief", 1)[1].split("\n### Next checks")[0] for a in answers.values()]
    assert len(set(briefs)) == len(briefs)  # five different briefs
    assert "110 of ordersdb" not in answers["debug_assist#oom"] and "RevenuePanel" not in answers["database_assist"]
    # The specialist (any provider) gets the same brief as its requirement.
    task = HubTask.objects.get(tool="database_assist")
    assert task.brief.startswith("## Assist brief (rule-based assist analysis): multi-tenancy")
    assert task.brief in task.session.requirement


def test_without_an_inventory_the_brief_says_what_is_missing(hub_project, hub_eager):
    answers = ask({"debug_assist": POOL})
    assert "The cluster inventory is empty" in answers["debug_assist"]
    assert "Which service owns the pool" in answers["debug_assist"]
