"""The hub's HTTP API (§10): JSON endpoints for AI agents, authenticated by a project API token.

Interfaces only: parse the body with the shared pydantic schemas, call one service or selector,
return JSON. :func:`hub_endpoint` does token auth, rate limiting and the one mapping of
:class:`ApplicationError` to JSON for every endpoint.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from sessions_app.hub import selectors, services
from sessions_app.hub.auth import WWW_AUTHENTICATE, WWW_AUTHENTICATE_INVALID, bearer_from_header, token_authenticate
from sessions_app.hub.openapi import openapi_document
from sessions_app.hub.ratelimit import rate_limit_hit
from sessions_app.hub.schemas import INVALID_BODY, NOT_JSON, TASK_ID_PATTERN, PausedOut, TaskIn, field_errors
from teams_app.errors import ApplicationError
from teams_app.links import base_url

UNAUTHORIZED = "Send a project API token: Authorization: Bearer <token>."
INVALID_TOKEN = "The token is invalid or revoked."
RATE_LIMITED = "Too many requests for this token; retry after {seconds} seconds."
METHOD_NOT_ALLOWED = "Use {methods} for this endpoint."
TOO_LARGE = "The body is too large."

STATUS_FOR_CODE = {
    "bad_request": 400,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "invalid": 422,
    "prd_required": 422,
    "unavailable": 503,
}
_TASK_ID = re.compile(TASK_ID_PATTERN)


def _error(message: str, status: int, fields: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "fields": fields or {}}, status=status, headers=headers)


def error_response(exc: ApplicationError) -> JsonResponse:
    """The one mapping of the domain error to the hub's JSON answers."""
    code = exc.extra.get("code")
    if code == "prd_required":
        return JsonResponse(PausedOut(latest_prd=exc.extra.get("latest_prd")).model_dump(), status=422)
    return _error(exc.message, STATUS_FOR_CODE.get(code, 422), exc.extra.get("fields"))


def hub_endpoint(*methods: str, authenticated: bool = True) -> Callable:
    """CSRF-exempt JSON endpoint outside the login wall: token auth, rate limit, error mapping."""

    def decorate(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @functools.wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                return _error(METHOD_NOT_ALLOWED.format(methods=allowed), 405, headers={"Allow": allowed})
            if authenticated:
                raw = bearer_from_header(request.headers.get("Authorization"))
                token = token_authenticate(raw)
                if token is None:
                    challenge = WWW_AUTHENTICATE_INVALID if raw else WWW_AUTHENTICATE
                    return _error(INVALID_TOKEN if raw else UNAUTHORIZED, 401, headers={"WWW-Authenticate": challenge})
                retry_after = rate_limit_hit(token.token_hash[:32])
                if retry_after is not None:
                    return _error(RATE_LIMITED.format(seconds=retry_after), 429, headers={"Retry-After": str(retry_after)})
                request.hub_token = token  # type: ignore[attr-defined]
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as exc:
                return error_response(exc)

        return login_not_required(csrf_exempt(endpoint))

    return decorate


def parse_body(request: HttpRequest, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(request.body or b"null")
    except RequestDataTooBig:
        raise ApplicationError(TOO_LARGE, {"code": "too_large"})
    except (ValueError, RecursionError):
        raise ApplicationError(NOT_JSON, {"code": "bad_request"})
    if not isinstance(data, dict):
        raise ApplicationError(NOT_JSON, {"code": "bad_request"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApplicationError(INVALID_BODY, {"code": "invalid", "fields": field_errors(exc)})


def _base_url(request: HttpRequest) -> str:
    return base_url(request)


@hub_endpoint("GET")
def health(request: HttpRequest) -> JsonResponse:
    result = selectors.health_check()
    return JsonResponse(result, status=200 if result["ok"] else 503)


@hub_endpoint("GET")
def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@hub_endpoint("POST")
def route_only(request: HttpRequest) -> JsonResponse:
    task = parse_body(request, TaskIn)
    return JsonResponse(services.task_route(project=request.hub_token.project, task=task))


@hub_endpoint("POST")
def run_task(request: HttpRequest) -> JsonResponse:
    task = parse_body(request, TaskIn)
    token = request.hub_token
    hub_task, created = services.hub_task_run(project=token.project, task=task, token=token)
    urls = selectors.task_urls(hub_task, base_url=_base_url(request))
    body = {
        "task_id": hub_task.task_id,
        "status": selectors.hub_task_status(hub_task),
        "specialist": hub_task.specialist_file,
        **urls,
    }
    return JsonResponse(body, status=202 if created else 200)


@hub_endpoint("GET")
def task_status(request: HttpRequest, task_id: str) -> JsonResponse:
    if not _TASK_ID.fullmatch(task_id):
        raise ApplicationError(selectors.TASK_NOT_FOUND, {"code": "not_found"})
    hub_task = selectors.hub_task_get(project=request.hub_token.project, task_id=task_id)
    return JsonResponse(selectors.hub_task_view(hub_task, base_url=_base_url(request)))


@hub_endpoint("GET", authenticated=False)
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())
