"""What a current MCP client sees of the hub, through the official SDK's client connected
in-process (2026-07-28, per-request envelope): output schemas and annotations, the PRD question as
an ``input_required`` form, progress from the session's events, resource links and resources/read.
The stdio and Streamable HTTP transports repeat the essentials in test_hub_mcp_transports.py."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from mcp import Client
from mcp_types import ElicitResult, InputRequiredResult

from sessions_app.hub.mcp_server import build_server
from sessions_app.hub.models import HubTask
from sessions_app.hub.openapi import openapi_document
from sessions_app.hub.schemas import PausedOut, RouteOut
from teams_app.models import PRD, Project
from tests.sessions_app.hub.conftest import TASK

pytestmark = pytest.mark.django_db(transaction=True)


def run_client(script, *, elicit=None, slug: str = "shop", planning_dir: str | None = None):
    async def main():
        kwargs = {"elicitation_callback": elicit} if elicit is not None else {}
        async with Client(build_server(project_slug=slug, planning_dir=planning_dir), **kwargs) as client:
            assert client.protocol_version == "2026-07-28"
            return await script(client)

    return async_to_sync(main)()


def accept(answer: dict):
    asked = []

    async def callback(context, params):
        asked.append(params)
        return ElicitResult(action="accept", content=answer)

    return callback, asked


def test_tools_publish_output_schemas_from_the_api_models_and_annotations(hub_project):
    async def script(client):
        return {t.name: t for t in (await client.list_tools()).tools}

    tools = run_client(script)
    assert all(t.output_schema and t.output_schema["type"] == "object" for t in tools.values())
    run = tools["orchestrator.run_task"].output_schema
    assert run["anyOf"] == [{"$ref": "#/$defs/TaskStatusOut"}, {"$ref": "#/$defs/PausedOut"}]
    components = openapi_document()["components"]["schemas"]
    for name in ("TaskStatusOut", "PausedOut", "RouteChoice"):  # the very schemas of the HTTP API's document
        as_mcp = json.dumps(run["$defs"][name]).replace("#/$defs/", "#/components/schemas/")
        assert json.loads(as_mcp) == components[name], name
    assert tools["orchestrator.route_only"].output_schema["$defs"]["RouteOut"]["required"] == RouteOut.model_json_schema()[
        "required"]
    assert "PausedOut" in tools["ui_assist"].output_schema["$defs"]
    assert tools["orchestrator.task_status"].output_schema["title"] == "TaskStatus"
    assert tools["orchestrator.health"].output_schema["title"] == "Health"
    for name in ("orchestrator.health", "orchestrator.route_only", "orchestrator.task_status"):
        assert tools[name].annotations.read_only_hint is True, name
    run_hints = tools["orchestrator.run_task"].annotations
    assert run_hints.idempotent_hint is True and run_hints.read_only_hint is False and run_hints.destructive_hint is False
    for name in ("debug_assist", "architect_assist", "database_assist", "ui_assist"):
        assert tools[name].annotations.open_world_hint is True, name


def test_route_only_without_prd_asks_with_a_form_and_the_retry_completes(hub_project):
    PRD.objects.create(project=hub_project, reference="PRD-8", title="Gift cards", status=PRD.Status.ACTIVE)

    async def script(client):
        first = await client.session.call_tool("orchestrator.route_only", {**TASK, "prd": None},
                                               allow_input_required=True)
        (key, request), = first.input_requests.items()
        retried = await client.session.call_tool(
            "orchestrator.route_only", {**TASK, "prd": None}, allow_input_required=True,
            input_responses={key: ElicitResult(action="accept", content={"prd": "PRD-7"})},
            request_state=first.request_state,
        )
        return first, request, retried

    first, request, retried = run_client(script, elicit=accept({})[0])
    assert isinstance(first, InputRequiredResult)
    assert request.method == "elicitation/create" and request.params.mode == "form"
    assert request.params.message.startswith("What PRD id/link should we attach?")
    assert "PRD-8: Gift cards (added in Maestro)" in request.params.message
    schema = request.params.requested_schema
    assert schema["properties"]["prd"]["enum"] == ["PRD-8", "PRD-7"]  # latest first
    assert schema["properties"]["other"]["type"] == "string"
    assert not retried.is_error and retried.structured_content["prd"] == "PRD-7"
    assert retried.structured_content["specialist"] == "database-engineer.md"
    assert json.loads(retried.content[0].text) == retried.structured_content  # the JSON text copy


def test_run_task_asks_once_then_runs_with_the_answer_and_caches_it_for_the_task(hub_project, hub_eager):
    callback, asked = accept({"other": "https://docs.example/prd/subscriptions"})

    async def script(client):
        first = await client.call_tool("orchestrator.run_task", {**TASK, "prd": ""})
        again = await client.call_tool("orchestrator.run_task", {**TASK, "prd": ""})
        return first, again

    first, again = run_client(script, elicit=callback)
    assert len(asked) == 1  # asked once; the second call used the answer cached for T-1
    assert first.structured_content["status"] == "done", first.content[0].text
    assert first.structured_content["prd"] == "https://docs.example/prd/subscriptions"
    assert again.structured_content["task_id"] == "T-1" and HubTask.objects.count() == 1
    assert HubTask.objects.get().prd.reference == "https://docs.example/prd/subscriptions"


@pytest.mark.parametrize("action", ["decline", "cancel"])
def test_declining_the_prd_question_gives_the_paused_result(hub_project, action):
    async def callback(context, params):
        return ElicitResult(action=action)

    async def script(client):
        return await client.call_tool("orchestrator.run_task", {**TASK, "prd": None})

    result = run_client(script, elicit=callback)
    assert not result.is_error
    assert result.structured_content == PausedOut(latest_prd="PRD-7").model_dump()  # as before, with the latest PRD
    assert HubTask.objects.count() == 0


def test_a_bad_answer_is_a_field_error_and_records_nothing(hub_project):
    async def script(client):
        return await client.call_tool("orchestrator.run_task", {**TASK, "prd": None})

    result = run_client(script, elicit=accept({"other": "not a prd"})[0])
    assert result.is_error and set(result.structured_content["fields"]) == {"prd"}
    assert HubTask.objects.count() == 0


def test_run_task_reports_progress_and_links_its_report_and_diagram(hub_project, hub_eager):
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async def script(client):
        result = await client.call_tool("orchestrator.run_task", TASK, progress_callback=on_progress)
        links = [b for b in result.content if b.type == "resource_link"]
        contents = {link.name: await client.read_resource(link.uri) for link in links if link.uri.startswith("maestro:")}
        return result, links, contents

    result, links, contents = run_client(script)
    assert len(progress) >= 2, progress
    assert [v for v, _ in progress] == sorted(v for v, _ in progress)
    messages = [m for _, m in progress]
    assert "round 1 started" in messages and "round 1: 1 of 1 specialists finished" in messages
    assert messages[-1] == "session completed"
    by_name = {link.name: link for link in links}
    assert by_name["session"].uri == result.structured_content["session_url"]
    assert by_name["report"].uri == "maestro://tasks/T-1/report" and by_name["report"].mime_type == "text/markdown"
    assert contents["report"].contents[0].text == HubTask.objects.get().session.report
    assert by_name["diagram"].mime_type == "text/plain"
    assert contents["diagram"].contents[0].text.strip() == result.structured_content["cluster_view"].strip()
    assert json.loads(result.content[1].text) == result.structured_content


def test_task_status_links_the_adrs_the_session_recorded(hub_project, hub_eager):
    from sessions_app.decisions.models import Decision

    async def run(client):
        return await client.call_tool("orchestrator.run_task", TASK)

    run_client(run)
    session = HubTask.objects.get().session
    Decision.objects.create(project=hub_project, number=1, slug="pgbouncer", title="Pool through PgBouncer",
                            session=session, context="The pool ran out.")

    async def status(client):
        result = await client.call_tool("orchestrator.task_status", {"task_id": "T-1"})
        adr = next(b for b in result.content if b.type == "resource_link" and b.name == "ADR-0001")
        return adr, await client.read_resource(adr.uri)

    adr, read = run_client(status)
    assert adr.uri == "maestro://tasks/T-1/adrs/1" and adr.title == "Pool through PgBouncer"
    assert "Pool through PgBouncer" in read.contents[0].text and read.contents[0].mime_type == "text/markdown"


def test_resources_are_the_callers_project_only(hub_project, hub_eager):
    other = Project.objects.create(name="Other", slug="other")
    PRD.objects.create(project=other, reference="PRD-7", title="x", status=PRD.Status.ACTIVE)

    async def run(client):
        return await client.call_tool("orchestrator.run_task", TASK)

    async def read(client):
        try:
            await client.read_resource("maestro://tasks/T-1/report")
        except Exception as exc:  # the SDK raises the JSON-RPC error
            return str(exc)
        return "read"

    run_client(run)
    assert "read" == run_client(read)
    assert "No task with this task_id" in run_client(read, slug="other")


def test_assist_tools_ask_for_a_prd_when_the_project_has_none(hub_project, hub_eager):
    PRD.objects.all().delete()
    callback, asked = accept({"other": "PRD-99"})

    async def script(client):
        return await client.call_tool("ui_assist", {"context": "Admin dashboard", "component": "Dashboard"})

    result = run_client(script, elicit=callback)
    assert len(asked) == 1 and "no active PRD yet" in asked[0].message
    assert result.structured_content["status"] == "done" and result.structured_content["prd"] == "PRD-99"
