"""The MCP tools through the SDK's client, connected in-process to the server (fast); the stdio and
Streamable HTTP transports have their own tests."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from mcp import Client

from sessions_app.hub.mcp_server import build_server
from sessions_app.hub.models import HubTask
from teams_app.models import PRD
from tests.sessions_app.hub.conftest import TASK

pytestmark = pytest.mark.django_db(transaction=True)  # tools run tasks after commit, as in production

TOOLS = {
    "orchestrator.health": (set(), set()),
    "orchestrator.route_only": ({"task_id", "area", "summary", "hints", "prd"}, {"task_id", "area", "summary"}),
    "orchestrator.run_task": ({"task_id", "area", "summary", "hints", "prd"}, {"task_id", "area", "summary"}),
    "orchestrator.task_status": ({"task_id"}, {"task_id"}),
    "debug_assist": ({"context", "error", "symptom", "logs", "title", "files", "tags", "project"}, {"context"}),
    "architect_assist": ({"context", "title", "files", "tags", "project"}, {"context"}),
    "database_assist": ({"context", "title", "files", "tags", "project"}, {"context"}),
    "ui_assist": ({"context", "component", "title", "files", "tags", "project"}, {"context"}),
}


def run_client(project_slug: str, script):
    """Drive the server with the SDK's client. ORM calls inside the tools run on this thread
    (async_to_sync → thread-sensitive sync_to_async), so they see the test's transaction."""

    async def main():
        async with Client(build_server(project_slug=project_slug)) as client:
            return await script(client)

    return async_to_sync(main)()


def text(result) -> str:
    return result.content[0].text  # the answer as people read it; a JSON copy of the structured result follows


def test_the_tools_and_their_exact_parameters(hub_project):
    async def script(client):
        return (await client.list_tools()).tools

    tools = {t.name: t for t in run_client("shop", script)}
    assert set(tools) == set(TOOLS)
    for name, (params, required) in TOOLS.items():
        schema = tools[name].input_schema
        assert schema["type"] == "object"
        assert set(schema.get("properties", {})) == params, name
        assert set(schema.get("required", [])) == required, name
        assert schema.get("additionalProperties") is False, name
    run = tools["orchestrator.run_task"].input_schema["properties"]
    assert run["area"]["enum"] == ["dev", "cluster", "migration", "content", "db", "ui", "edge", "infra"]
    assert run["task_id"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
    assert run["hints"]["maxItems"] == 20 and run["hints"]["items"]["maxLength"] == 50
    assert run["summary"]["maxLength"] == 500


def test_health_route_only_and_validation(hub_project, hub_eager):
    async def script(client):
        health = await client.call_tool("orchestrator.health", {})
        routed = await client.call_tool("orchestrator.route_only", TASK)
        bad = await client.call_tool("orchestrator.route_only", {**TASK, "area": "backend", "hints": '["a", ""]'})
        return health, routed, bad

    health, routed, bad = run_client("shop", script)
    assert health.structured_content["ok"] is True and not health.is_error
    assert routed.structured_content["specialist"] == "database-engineer.md"
    assert len(routed.structured_content["runners_up"]) == 3
    assert '"database-engineer.md"' in text(routed)
    assert bad.is_error
    assert set(bad.structured_content["fields"]) == {"area", "hints.1"}  # the JSON-string list was decoded
    assert HubTask.objects.count() == 0


def test_run_task_answers_with_the_report_continuation_and_cluster_view(hub_project, hub_eager):
    async def script(client):
        ran = await client.call_tool("orchestrator.run_task", TASK)
        again = await client.call_tool("orchestrator.run_task", TASK)
        status = await client.call_tool("orchestrator.task_status", {"task_id": "T-1"})
        conflict = await client.call_tool("orchestrator.run_task", {**TASK, "summary": "other"})
        missing = await client.call_tool("orchestrator.task_status", {"task_id": "nope"})
        return ran, again, status, conflict, missing

    ran, again, status, conflict, missing = run_client("shop", script)
    body = text(ran)
    assert not ran.is_error and ran.structured_content["status"] == "done"
    assert body.startswith("## database-engineer.md · task T-1 · done")
    assert "PRD: PRD-7" in body and "# Final report:" in body
    assert "To continue this cluster session" in body and "Currently Active Team: Database Engineer (hub task)" in body
    assert ran.structured_content["cluster_view"] in body
    assert again.structured_content["session_url"] == ran.structured_content["session_url"]
    assert HubTask.objects.count() == 1
    assert status.structured_content["status"] == "done" and "# Final report:" in text(status)
    assert conflict.is_error and "already used by a different task" in text(conflict)
    assert missing.is_error and "No task with this task_id" in text(missing)


def test_run_task_without_prd_is_a_paused_result_not_an_error(hub_project):
    async def script(client):
        return await client.call_tool("orchestrator.run_task", {k: v for k, v in TASK.items() if k != "prd"})

    result = run_client("shop", script)
    assert result.is_error is False
    assert result.structured_content == {
        "status": "paused", "reason": "prd_required", "question": "What PRD id/link should we attach?",
        "latest_prd": "PRD-7",
    }
    assert "What PRD id/link should we attach?" in text(result) and "PRD-7" in text(result)
    assert HubTask.objects.count() == 0


@pytest.mark.parametrize("tool,arguments,specialist,area", [
    ("debug_assist", {"context": "API returns 500 after scaling to 5 replicas", "error": "connection pool exhausted",
                      "symptom": "API 500 errors after scaling", "logs": "Traceback ...", "tags": "production, database"},
     "debug-specialist.md", "dev"),
    ("architect_assist", {"context": "Session storage for a multi-tenant SaaS", "tags": ["architecture", "scaling"]},
     "system-architect.md", "cluster"),
    ("database_assist", {"context": "Multi-tenant schema with row-level security", "title": "Tenancy", "files": "schema.sql"},
     "database-engineer.md", "db"),
    ("ui_assist", {"context": "Admin dashboard with service health", "component": "Admin Dashboard", "project": "ops"},
     "ui-designer.md", "ui"),
])
def test_each_assist_tool_runs_its_specialist_and_answers_with_the_continuation(hub_project, hub_eager, tool, arguments, specialist, area):
    async def script(client):
        return await client.call_tool(tool, arguments)

    result = run_client("shop", script)
    body = text(result)
    assert not result.is_error, body
    assert result.structured_content["status"] == "done"
    assert body.startswith(f"## {specialist} · task ")
    assert "To continue this cluster session" in body and "Currently Active Team:" in body
    assert "# Final report" not in body  # assist answers: the answer, the continuation block, the cluster view
    hub_task = HubTask.objects.get()
    assert hub_task.tool == tool and hub_task.area == area and hub_task.specialist_file == specialist
    assert hub_task.prd_reference == "PRD-7"
    assert arguments["context"] in hub_task.session.requirement


def test_assist_tools_pause_without_an_active_prd(hub_project):
    PRD.objects.update(status=PRD.Status.DRAFT)

    async def script(client):
        return await client.call_tool("database_assist", {"context": "Design the schema"})

    result = run_client("shop", script)
    assert result.is_error is False
    assert result.structured_content["status"] == "paused" and result.structured_content["latest_prd"] is None
    assert "What PRD id/link should we attach?" in text(result)


def test_assist_arguments_are_validated(hub_project):
    async def script(client):
        empty = await client.call_tool("debug_assist", {"context": "   "})
        missing = await client.call_tool("ui_assist", {"component": "x"})
        unknown = await client.call_tool("architect_assist", {"context": "x", "error": "not a parameter here"})
        return empty, missing, unknown

    empty, missing, unknown = run_client("shop", script)
    assert empty.is_error and "context" in empty.structured_content["fields"]
    assert missing.is_error and "context" in missing.structured_content["fields"]
    assert unknown.is_error and unknown.structured_content["fields"] == {"error": "Unknown field."}


def test_an_unknown_project_is_a_tool_error(hub_project):
    async def script(client):
        return await client.call_tool("orchestrator.route_only", TASK)

    result = run_client("nope", script)
    assert result.is_error and "not bound to a project" in text(result)
