"""The MCP server over its two real transports, driven by the official SDK's client:

- stdio: ``python manage.py mcp_server --project shop`` as a subprocess, with a real Celery worker
  (its own queue) running the specialists, so ``orchestrator.run_task`` and ``database_assist``
  come back with the specialist's answer;
- Streamable HTTP: a real daphne serving ``config.asgi:application`` with ``/mcp/`` mounted beside
  Django, authenticated by a project API token.
"""

from __future__ import annotations

import json
import sys

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitResult, InputRequiredResult

from sessions_app.hub.models import HubTask
from tests.sessions_app.hub.conftest import TASK
from tests.support.processes import ROOT, Daphne, Worker, subprocess_database_url, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)  # the subprocesses read what the test commits

ASSIST_PARAMS = {"context", "title", "files", "tags", "project"}


def text(result) -> str:
    return result.content[0].text  # the answer as people read it; a JSON copy of the structured result follows


@pytest.mark.worker
def test_stdio_server_runs_tasks_on_a_real_worker(hub_project):
    worker = Worker("hub-stdio", {"DATABASE_URL": subprocess_database_url()}, concurrency=4).wait_ready()
    params = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_server", "--project", "shop"], cwd=str(ROOT),
        env=subprocess_env(HUB_MCP_WAIT_SECONDS="90"),
    )

    async def script():
        with anyio.fail_after(180):
            async with Client(params) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                health = await client.call_tool("orchestrator.health", {})
                routed = await client.call_tool("orchestrator.route_only", TASK)
                paused = await client.call_tool("orchestrator.run_task", {**TASK, "prd": ""})
                ran = await client.call_tool("orchestrator.run_task", TASK)
                status = await client.call_tool("orchestrator.task_status", {"task_id": "T-1"})
                assisted = await client.call_tool(
                    "database_assist", {"context": "Multi-tenant schema with row-level security", "tags": "database, tenancy"}
                )
                return tools, health, routed, paused, ran, status, assisted

    try:
        tools, health, routed, paused, ran, status, assisted = anyio.run(script)
    finally:
        worker.stop()

    assert set(tools) == {
        "orchestrator.health", "orchestrator.route_only", "orchestrator.run_task", "orchestrator.task_status",
        "debug_assist", "architect_assist", "database_assist", "ui_assist",
    }
    assert set(tools["debug_assist"].input_schema["properties"]) == ASSIST_PARAMS | {"error", "symptom", "logs"}
    assert set(tools["ui_assist"].input_schema["properties"]) == ASSIST_PARAMS | {"component"}
    assert set(tools["architect_assist"].input_schema["properties"]) == ASSIST_PARAMS
    assert all(tools[n].input_schema["required"] == ["context"] for n in ("debug_assist", "architect_assist", "database_assist", "ui_assist"))
    assert tools["orchestrator.run_task"].input_schema["required"] == ["task_id", "area", "summary"]

    assert health.structured_content["ok"] is True, health.structured_content
    assert health.structured_content["workers"].startswith("ok")
    assert routed.structured_content["specialist"] == "database-engineer.md"
    assert paused.is_error is False and paused.structured_content["reason"] == "prd_required"

    answer = text(ran)
    assert not ran.is_error and ran.structured_content["status"] == "done", answer
    assert answer.startswith("## database-engineer.md · task T-1 · done")
    assert ran.structured_content["answer"] and ran.structured_content["answer"] in answer
    assert "To continue this cluster session" in answer and "# Final report:" in answer
    assert status.structured_content["status"] == "done" and status.structured_content["report"]

    assert assisted.structured_content["status"] == "done", text(assisted)
    assert text(assisted).startswith("## database-engineer.md · task database-assist-")
    assert "Currently Active Team: Database Engineer (hub task)" in text(assisted)
    contribution = HubTask.objects.get(task_id="T-1").session.contributions.get(author="specialist")
    assert contribution.status == "done" and contribution.provider == "rules"  # the worker ran it


def test_stdio_server_without_a_broker_runs_specialists_in_process(hub_project):
    """The embedded profile's stdio server (no REDIS_URL, Celery's memory:// broker): a client's
    .mcp.json works on a fresh machine, the specialist runs inside the MCP server process."""
    params = StdioServerParameters(
        command=sys.executable, args=[str(ROOT / "manage.py"), "mcp_server", "--project", "shop"], cwd="/",
        env=subprocess_env(DJANGO_SETTINGS_MODULE="config.settings", REDIS_URL="", HUB_MCP_WAIT_SECONDS="60"),
    )

    async def script():
        with anyio.fail_after(90):
            async with Client(params) as client:
                health = await client.call_tool("orchestrator.health", {})
                ran = await client.call_tool("ui_assist", {"context": "Admin dashboard", "component": "Dashboard"})
                return health, ran

    health, ran = anyio.run(script)
    assert health.structured_content["ok"] is True and health.structured_content["workers"].startswith("eager")
    assert ran.structured_content["status"] == "done", text(ran)
    assert text(ran).startswith("## ui-designer.md · task ui-assist-")


def test_streamable_http_on_daphne_with_a_bearer_token(hub_project, token):
    server = Daphne().wait_ready()

    async def script():
        with anyio.fail_after(60):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                async with Client(streamable_http_client(f"{server.url}/mcp/", http_client=http)) as client:
                    tools = (await client.list_tools()).tools
                    routed = await client.call_tool("orchestrator.route_only", TASK)
                    paused = await client.call_tool("orchestrator.route_only", {**TASK, "prd": None})
            async with httpx2.AsyncClient(timeout=10) as anonymous:
                initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
                headers = {"Accept": "application/json, text/event-stream"}
                missing = await anonymous.post(f"{server.url}/mcp/", json=initialize, headers=headers)
                wrong = await anonymous.post(f"{server.url}/mcp/", json=initialize,
                                             headers={**headers, "Authorization": "Bearer mst_wrong"})
                bad_host = await anonymous.post(f"{server.url}/mcp/", json=initialize,
                                                headers={**headers, "Authorization": f"Bearer {token}", "Host": "evil.example"})
                django = await anonymous.get(f"{server.url}/hub/ping", headers={"Authorization": f"Bearer {token}"})
            return tools, routed, paused, missing, wrong, bad_host, django

    try:
        tools, routed, paused, missing, wrong, bad_host, django = anyio.run(script)
    finally:
        server.stop()

    assert len(tools) == 8 and "orchestrator.route_only" in {t.name for t in tools}
    assert not routed.is_error
    assert routed.structured_content["specialist"] == "database-engineer.md"
    assert routed.structured_content["rationale"] == "matched area 'db'; hints 'schema', 'migration'"
    assert paused.structured_content == {
        "status": "paused", "reason": "prd_required", "question": "What PRD id/link should we attach?", "latest_prd": "PRD-7",
    }
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="maestro-hub"'
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert bad_host.status_code == 400
    assert django.status_code == 200 and django.json() == {"ok": True}  # Django still serves the rest


# -- current MCP: the PRD question, progress, links, cancellation, older clients ------------------------


def _stdio(**env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_server", "--project", "shop"], cwd=str(ROOT),
        env=subprocess_env(HUB_MCP_WAIT_SECONDS="90", **env),
    )


def _answer(prd: str):
    asked = []

    async def callback(context, params):
        asked.append(params)
        return ElicitResult(action="accept", content={"prd": prd})

    return callback, asked


async def _current_client_script(client, asked):
    """What a 2026-07-28 client does: list, be asked for the PRD (input_required), retry, run with progress."""
    assert client.protocol_version == "2026-07-28"
    tools = {t.name: t for t in (await client.list_tools()).tools}
    first = await client.session.call_tool("orchestrator.route_only", {**TASK, "prd": None}, allow_input_required=True)
    (key, request), = first.input_requests.items()
    routed = await client.session.call_tool(
        "orchestrator.route_only", {**TASK, "prd": None}, allow_input_required=True,
        input_responses={key: ElicitResult(action="accept", content={"prd": "PRD-7"})}, request_state=first.request_state)
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    ran = await client.call_tool("orchestrator.run_task", {**TASK, "task_id": "T-2", "prd": None},
                                 progress_callback=on_progress)
    report = next(b for b in ran.content if b.type == "resource_link" and b.name == "report")
    read = await client.read_resource(report.uri)
    return tools, first, request, routed, progress, ran, read


def _check_current_client(tools, first, request, routed, progress, ran, read, asked):
    assert all(t.output_schema["type"] == "object" for t in tools.values())
    assert tools["orchestrator.run_task"].annotations.idempotent_hint is True
    assert tools["orchestrator.route_only"].annotations.read_only_hint is True
    assert isinstance(first, InputRequiredResult) and request.params.requested_schema["properties"]["prd"]["enum"] == ["PRD-7"]
    assert routed.structured_content["prd"] == "PRD-7" and routed.structured_content["specialist"] == "database-engineer.md"
    assert len(asked) == 1  # run_task's question went through the client's elicitation callback
    assert ran.structured_content["status"] == "done", text(ran)
    assert ran.structured_content["prd"] == "PRD-7"
    assert len(progress) >= 2 and progress[-1] == "session completed", progress
    assert json.loads(ran.content[1].text) == ran.structured_content
    assert {b.name for b in ran.content if b.type == "resource_link"} >= {"session", "report"}
    assert read.contents[0].text == HubTask.objects.get(task_id="T-2").session.report


@pytest.mark.worker
def test_stdio_current_and_older_clients_are_asked_for_the_prd(hub_project):
    worker = Worker("hub-stdio-modern", {"DATABASE_URL": subprocess_database_url()}, concurrency=4).wait_ready()
    current, asked = _answer("PRD-7")
    older, older_asked = _answer("PRD-7")

    async def script():
        with anyio.fail_after(240):
            async with Client(_stdio(), elicitation_callback=current) as client:
                modern = await _current_client_script(client, asked)
            async with Client(_stdio(), mode="legacy", elicitation_callback=older) as client:
                version = client.protocol_version
                tools = (await client.list_tools()).tools
                ran = await client.call_tool("orchestrator.run_task", {**TASK, "task_id": "T-3", "prd": None})
            return modern, version, tools, ran

    try:
        modern, version, tools, ran = anyio.run(script)
    finally:
        worker.stop()
    _check_current_client(*modern, asked)
    assert version == "2025-11-25"
    assert all(t.output_schema for t in tools)
    assert len(older_asked) == 1 and older_asked[0].message.startswith("What PRD id/link should we attach?")  # elicitation/create
    assert ran.structured_content["status"] == "done" and ran.structured_content["prd"] == "PRD-7", text(ran)


def test_cancelling_the_call_cancels_the_task_and_its_session(hub_project):
    """No worker takes the task, so the call is still waiting when the client cancels it."""
    started = anyio.Event()

    async def on_progress(value, total, message):
        started.set()

    async def script():
        with anyio.fail_after(90):
            async with Client(_stdio()) as client:
                async with anyio.create_task_group() as tg:
                    async def call():
                        await client.call_tool("orchestrator.run_task", {**TASK, "task_id": "T-9"},
                                               progress_callback=on_progress)

                    tg.start_soon(call)
                    await started.wait()
                    tg.cancel_scope.cancel()
                for _ in range(100):  # the server cancels the session when it sees the cancellation
                    status = await client.call_tool("orchestrator.task_status", {"task_id": "T-9"})
                    if status.structured_content["status"] == "cancelled":
                        return status
                    await anyio.sleep(0.1)
                return status

    status = anyio.run(script)
    assert status.structured_content["status"] == "cancelled", status.structured_content
    assert HubTask.objects.get(task_id="T-9").session.status == "cancelled"


@pytest.mark.worker
def test_streamable_http_current_client_and_older_client(hub_project, token):
    worker = Worker("hub-http-modern", {"DATABASE_URL": subprocess_database_url()}, concurrency=4).wait_ready()
    server = Daphne(subprocess_env(HUB_MCP_WAIT_SECONDS="90")).wait_ready()
    current, asked = _answer("PRD-7")

    async def script():
        with anyio.fail_after(180):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                async with Client(streamable_http_client(f"{server.url}/mcp/", http_client=http),
                                  elicitation_callback=current) as client:
                    modern = await _current_client_script(client, asked)
                async with Client(streamable_http_client(f"{server.url}/mcp/", http_client=http),
                                  mode="legacy") as client:
                    version = client.protocol_version
                    paused = await client.call_tool("orchestrator.route_only", {**TASK, "task_id": "T-4", "prd": None})
                    routed = await client.call_tool("orchestrator.route_only", TASK)
            return modern, version, paused, routed

    try:
        modern, version, paused, routed = anyio.run(script)
    finally:
        server.stop()
        worker.stop()
    _check_current_client(*modern, asked)
    assert version == "2025-11-25"
    assert paused.structured_content["reason"] == "prd_required", paused  # no mid-call question over stateless HTTP
    assert routed.structured_content["specialist"] == "database-engineer.md"


def test_closing_the_http_call_cancels_the_task_and_its_session(hub_project, token):
    """Over Streamable HTTP at 2026-07-28, cancelling is closing the call's response stream."""
    server = Daphne(subprocess_env(HUB_MCP_WAIT_SECONDS="90")).wait_ready()
    started = anyio.Event()

    async def on_progress(value, total, message):
        started.set()

    async def script():
        with anyio.fail_after(90):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                async with Client(streamable_http_client(f"{server.url}/mcp/", http_client=http)) as client:
                    async with anyio.create_task_group() as tg:
                        async def call():
                            await client.call_tool("orchestrator.run_task", {**TASK, "task_id": "T-8"},
                                                   progress_callback=on_progress)

                        tg.start_soon(call)
                        await started.wait()
                        tg.cancel_scope.cancel()
                    for _ in range(300):  # the server sees the closed stream at its next write (a keep-alive)
                        status = await client.call_tool("orchestrator.task_status", {"task_id": "T-8"})
                        if status.structured_content["status"] == "cancelled":
                            return status
                        await anyio.sleep(0.1)
                    return status

    try:
        status = anyio.run(script)
    finally:
        server.stop()
    assert status.structured_content["status"] == "cancelled", status.structured_content
    assert HubTask.objects.get(task_id="T-8").session.status == "cancelled"
