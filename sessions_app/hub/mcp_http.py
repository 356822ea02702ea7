"""The hub's MCP server over Streamable HTTP, mounted beside Django at ``/mcp/`` (config/asgi.py).

:class:`McpHttpApp` checks the host against ``ALLOWED_HOSTS``, authenticates the Bearer token
(401 otherwise), applies the per-token rate limit and puts the token in the request scope for the
tools; then the SDK's session manager serves the request.

The session manager needs its task group running before the first request. Daphne sends no
ASGI lifespan events, so the manager is started lazily, once, by the first request: a background
task enters ``session_manager.run()`` and stays inside it for the life of the process. The
transport is stateless, so any daphne process behind a proxy can answer any request (no in-memory
sessions to pin; the PRD question's ``requestState`` is sealed with a key every process shares).
Responses are plain JSON unless the tool sends progress, which switches that response to SSE.
Protocol 2026-07-28 (one self-contained POST per request) and the 2025-11-25 handshake are both
served by the SDK; over stateless HTTP a 2025-11-25 call cannot be asked anything mid-call, so a
missing PRD there gives the paused result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from sessions_app.hub.auth import WWW_AUTHENTICATE, WWW_AUTHENTICATE_INVALID, bearer_from_header, token_authenticate
from sessions_app.hub.mcp_server import build_server, db
from sessions_app.hub.ratelimit import rate_limit_hit
from teams_app.links import base_url

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
Scope = dict[str, Any]


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _host_allowed(host: str) -> bool:
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


class McpHttpApp:
    """ASGI app: token-authenticated MCP Streamable HTTP for the token's project."""

    def __init__(self) -> None:
        self._manager: StreamableHTTPSessionManager | None = None
        self._ready: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

    def _build(self) -> StreamableHTTPSessionManager:
        server = build_server()
        # Host validation happens here (Django's ALLOWED_HOSTS) and every request needs a token,
        # so the SDK's localhost-only DNS-rebinding guard is replaced rather than doubled.
        server.streamable_http_app(
            streamable_http_path=MCP_PATH, stateless_http=True, json_response=False,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        return server.session_manager

    async def _started(self) -> StreamableHTTPSessionManager:
        if self._ready is None or (self._runner is not None and self._runner.done()):
            # first request, or the manager stopped (it cannot be restarted: build a new one)
            self._manager = self._build()
            self._ready = asyncio.Event()
            self._runner = asyncio.get_running_loop().create_task(self._run(self._manager, self._ready))
        await self._ready.wait()
        if self._runner is not None and self._runner.done():
            raise RuntimeError("The MCP session manager could not start; see the log.")
        assert self._manager is not None
        return self._manager

    @staticmethod
    async def _run(manager: StreamableHTTPSessionManager, ready: asyncio.Event) -> None:
        try:
            async with manager.run():
                ready.set()
                await asyncio.Event().wait()  # until the process (and its loop) ends
        except Exception:
            logger.exception("the MCP session manager stopped")
        finally:
            ready.set()  # never leave a request waiting for a manager that is gone

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if not _host_allowed(_header(scope, b"host") or ""):
            await _send_json(send, 400, {"error": "This host is not allowed."})
            return
        raw = bearer_from_header(_header(scope, b"authorization"))
        token = await db(token_authenticate, raw) if raw else None
        if token is None:
            await _send_json(
                send, 401,
                {"error": "The token is invalid or revoked." if raw else "Send a project API token: Authorization: Bearer <token>."},
                {"WWW-Authenticate": WWW_AUTHENTICATE_INVALID if raw else WWW_AUTHENTICATE},
            )
            return
        retry_after = await sync_to_async(rate_limit_hit, thread_sensitive=False)(token.token_hash[:32])
        if retry_after is not None:
            await _send_json(
                send, 429, {"error": f"Too many requests for this token; retry after {retry_after} seconds."},
                {"Retry-After": str(retry_after)},
            )
            return
        host = _header(scope, b"host") or "127.0.0.1"
        scheme = scope.get("scheme") or "http"
        principal = AccessToken(token=token.prefix, client_id=f"maestro-token-{token.pk}", scopes=[])
        scope = {
            **scope,
            "user": AuthenticatedUser(principal),
            "maestro.hub": {"token_id": token.pk, "project_id": token.project_id, "base_url": base_url(origin=f"{scheme}://{host}")},
        }
        manager = await self._started()
        await manager.handle_request(scope, receive, send)


def with_mcp(http_app: Any, mcp_app: McpHttpApp | None = None) -> Any:
    """Route ``/mcp`` and ``/mcp/…`` to the MCP app and everything else to ``http_app`` (Django)."""
    mcp = mcp_app or McpHttpApp()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == MCP_PATH or path.startswith(MCP_PATH + "/")):
            await mcp(scope, receive, send)
        else:
            await http_app(scope, receive, send)

    return app
