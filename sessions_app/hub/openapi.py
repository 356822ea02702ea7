"""The OpenAPI 3.1 document of the hub, generated from the pydantic models the endpoints use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sessions_app.hub.schemas import (
    TASK_ID_PATTERN,
    ErrorOut,
    HealthOut,
    PausedOut,
    PingOut,
    RouteOut,
    RunTaskOut,
    TaskIn,
    TaskStatusOut,
)

REF = "#/components/schemas/{model}"
RESPONSE_MODELS: list[type[BaseModel]] = [ErrorOut, HealthOut, PausedOut, PingOut, RouteOut, RunTaskOut, TaskStatusOut]


def _json(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    pairs = [(TaskIn, "validation")] + [(m, "serialization") for m in RESPONSE_MODELS]
    refs, definitions = models_json_schema(pairs, ref_template=REF)
    ref = {model: refs[(model, mode)] for model, mode in pairs}
    error = ref[ErrorOut]
    unauthorized = {
        **_json(error, "Missing, invalid or revoked token."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge."}},
    }
    limited = {
        **_json(error, "Too many requests for this token."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until the window resets."}},
    }
    invalid_or_paused = _json(
        {"oneOf": [error, ref[PausedOut]]},
        "Field errors (`fields`), or the PRD guard: the task is paused until a PRD id/link is attached.",
    )
    common = {"401": unauthorized, "429": limited}
    task_body = {"required": True, "content": {"application/json": {"schema": ref[TaskIn]}}}
    paths: dict[str, Any] = {
        "/hub/health": {
            "get": {
                "operationId": "health",
                "summary": "Database, broker and Celery workers",
                "responses": {
                    "200": _json(ref[HealthOut], "Everything answers."),
                    "503": _json(ref[HealthOut], "The database, the broker or all workers are down."),
                    **common,
                },
            }
        },
        "/hub/ping": {
            "get": {
                "operationId": "ping",
                "summary": "A trivial authenticated answer (the baseline of `make bench`)",
                "responses": {"200": _json(ref[PingOut], "Pong."), **common},
            }
        },
        "/hub/route_only": {
            "post": {
                "operationId": "route_only",
                "summary": "Select the specialist for a task (no execution)",
                "requestBody": task_body,
                "responses": {
                    "200": _json(ref[RouteOut], "The selected specialist, its score, rationale and runners-up."),
                    "400": _json(error, "The body is not a JSON object."),
                    "422": invalid_or_paused,
                    "503": _json(error, "No specialists are loaded."),
                    **common,
                },
            }
        },
        "/hub/run_task": {
            "post": {
                "operationId": "run_task",
                "summary": "Route the task and run the specialist",
                "description": "Idempotent on `task_id`: the same body again answers the same task; a different body is 409.",
                "requestBody": task_body,
                "responses": {
                    "202": _json(ref[RunTaskOut], "Accepted: the specialist runs; follow `status_url`."),
                    "200": _json(ref[RunTaskOut], "The same task_id and body again: the recorded task."),
                    "400": _json(error, "The body is not a JSON object."),
                    "409": _json(error, "task_id is already used by a different task."),
                    "413": _json(error, "The body is too large."),
                    "422": invalid_or_paused,
                    "503": _json(error, "No specialists are loaded."),
                    **common,
                },
            }
        },
        "/hub/tasks/{task_id}": {
            "get": {
                "operationId": "task_status",
                "summary": "A task's status and, when done, its answer, final report and continuation",
                "parameters": [
                    {"name": "task_id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": TASK_ID_PATTERN}}
                ],
                "responses": {
                    "200": _json(ref[TaskStatusOut], "The task."),
                    "404": _json(error, "No such task in the token's project."),
                    **common,
                },
            }
        },
        "/hub/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Maestro orchestrator hub",
            "version": "1.0.0",
            "description": (
                "Route tasks to Maestro's specialists and run them (SPEC §10). Every call carries a project API "
                "token (`Authorization: Bearer …`); every task carries a PRD id or link."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "A project API token."}},
        },
    }
