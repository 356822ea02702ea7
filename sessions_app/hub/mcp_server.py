"""The hub's MCP server (§10), built on the official SDK's high-level ``MCPServer``.

Tools: ``orchestrator.health``, ``orchestrator.route_only``, ``orchestrator.run_task``,
``orchestrator.task_status`` and the seed's ``debug_assist``, ``architect_assist``,
``database_assist``, ``ui_assist``. Their input schemas are the pydantic models of
``sessions_app.hub.schemas`` (the HTTP API's models), and the same models validate the arguments.

Every call happens in one project: over stdio the one given to ``manage.py mcp_server --project``;
over Streamable HTTP (``sessions_app.hub.mcp_http``) the project of the caller's API token, which
the ASGI wrapper puts in the request scope under ``"maestro.hub"``.

Tools are interfaces: validate, call one service or selector (in a thread, through
``sync_to_async``), render. :func:`tool_error` maps :class:`ApplicationError` in one place; a
missing PRD is a normal result that pauses the task and asks for one, not a protocol error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from sessions_app.hub import selectors, services
from sessions_app.hub.models import ApiToken, HubTask
from sessions_app.hub.schemas import (
    INVALID_BODY,
    PRD_QUESTION,
    AssistIn,
    NoArguments,
    PausedOut,
    TaskIn,
    TaskRef,
    coerce_json_strings,
    field_errors,
)
from teams_app.errors import ApplicationError
from teams_app.links import base_url
from teams_app.models import Project

SERVER_NAME = "maestro-orchestrator-hub"
NOT_BOUND = "This MCP connection is not bound to a project: start it with --project, or send a project API token."
POLL_SECONDS = 0.3
FINISHED = ("done", "failed", "cancelled", "paused")
RULE = "━" * 40

INSTRUCTIONS = (
    "Maestro's orchestrator hub. Attach a PRD id or link to every task (`prd`); without one the task pauses and "
    "asks for it. Call orchestrator.route_only to see which specialist a task goes to, then orchestrator.run_task "
    "to run it. The *_assist tools ask one specialist directly under the project's latest active PRD."
)


@dataclass(frozen=True)
class Caller:
    project: Project
    token: ApiToken | None
    base_url: str


async def db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ORM work off the event loop, with the connection hygiene a request would get."""

    def call() -> Any:
        if not connection.in_atomic_block:  # (tests run the tools inside their transaction)
            close_old_connections()
        return fn(*args, **kwargs)

    return await sync_to_async(call, thread_sensitive=True)()


# -- results ----------------------------------------------------------------------------------------


def _result(text: str, structured: dict[str, Any] | None = None, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured, is_error=is_error)


def _json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def tool_error(exc: ApplicationError) -> CallToolResult:
    """The one mapping of the domain error to MCP results. The PRD guard is an answer, not an error."""
    if exc.extra.get("code") == "prd_required":
        paused = PausedOut(latest_prd=exc.extra.get("latest_prd")).model_dump()
        offer = f" The project's latest active PRD is {paused['latest_prd']}." if paused["latest_prd"] else ""
        text = f"Task paused: a PRD is required before the hub can route or run it.{offer}\n\n{PRD_QUESTION}"
        return _result(text, paused)
    fields = exc.extra.get("fields") or {}
    body = {"error": exc.message, "fields": fields}
    text = exc.message + "".join(f"\n- {name}: {message}" for name, message in fields.items())
    return _result(text, body, is_error=True)


def task_text(view: dict[str, Any], *, with_report: bool) -> str:
    """A finished task as the agent reads it: the answer, then (run_task) the final report, the
    continuation block and the ASCII cluster view."""
    header = (
        f"## {view['specialist']} · task {view['task_id']} · {view['status']}\n"
        f"PRD: {view['prd']} · routed: {view['rationale']}\n"
        f"Live page: {view['session_url'] or view['task_url']}"
    )
    if view["status"] not in FINISHED:
        return (
            f"{header}\n\nThe specialist is still working (status {view['status']}). Call orchestrator.task_status "
            f"with task_id {view['task_id']} for the answer.\n\n{view['continuation'] or ''}"
        ).rstrip() + "\n"
    parts = [header, view["answer"] or "(no answer)"]
    report = view["report"] or ""
    if with_report and report:
        parts.append(report.rstrip())  # the report ends with the continuation block
    elif view["continuation"]:
        parts.append(view["continuation"])
    if view["cluster_view"]:
        parts.append(view["cluster_view"].rstrip())
    return "\n\n".join(parts) + "\n"


# -- callers and waiting ----------------------------------------------------------------------------


def _request_scope(ctx: Context) -> dict[str, Any] | None:
    try:
        request = ctx.request_context.request
    except (ValueError, AttributeError):  # no request context (in-process use)
        return None
    scope = getattr(request, "scope", None)
    return scope.get("maestro.hub") if isinstance(scope, dict) else None


def _resolve_caller(hub: dict[str, Any] | None, bound_slug: str | None) -> Caller:
    if hub is not None:
        token = ApiToken.objects.select_related("project", "created_by").get(pk=hub["token_id"])
        return Caller(project=token.project, token=token, base_url=hub["base_url"])
    if bound_slug:
        project = Project.objects.filter(slug=bound_slug).first()
        if project is not None:
            return Caller(project=project, token=None, base_url=base_url())
    raise ApplicationError(NOT_BOUND, {"code": "unavailable"})


def _task_view(caller: Caller, task_id: str) -> dict[str, Any]:
    task = selectors.hub_task_get(project=caller.project, task_id=task_id)
    return selectors.hub_task_view(task, base_url=caller.base_url)


async def _wait_for(caller: Caller, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + float(settings.HUB_MCP_WAIT_SECONDS)
    while True:
        view = await db(_task_view, caller, task_id)
        if view["status"] in FINISHED or time.monotonic() >= deadline:
            return view
        await anyio.sleep(POLL_SECONDS)


# -- tools ------------------------------------------------------------------------------------------


class _RawArguments(ArgModelBase):
    """Hands the tool its raw arguments: validation happens in the tool with the hub's models, so
    field errors read the same over MCP as over HTTP."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


Handler = Callable[[Caller, Any], Awaitable[CallToolResult]]


def _tool(name: str, model: type[BaseModel], handler: Handler, description: str, *, bound_slug: str | None,
          read_only: bool = False) -> Tool:
    async def run(ctx: Context, **arguments: Any) -> CallToolResult:
        try:
            try:
                params = model.model_validate(coerce_json_strings(model, arguments))
            except ValidationError as exc:
                raise ApplicationError(INVALID_BODY, {"code": "invalid", "fields": field_errors(exc)}) from None
            caller = await db(_resolve_caller, _request_scope(ctx), bound_slug)
            return await handler(caller, params)
        except ApplicationError as exc:
            return tool_error(exc)

    schema = model.model_json_schema()
    schema.pop("title", None)
    return Tool(
        fn=run, name=name, title=name, description=description, parameters=schema,
        fn_metadata=FuncMetadata(arg_model=_RawArguments), is_async=True, context_kwarg="ctx",
        annotations=ToolAnnotations(read_only_hint=read_only, open_world_hint=False),
    )


async def _health(caller: Caller, _params: NoArguments) -> CallToolResult:
    data = await db(selectors.health_check)
    return _result(_json_text(data), data)


async def _route_only(caller: Caller, task: TaskIn) -> CallToolResult:
    data = await db(services.task_route, project=caller.project, task=task)
    return _result(_json_text(data), data)


async def _run_task(caller: Caller, task: TaskIn) -> CallToolResult:
    hub_task, _created = await db(services.hub_task_run, project=caller.project, task=task, token=caller.token)
    view = await _wait_for(caller, hub_task.task_id)
    return _result(task_text(view, with_report=True), view)


async def _task_status(caller: Caller, ref: TaskRef) -> CallToolResult:
    view = await db(_task_view, caller, ref.task_id)
    return _result(task_text(view, with_report=True) if view["status"] in FINISHED else _json_text(view), view)


def _assist(tool: str) -> Handler:
    async def handler(caller: Caller, params: AssistIn) -> CallToolResult:
        hub_task, _created = await db(services.assist_run, project=caller.project, tool=tool, params=params,
                                      token=caller.token)
        view = await _wait_for(caller, hub_task.task_id)
        return _result(task_text(view, with_report=False), view)

    return handler


TASK_FIELDS = (
    'The task object: {"task_id", "area", "summary", "hints", "prd"}; area is one of dev, cluster, migration, '
    "content, db, ui, edge, infra. A missing prd pauses the task and asks for one."
)
ASSIST_DESCRIPTIONS = {
    HubTask.Tool.DEBUG_ASSIST: (
        "AI-powered debugging for production issues, error analysis and root cause identification "
        "(the Debug Specialist). `context` (required): the error context with environment, logs, stack traces; "
        "optional `error`, `symptom`, `logs`, `title`, `files`, `tags`, `project`."
    ),
    HubTask.Tool.ARCHITECT_ASSIST: (
        "Architecture decisions, system design and technical trade-off analysis (the System Architect). "
        "`context` (required): the decision's context and requirements; optional `title`, `files`, `tags`, `project`."
    ),
    HubTask.Tool.DATABASE_ASSIST: (
        "Database schema design, migration planning and query optimisation (the Database Engineer). "
        "`context` (required): requirements and design context; optional `title`, `files`, `tags`, `project`."
    ),
    HubTask.Tool.UI_ASSIST: (
        "UI component design, user flow planning and responsive layout decisions (the UI Designer). "
        "`context` (required): UI requirements and design context; optional `component`, `title`, `files`, "
        "`tags`, `project`."
    ),
}


def build_server(*, project_slug: str | None = None) -> MCPServer:
    """The hub's MCP server. ``project_slug`` binds it to a project (stdio); without it every
    request must carry a token's project in its scope (Streamable HTTP)."""
    bound = {"bound_slug": project_slug}
    tools = [
        _tool("orchestrator.health", NoArguments, _health,
              "Is the hub ready? Checks the database, the broker and the Celery workers; `ok` is false when any is down.",
              read_only=True, **bound),
        _tool("orchestrator.route_only", TaskIn, _route_only,
              "Select the specialist for a task deterministically (no execution): its agent file name, score, "
              "rationale (matched area, hint and summary terms) and three runners-up. " + TASK_FIELDS,
              read_only=True, **bound),
        _tool("orchestrator.run_task", TaskIn, _run_task,
              "Route the task and run the chosen specialist (live on the project's session page); answers with the "
              "specialist's answer, the final report, the continuation block and the ASCII cluster view. The same "
              "task_id again is the same task. " + TASK_FIELDS, **bound),
        _tool("orchestrator.task_status", TaskRef, _task_status,
              "A task's status and, when done, its answer, final report and continuation block.",
              read_only=True, **bound),
    ]
    for tool, (model, _slug, _area) in services.ASSIST_TOOLS.items():
        tools.append(_tool(str(tool), model, _assist(str(tool)), ASSIST_DESCRIPTIONS[tool], **bound))
    return MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, tools=tools, log_level="WARNING")
