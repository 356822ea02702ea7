"""The typed contracts of a design: brief, proposal (and the changes specialists propose),
plan items, and the one structured output every provider returns.

The same pydantic models give the JSON schema sent to the LLM adapters (Anthropic tool input,
OpenAI ``response_format``) and validate what comes back, so a reply that does not fit is a
clear error on the contribution instead of a half-read design.
"""

from __future__ import annotations

import copy
import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Change = Literal["add", "change", "remove"]
Mode = Literal["sync", "async"]
AuthorKind = Literal["maestro", "specialist", "user"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- the brief -----------------------------------------------------------------------------


class Capability(_Strict):
    key: str  # catalogue pattern key, e.g. "payments"
    label: str
    matched: list[str] = Field(default_factory=list)  # the words of the requirement/PRD that matched


class ImpliedService(_Strict):
    name: str
    kind: str = "service"
    responsibility: str = ""
    capability: str = ""
    exists: bool = False  # the inventory already has a service by this name (then it is changed)


class TouchedService(_Strict):
    name: str  # as in the inventory
    term: str  # the word of the requirement/PRD that named it
    source: str  # requirement | prd | capability


class Constraint(_Strict):
    kind: Literal["latency", "throughput", "availability", "retention", "compliance"]
    value: str  # "100 ms", "200 orders/min", "99.9%", "7 years", "PCI DSS"
    number: float | None = None
    unit: str = ""
    source: str  # requirement | prd | project
    text: str = ""  # the sentence it came from


class Conflict(_Strict):
    kind: str  # constraint | existing_service | inventory
    text: str


class Brief(_Strict):
    requirement: str
    prd_reference: str = ""
    capabilities: list[Capability] = Field(default_factory=list)
    new_services: list[ImpliedService] = Field(default_factory=list)
    touched_services: list[TouchedService] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)  # unknowns, asked of the USER


# -- the proposal --------------------------------------------------------------------------


class ServiceChange(_Strict):
    name: str = Field(min_length=1, max_length=80)
    change: Change = "add"
    kind: str = "service"
    responsibility: str = ""
    store: str = ""  # the data store it owns, e.g. "payments-db (postgres)"


class EdgeChange(_Strict):
    source: str = Field(min_length=1, max_length=80)
    target: str = Field(min_length=1, max_length=80)
    protocol: str = Field(default="REST", max_length=40)  # REST, gRPC, AMQP, Kafka, SQL, webhook, ...
    mode: Mode = "sync"
    change: Change = "add"
    purpose: str = ""


class EventContract(_Strict):
    name: str = Field(min_length=1, max_length=120)  # e.g. "payment.completed"
    producer: str
    consumers: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
    change: Change = "add"


class DataOwnership(_Strict):
    data: str
    owner: str


class ProposalChanges(_Strict):
    """What one specialist (or the user, or the Maestro) proposes to change."""

    services: list[ServiceChange] = Field(default_factory=list)
    edges: list[EdgeChange] = Field(default_factory=list)
    events: list[EventContract] = Field(default_factory=list)
    data_ownership: list[DataOwnership] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.services or self.edges or self.events or self.data_ownership or self.risks)


class ProposalContent(ProposalChanges):
    """A whole proposal: the merged changes against the current cluster."""


class PlanItem(_Strict):
    order: int = 0  # set by the Maestro when it merges the plan
    specialist: str = ""  # specialist slug, or "user"
    service: str = ""
    task: str = Field(min_length=1, max_length=400)
    depends_on: list[int] = Field(default_factory=list)  # orders of earlier items
    acceptance: str = ""
    key: str = ""  # a stable id within the plan (e.g. "contracts:payments"); depends_on_keys resolve to orders
    depends_on_keys: list[str] = Field(default_factory=list)


class StructuredPosition(_Strict):
    question: str  # the key question's ref, e.g. "Q1"
    option: str  # one of its options, verbatim
    rationale: str = ""
    evidence: list[str] = Field(default_factory=list)  # rule ids, brief items, inventory facts


class StructuredFinding(_Strict):
    title: str
    detail: str = ""
    severity: Literal["info", "warning", "critical"] = "info"
    services: list[str] = Field(default_factory=list)
    rule: str = ""


class SpecialistOutput(_Strict):
    """The structured part of every contribution, whatever the provider."""

    summary: str = ""
    findings: list[StructuredFinding] = Field(default_factory=list)
    positions: list[StructuredPosition] = Field(default_factory=list)
    proposal_changes: ProposalChanges = Field(default_factory=ProposalChanges)
    plan_items: list[PlanItem] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)  # integration checks (Integration Validation)


def specialist_output_schema() -> dict:
    """JSON schema of :class:`SpecialistOutput`, inlined (no ``$ref``) for vendors that want it flat.
    Built once per process (pydantic takes ~20 ms); each caller gets its own copy."""
    return copy.deepcopy(_output_schema())


@functools.cache
def _output_schema() -> dict:
    schema = SpecialistOutput.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(dict(defs[node["$ref"].split("/")[-1]]))
            return {k: inline(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)
