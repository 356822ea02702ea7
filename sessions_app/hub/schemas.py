"""The hub's wire types: the task object (seed payload), the assist tools' parameters and every
response. One set of pydantic models serves the HTTP endpoints, the MCP tools' input schemas and
the OpenAPI document, so the three cannot drift apart."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from teams_app.models import AREAS

Area = Literal["dev", "cluster", "migration", "content", "db", "ui", "edge", "infra"]
if set(Area.__args__) != set(AREAS):  # one list of areas: teams_app.models.AREAS
    raise ImportError("sessions_app.hub.schemas.Area differs from teams_app.models.AREAS")

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# A PRD id or link (teams_app.models.PRD_REFERENCE), or blank: a blank PRD is not malformed, it
# pauses the task and asks for one (the PRD guard).
PRD_PATTERN = r"^\s*(?:(?:PRD-[A-Za-z0-9][A-Za-z0-9._-]{0,40}|https?://\S{3,500})\s*)?$"

PRD_QUESTION = "What PRD id/link should we attach?"
INVALID_BODY = "The task object has invalid fields."
NOT_JSON = "The body must be a JSON object."
FIELD_MESSAGES = {
    ("task_id", "string_pattern_mismatch"): (
        "Use 1–128 letters, digits, dots, colons, dashes or underscores, starting with a letter or digit."
    ),
    ("prd", "string_pattern_mismatch"): "Use a PRD id such as PRD-123 or an http(s) link.",
    ("area", "literal_error"): "Use one of: " + ", ".join(AREAS) + ".",
}

BAD_TEXT = "Use text without NUL characters or invalid Unicode."


def _storable(value: str) -> str:
    """Text the databases can store: no NUL (PostgreSQL rejects it) and no lone surrogates."""
    if "\x00" in value:
        raise ValueError(BAD_TEXT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(BAD_TEXT) from None
    return value


Storable = AfterValidator(_storable)
TaskId = Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN)]
Hint = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Storable]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------------


class TaskIn(Strict):
    """The seed's task object: `{"task_id", "area", "summary", "hints", "prd"}`."""

    model_config = ConfigDict(extra="forbid", title="Task")

    task_id: TaskId = Field(description="Unique per project; the same task_id again is the same task.")
    area: Area
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Storable] = Field(
        description="One short task sentence."
    )
    hints: list[Hint] = Field(default_factory=list, max_length=20, description="Keywords that help routing.")
    prd: Annotated[str, StringConstraints(max_length=512, pattern=PRD_PATTERN), Storable] | None = Field(
        default=None,
        description="PRD id (PRD-123) or link. Missing or blank pauses the task and asks for one.",
    )

    @field_validator("prd")
    @classmethod
    def _blank_prd_is_missing(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None

    def body_hash(self) -> str:
        """SHA-256 of the canonical task object: what makes a repeated task_id the same task."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


FreeText = Annotated[str, StringConstraints(max_length=20_000), Storable]
TextOrList = FreeText | list[Annotated[str, StringConstraints(max_length=500), Storable]]


class AssistIn(Strict):
    """Parameters every ``*_assist`` tool takes (seed: `context` required; `title`, `files`, `tags`,
    `project` optional metadata)."""

    context: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000), Storable] = Field(
        description="The full context: requirements, environment, what is known so far."
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Storable] | None = None
    files: TextOrList | None = Field(default=None, description="Relevant files (comma-separated or a list).")
    tags: TextOrList | None = Field(default=None, description="Tags (comma-separated or a list).")
    project: Annotated[str, StringConstraints(max_length=200), Storable] | None = Field(
        default=None, description="The caller's project name; the hub answers within the project it is bound to."
    )

    def metadata_lines(self) -> list[str]:
        lines = []
        for name in ("files", "tags", "project"):
            value = getattr(self, name)
            if isinstance(value, list):
                value = ", ".join(v for v in value if v.strip())
            if value and str(value).strip():
                lines.append(f"{name.capitalize()}: {str(value).strip()}")
        return lines


class DebugAssistIn(AssistIn):
    model_config = ConfigDict(extra="forbid", title="DebugAssist")

    error: FreeText | None = Field(default=None, description="The primary error message.")
    symptom: FreeText | None = Field(default=None, description="A brief description of the problem.")
    logs: Annotated[str, StringConstraints(max_length=100_000), Storable] | None = Field(default=None, description="Relevant log output.")


class ArchitectAssistIn(AssistIn):
    model_config = ConfigDict(extra="forbid", title="ArchitectAssist")


class DatabaseAssistIn(AssistIn):
    model_config = ConfigDict(extra="forbid", title="DatabaseAssist")


class UiAssistIn(AssistIn):
    model_config = ConfigDict(extra="forbid", title="UiAssist")

    component: Annotated[str, StringConstraints(max_length=300), Storable] | None = Field(
        default=None, description="The component's name or description."
    )


class TaskRef(Strict):
    """The MCP ``orchestrator.task_status`` parameters."""

    model_config = ConfigDict(extra="forbid", title="TaskRef")

    task_id: TaskId


class NoArguments(Strict):
    model_config = ConfigDict(extra="forbid", title="NoArguments")


# -- responses -----------------------------------------------------------------------------------


class Matched(Strict):
    area: str
    hints: list[str]
    summary: list[str]


class RouteChoice(Strict):
    specialist: str = Field(description="The specialist's agent file name, e.g. database-engineer.md.")
    name: str
    score: float
    rationale: str = Field(description="Which area, hint and summary terms matched.")
    matched: Matched


class RouteOut(RouteChoice):
    model_config = ConfigDict(extra="forbid", title="Route")

    task_id: str
    prd: str
    runners_up: list[RouteChoice] = Field(max_length=3)


class RunTaskOut(Strict):
    model_config = ConfigDict(extra="forbid", title="RunTaskAccepted")

    task_id: str
    status: str
    specialist: str
    task_url: str = Field(description="The task's page in the project (it opens the live session page).")
    session_url: str
    status_url: str


class TaskStatusOut(Strict):
    model_config = ConfigDict(extra="forbid", title="TaskStatus")

    task_id: str
    tool: str
    status: Literal["queued", "running", "done", "failed", "cancelled", "paused"]
    area: str
    summary: str
    hints: list[str]
    prd: str
    specialist: str
    score: float
    rationale: str
    runners_up: list[RouteChoice]
    created_at: str
    completed_at: str | None
    task_url: str
    session_url: str | None
    answer: str | None = Field(description="The specialist's answer (markdown), when done.")
    report: str | None = Field(description="The final report (markdown), when done.")
    continuation: str | None = Field(description="The continuation block.")
    cluster_view: str | None = Field(description="The ASCII cluster view.")
    brief: str | None = Field(default=None, description="An assist tool's rule-based brief (markdown).")


class HealthOut(Strict):
    model_config = ConfigDict(extra="forbid", title="Health")

    ok: bool
    database: str
    broker: str
    workers: str


class PingOut(Strict):
    model_config = ConfigDict(extra="forbid", title="Ping")

    ok: Literal[True]


class ErrorOut(Strict):
    model_config = ConfigDict(extra="forbid", title="Error")

    error: str
    fields: dict[str, str] = Field(default_factory=dict)


class PausedOut(Strict):
    model_config = ConfigDict(extra="forbid", title="Paused")

    status: Literal["paused"] = "paused"
    reason: Literal["prd_required"] = "prd_required"
    question: str = PRD_QUESTION
    latest_prd: str | None


# -- validation errors, for people -----------------------------------------------------------------


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"hints.3": "String should have at most 50 characters", ...}``: one message per field."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "body"
        if key in fields:
            continue
        message = FIELD_MESSAGES.get((loc[0] if loc else "", err["type"]), err["msg"])
        if err["type"] == "value_error":
            message = str(err.get("ctx", {}).get("error", message))
        if err["type"] == "extra_forbidden":
            message = "Unknown field."
        fields[key] = message
    return fields


_JSON_LIST = re.compile(r"^\s*\[")


def coerce_json_strings(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Some MCP clients send a list argument as a JSON string (``'["a", "b"]'``): decode those for
    fields that take lists, leave everything else for validation to judge."""
    out = dict(data)
    for name, field in model.model_fields.items():
        value = out.get(name)
        if isinstance(value, str) and "list" in repr(field.annotation) and _JSON_LIST.match(value):
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(decoded, list):
                out[name] = decoded
    return out
