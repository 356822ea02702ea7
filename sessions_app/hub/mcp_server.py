"""The hub's MCP server (§10), built on the official SDK's high-level ``MCPServer``.

Tools: ``orchestrator.health``, ``orchestrator.route_only``, ``orchestrator.run_task``,
``orchestrator.task_status`` and the seed's ``debug_assist``, ``architect_assist``,
``database_assist``, ``ui_assist``. Their input and output schemas are the pydantic models of
``sessions_app.hub.schemas`` (the HTTP API's and the OpenAPI document's models), and the same
models validate the arguments and the structured results.

Every call happens in one project: over stdio the one given to ``manage.py mcp_server --project``;
over Streamable HTTP (``sessions_app.hub.mcp_http``) the project of the caller's API token, which
the ASGI wrapper puts in the request scope under ``"maestro.hub"``.

What the SDK does and this module only declares:

- protocol negotiation: 2026-07-28 for current clients (``server/discover``), the ``initialize``
  handshake (2025-11-25 and older) for the rest;
- the PRD question: a ``Resolve`` dependency returns an ``Elicit`` form, which the SDK sends as an
  ``input_required`` result on 2026-07-28 (the retry carries the answer) and as
  ``elicitation/create`` during the call on older protocols;
- progress (``ctx.report_progress``: a no-op without a progress token) and cancellation (the
  handler's task is cancelled when the client cancels or goes away).

Tools are interfaces: validate, call one service or selector (in a thread, through
``sync_to_async``), render. :func:`tool_error` maps :class:`ApplicationError` in one place; a
missing PRD the person would not give is a normal "paused" result, not a protocol error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    RequestStateSecurity,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.resolve import build_resolver_plans, find_resolved_parameters
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, ContentBlock, ResourceLink, TextContent, ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from sessions_app.events import session_group
from sessions_app.hub import selectors, services
from sessions_app.hub.models import ApiToken, HubTask
from sessions_app.hub.schemas import (
    INVALID_BODY,
    PRD_QUESTION,
    AssistIn,
    HealthOut,
    NoArguments,
    PausedOut,
    RouteOut,
    TaskIn,
    TaskRef,
    TaskStatusOut,
    coerce_json_strings,
    field_errors,
)
from teams_app.errors import ApplicationError
from teams_app.links import base_url
from teams_app.models import Project

logger = logging.getLogger(__name__)

SERVER_NAME = "maestro-orchestrator-hub"
NOT_BOUND = "This MCP connection is not bound to a project: start it with --project, or send a project API token."
# The channel layer wakes the wait on each session event; the log is re-read at least this often
# in case a message was dropped (the layer is a fast path, the event log the truth).
WAKE_SECONDS = 2.0
FINISHED = ("done", "failed", "cancelled", "paused")
INPUT_REQUIRED_VERSION = "2026-07-28"
URI = "maestro://tasks/{task_id}"

INSTRUCTIONS = (
    "Maestro's orchestrator hub. Attach a PRD id or link to every task (`prd`); without one the hub asks the person "
    "(a form offering the project's active PRDs) and the task pauses if they decline. Call orchestrator.route_only to "
    "see which specialist a task goes to, then orchestrator.run_task to run it (send a progress token to follow its "
    "rounds; cancelling the call cancels the task). The *_assist tools ask one specialist directly under the "
    "project's latest active PRD. Results link to the session page, the report, ADRs and the diagram "
    "(resources/read)."
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


def _json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _result(text: str | None, structured: dict[str, Any], *, is_error: bool = False,
            links: list[ResourceLink] | None = None) -> CallToolResult:
    """Structured content, mirrored as a JSON text block for clients that read only text (the
    spec's advice to servers), after the human-readable text when there is one."""
    content: list[ContentBlock] = []
    if text is not None:
        content.append(TextContent(type="text", text=text))
    content.append(TextContent(type="text", text=_json_text(structured)))
    content.extend(links or [])
    return CallToolResult(content=content, structured_content=structured, is_error=is_error)


def paused_result(latest_prd: str | None) -> CallToolResult:
    paused = PausedOut(latest_prd=latest_prd).model_dump()
    offer = f" The project's latest active PRD is {latest_prd}." if latest_prd else ""
    text = f"Task paused: a PRD is required before the hub can route or run it.{offer}\n\n{PRD_QUESTION}"
    return _result(text, paused)


def tool_error(exc: ApplicationError) -> CallToolResult:
    """The one mapping of the domain error to MCP results. The PRD guard is an answer, not an error."""
    if exc.extra.get("code") == "prd_required":
        return paused_result(exc.extra.get("latest_prd"))
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
    parts = [header]
    if view.get("brief"):
        parts.append(view["brief"].rstrip())
    parts.append(view["answer"] or "(no answer)")
    report = view["report"] or ""
    if with_report and report:
        parts.append(report.rstrip())  # the report ends with the continuation block
    elif view["continuation"]:
        parts.append(view["continuation"])
    if view["cluster_view"]:
        parts.append(view["cluster_view"].rstrip())
    return "\n\n".join(parts) + "\n"


def task_links(view: dict[str, Any], resources: dict[str, Any]) -> list[ResourceLink]:
    """Links to what the task produced: the live session page, the report, each ADR, the diagram."""
    base = URI.format(task_id=view["task_id"])
    links = []
    if view["session_url"]:
        links.append(ResourceLink(uri=view["session_url"], name="session", title="Live session page",
                                  mime_type="text/html"))
    if resources["report"]:
        links.append(ResourceLink(uri=f"{base}/report", name="report", title=f"Final report of {view['task_id']}",
                                  mime_type="text/markdown"))
    for number, title in resources["adrs"]:
        links.append(ResourceLink(uri=f"{base}/adrs/{number}", name=f"ADR-{number:04d}", title=title,
                                  mime_type="text/markdown"))
    if resources["diagram"]:
        links.append(ResourceLink(uri=f"{base}/diagram", name="diagram", title="Proposed cluster diagram (ASCII)",
                                  mime_type="text/plain"))
    return links


# -- callers ----------------------------------------------------------------------------------------


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


def _finished_view(caller: Caller, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    task = selectors.hub_task_get(project=caller.project, task_id=task_id)
    return selectors.hub_task_view(task, base_url=caller.base_url), selectors.hub_task_resources(task)


# -- progress, driven by the session's events ----------------------------------------------------------


class _Progress:
    """Turns session events into progress notifications: phase, round k, d of n specialists."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sent = 0
        self.round = 0

    def message(self, kind: str, payload: dict[str, Any]) -> str | None:
        if kind == "round.started":
            self.round += 1
            return f"round {self.round} started"
        if kind == "round.progress":
            return f"round {self.round or 1}: {payload['done']} of {payload['total']} specialists finished"
        if kind == "phase.changed":
            return f"phase {payload['phase']}"
        if kind == "synthesis.ready":
            return f"round {self.round or 1}: synthesis ready"
        if kind == "status.changed":
            return f"session {payload['status']}" + (f": {payload['reason']}" if payload.get("reason") else "")
        return None

    async def event(self, kind: str, payload: dict[str, Any]) -> None:
        message = self.message(kind, payload)
        if message is not None:
            self.sent += 1
            await self.ctx.report_progress(self.sent, None, message)


async def _follow(ctx: Context, caller: Caller, hub_task: HubTask) -> dict[str, Any]:
    """Wait for the task to finish (or the hub's wait to run out), reporting its session's events
    as progress. Cancelled (the client cancelled the call or went away): cancel the task's session."""
    deadline = time.monotonic() + float(settings.HUB_MCP_WAIT_SECONDS)
    progress = _Progress(ctx)
    layer = get_channel_layer()
    channel = group = None
    after = 0
    try:
        if layer is not None and hub_task.session_id:
            group = session_group(hub_task.session_id)
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
        while True:
            # The status first, then the events: a finished status's own events are committed with it.
            view = await db(_task_view, caller, hub_task.task_id)
            if hub_task.session_id:
                for seq, kind, payload in await db(selectors.session_events_after, session_id=hub_task.session_id,
                                                   after=after):
                    after = seq
                    await progress.event(kind, payload)
            remaining = deadline - time.monotonic()
            if view["status"] in FINISHED or remaining <= 0:
                return view
            with anyio.move_on_after(min(remaining, WAKE_SECONDS)):
                if channel is not None:
                    await layer.receive(channel)
                else:
                    await anyio.sleep(WAKE_SECONDS)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            try:
                await db(services.hub_task_cancel, project=caller.project, task_id=hub_task.task_id)
            except ApplicationError:
                logger.info("hub task %s was already finished when its call was cancelled", hub_task.task_id)
        raise
    finally:
        if channel is not None:
            with anyio.CancelScope(shield=True):
                await layer.group_discard(group, channel)


# -- the PRD question -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prd:
    """A PRD the call already has (given, cached for the task, or the assist tools' latest)."""

    reference: str


@dataclass(frozen=True)
class _CannotAsk:
    """The client cannot show a form (no elicitation capability, or no way back on this transport)."""


def _prd_form(offered: list[dict[str, str]]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    if offered:
        choices = tuple(o["reference"] for o in offered)
        def as_enum(schema: dict[str, Any]) -> None:  # one choice renders as "const"; forms want an enum
            schema.pop("const", None)
            schema["enum"] = list(choices)

        fields["prd"] = (Literal[choices] | None, Field(  # type: ignore[valid-type]
            default=None, title="Active PRD", description="One of the project's active PRDs (the first is the latest).",
            json_schema_extra=as_enum))
    fields["other"] = (str | None, Field(default=None, title="Another PRD id or link", max_length=512,
                                         description="A PRD id such as PRD-123, or an http(s) link."))
    return create_model("PrdAnswer", **fields)


def _prd_message(offered: list[dict[str, str]]) -> str:
    if not offered:
        return f"{PRD_QUESTION} The project has no active PRD yet: give an id such as PRD-123 or a link."
    lines = [f"{PRD_QUESTION} The project's active PRDs, latest first:"]
    lines += [f"- {o['reference']}: {o['title']} ({o['source']})" for o in offered]
    return "\n".join(lines)


def _can_ask(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    if is_version_at_least(ctx.protocol_version or "", INPUT_REQUIRED_VERSION):
        return True  # asked through the input_required result: no back channel needed
    return ctx.session.can_send_request


def _planning_folder(caller: Caller, cwd: str | None) -> str | None:
    configured = dict(getattr(settings, "HUB_PLANNING_DIRS", {}) or {}).get(caller.project.slug)
    return configured or cwd


def _offer(caller: Caller, folder: str | None) -> list[dict[str, str]]:
    """The PRDs to offer, after importing those of the project's Task Master folder (if any)."""
    if folder and any((Path(folder) / p).exists() for p in (".taskmaster/docs", "scripts/prd.txt")):
        try:
            services.prds_import_planning(project=caller.project, path=folder)
        except ApplicationError as exc:
            logger.warning("planning files in %s were not imported: %s", folder, exc.message)
    return selectors.prds_offered(project=caller.project)


def _prd_resolver(model: type[BaseModel], *, bound_slug: str | None, cwd: str | None,
                  use_latest: bool) -> Callable[..., Awaitable[Any]]:
    """The PRD for this call: given in the arguments, already chosen for the task, (assist tools)
    the project's latest active one, or asked of the person through a form."""

    async def ask_prd(ctx: Context, arguments: dict[str, Any]) -> Any:
        try:
            params = model.model_validate(coerce_json_strings(model, arguments))
        except ValidationError:
            return None  # the body reports the field errors; nothing is asked
        given = getattr(params, "prd", None)
        if given:
            return _Prd(given)
        caller = await db(_resolve_caller, _request_scope(ctx), bound_slug)
        task_id = getattr(params, "task_id", None)
        if task_id:
            cached = await db(selectors.prd_cached_for_task, project=caller.project, task_id=task_id)
            if cached:
                return _Prd(cached)
        offered = await db(_offer, caller, _planning_folder(caller, cwd))
        if use_latest and offered:
            return _Prd(offered[0]["reference"])
        if not _can_ask(ctx):
            return _CannotAsk()
        return Elicit(_prd_message(offered), _prd_form(offered))

    ask_prd.__annotations__ = {"ctx": Context, "arguments": dict, "return": Any}
    return ask_prd


PAUSE = object()  # the person gave no PRD: answer with the paused result


def _answered_prd(outcome: Any) -> str | object | None:
    """The reference the resolver's outcome carries, PAUSE, or None (invalid arguments: nothing was asked)."""
    if not isinstance(outcome, AcceptedElicitation):  # declined or cancelled
        return PAUSE
    value = outcome.data
    if value is None:
        return None
    if isinstance(value, _Prd):
        return value.reference
    if isinstance(value, _CannotAsk):
        return PAUSE
    reference = (getattr(value, "prd", None) or getattr(value, "other", None) or "").strip()
    return reference or PAUSE


# -- tools ------------------------------------------------------------------------------------------


class _RawArguments(ArgModelBase):
    """Hands the tool its raw arguments: validation happens in the tool with the hub's models, so
    field errors read the same over MCP as over HTTP."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


# (ctx, caller, validated parameters, the PRD the call settled on or None)
Handler = Callable[[Context, Caller, Any, str | None], Awaitable[CallToolResult]]


def _output(*models: type[BaseModel]) -> tuple[dict[str, Any], Any]:
    """The tool's outputSchema and the type its structured results are checked against: the HTTP
    API's response models (one, or a union such as the answer or the paused result)."""
    output_type: Any = models[0] if len(models) == 1 else models[0] | models[1]
    schema = TypeAdapter(output_type).json_schema(mode="serialization")
    if "$ref" in schema or "anyOf" in schema:
        schema = {"type": "object", **schema}  # outputSchema needs an object root
    return schema, output_type


def _tool(name: str, model: type[BaseModel], handler: Handler, description: str, *, outputs: tuple[type[BaseModel], ...],
          annotations: ToolAnnotations, bound_slug: str | None, cwd: str | None = None, asks_prd: bool = False,
          use_latest_prd: bool = False) -> Tool:
    async def run(ctx: Context, arguments: dict[str, Any], prd: Any = None) -> CallToolResult:
        try:
            reference = _answered_prd(prd) if asks_prd else None
            if reference is PAUSE:
                caller = await db(_resolve_caller, _request_scope(ctx), bound_slug)
                await db(services.prd_guard, project=caller.project, reference=None)  # raises: the paused result
            data = coerce_json_strings(model, arguments)
            if reference and "prd" in model.model_fields:
                data = {**data, "prd": reference}
            try:
                params = model.model_validate(data)
            except ValidationError as exc:
                raise ApplicationError(INVALID_BODY, {"code": "invalid", "fields": field_errors(exc)}) from None
            caller = await db(_resolve_caller, _request_scope(ctx), bound_slug)
            if reference and isinstance(params, TaskIn) and isinstance(prd, AcceptedElicitation) \
                    and not isinstance(prd.data, _Prd):
                await db(services.prd_answer_remember, project=caller.project, task_id=params.task_id,
                         reference=reference)
            return await handler(ctx, caller, params, reference)
        except ApplicationError as exc:
            return tool_error(exc)

    hints: dict[str, Any] = {"ctx": Context, "arguments": dict, "return": CallToolResult}
    if asks_prd:
        resolver = _prd_resolver(model, bound_slug=bound_slug, cwd=cwd, use_latest=use_latest_prd)
        hints["prd"] = Annotated[ElicitationResult[BaseModel], Resolve(resolver)]
    run.__annotations__ = hints  # real objects: the SDK reads Resolve(...) from the type hints
    resolved = find_resolved_parameters(run)
    schema = model.model_json_schema()
    schema.pop("title", None)
    output_schema, output_type = _output(*outputs)
    return Tool(
        fn=run, name=name, title=name, description=description, parameters=schema,
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=output_schema, output_model=output_type),
        is_async=True, context_kwarg="ctx", resolved_params=dict(resolved),
        resolver_plans=build_resolver_plans(resolved, {"arguments"}), annotations=annotations,
    )


async def _health(ctx: Context, caller: Caller, _params: NoArguments, _prd: str | None) -> CallToolResult:
    data = await db(selectors.health_check)
    return _result(None, data)


async def _route_only(ctx: Context, caller: Caller, task: TaskIn, _prd: str | None) -> CallToolResult:
    data = await db(services.task_route, project=caller.project, task=task)
    return _result(None, data)


async def _answer(ctx: Context, caller: Caller, hub_task: HubTask, *, with_report: bool) -> CallToolResult:
    view = await _follow(ctx, caller, hub_task)
    links: list[ResourceLink] = []
    if view["status"] in FINISHED:
        view, resources = await db(_finished_view, caller, hub_task.task_id)
        links = task_links(view, resources)
    return _result(task_text(view, with_report=with_report), view, links=links)


async def _run_task(ctx: Context, caller: Caller, task: TaskIn, _prd: str | None) -> CallToolResult:
    hub_task, _created = await db(services.hub_task_run, project=caller.project, task=task, token=caller.token)
    return await _answer(ctx, caller, hub_task, with_report=True)


async def _task_status(ctx: Context, caller: Caller, ref: TaskRef, _prd: str | None) -> CallToolResult:
    view, resources = await db(_finished_view, caller, ref.task_id)
    if view["status"] not in FINISHED:
        return _result(None, view)
    return _result(task_text(view, with_report=True), view, links=task_links(view, resources))


def _assist(tool: str) -> Handler:
    async def handler(ctx: Context, caller: Caller, params: AssistIn, prd: str | None) -> CallToolResult:
        hub_task, _created = await db(services.assist_run, project=caller.project, tool=tool, params=params,
                                      token=caller.token, prd=prd)
        return await _answer(ctx, caller, hub_task, with_report=False)

    return handler


# -- resources: what results link to, for the caller's project only ---------------------------------------


def _read(bound_slug: str | None, fn: Callable[..., str]) -> Callable[..., Awaitable[str]]:
    async def read(ctx: Context, **kwargs: Any) -> str:
        try:
            caller = await db(_resolve_caller, _request_scope(ctx), bound_slug)
            return await db(fn, project=caller.project, **kwargs)
        except ApplicationError as exc:
            raise ResourceNotFoundError(exc.message) from None

    return read


def _add_resources(server: MCPServer, bound_slug: str | None) -> None:
    async def report(task_id: str, ctx: Context) -> str:
        return await _read(bound_slug, selectors.hub_task_report)(ctx, task_id=task_id)

    async def adr(task_id: str, number: str, ctx: Context) -> str:
        if not number.isdigit():
            raise ResourceNotFoundError("ADR numbers are digits.")
        return await _read(bound_slug, selectors.hub_task_adr)(ctx, task_id=task_id, number=int(number))

    async def diagram(task_id: str, ctx: Context) -> str:
        return await _read(bound_slug, selectors.hub_task_diagram)(ctx, task_id=task_id)

    server.resource(URI + "/report", name="report", title="A hub task's final report", mime_type="text/markdown")(report)
    server.resource(URI + "/adrs/{number}", name="adr", title="An ADR a hub task recorded (MADR)",
                    mime_type="text/markdown")(adr)
    server.resource(URI + "/diagram", name="diagram", title="A hub task's proposed cluster diagram",
                    mime_type="text/plain")(diagram)


# -- the server -------------------------------------------------------------------------------------------


TASK_FIELDS = (
    'The task object: {"task_id", "area", "summary", "hints", "prd"}; area is one of dev, cluster, migration, '
    "content, db, ui, edge, infra. Without a prd the hub asks for one (a form offering the project's active PRDs); "
    "declined, the task pauses."
)
ASSIST_DESCRIPTIONS = {
    HubTask.Tool.DEBUG_ASSIST: (
        "AI-powered debugging for production issues, error analysis and root cause identification "
        "(the Debug Specialist). `context` (required): the error context with environment, logs, stack traces; "
        "optional `error`, `symptom`, `logs`, `title`, `files`, `tags`, `project`. The answer starts with a "
        "rule-based brief built from these and the project's inventory (e.g. replicas × pool size against "
        "max_connections)."
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
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
ASSISTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)


def request_state_security() -> RequestStateSecurity:
    """One key for every hub process (derived from SECRET_KEY), so a retry carrying the PRD answer
    can reach any daphne process behind the proxy."""
    key = hashlib.sha256(b"maestro-mcp-request-state:" + settings.SECRET_KEY.encode()).digest()
    return RequestStateSecurity(keys=[key])


def build_server(*, project_slug: str | None = None, planning_dir: str | None = None) -> MCPServer:
    """The hub's MCP server. ``project_slug`` binds it to a project (stdio); without it every
    request must carry a token's project in its scope (Streamable HTTP). ``planning_dir`` is a
    folder whose Task Master PRDs the PRD question offers (stdio: the server's working folder)."""
    bound: dict[str, Any] = {"bound_slug": project_slug}
    asks: dict[str, Any] = {**bound, "cwd": planning_dir, "asks_prd": True}
    tools = [
        _tool("orchestrator.health", NoArguments, _health,
              "Is the hub ready? Checks the database, the broker and the Celery workers; `ok` is false when any is down.",
              outputs=(HealthOut,), annotations=READ_ONLY, **bound),
        _tool("orchestrator.route_only", TaskIn, _route_only,
              "Select the specialist for a task deterministically (no execution): its agent file name, score, "
              "rationale (matched area, hint and summary terms) and three runners-up. " + TASK_FIELDS,
              outputs=(RouteOut, PausedOut), annotations=READ_ONLY, **asks),
        _tool("orchestrator.run_task", TaskIn, _run_task,
              "Route the task and run the chosen specialist (live on the project's session page); answers with the "
              "specialist's answer, the final report, the continuation block and the ASCII cluster view, and links "
              "to the session page, report, ADRs and diagram. Progress notifications follow the session's rounds; "
              "cancelling the call cancels the task. The same task_id again is the same task. " + TASK_FIELDS,
              outputs=(TaskStatusOut, PausedOut), annotations=RUNS, **asks),
        _tool("orchestrator.task_status", TaskRef, _task_status,
              "A task's status and, when done, its answer, final report and continuation block.",
              outputs=(TaskStatusOut,), annotations=READ_ONLY, **bound),
    ]
    for tool, (model, _slug, _area) in services.ASSIST_TOOLS.items():
        tools.append(_tool(str(tool), model, _assist(str(tool)), ASSIST_DESCRIPTIONS[tool],
                           outputs=(TaskStatusOut, PausedOut), annotations=ASSISTS, use_latest_prd=True, **asks))
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, tools=tools, log_level="WARNING",
                       request_state_security=request_state_security())
    _add_resources(server, project_slug)
    return server
