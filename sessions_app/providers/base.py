"""The provider contract: one specialist call = (specialist, brief, grounded context) -> reply.

Adapters (one module each: ``rules``, ``anthropic``, ``openai``) subclass :class:`Provider`.
``run`` is synchronous and may block on network I/O (it runs inside a Celery worker thread);
it calls ``on_delta`` with each piece of text as it arrives, in order, and returns the whole
reply. It raises :class:`ProviderError` and nothing else for expected failures; ``transient``
says whether a retry can help (429, 5xx, timeouts, connection errors).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from teams_app.inventory.types import Finding, ParsedInventory

DeltaCallback = Callable[[str], None]

# Markdown emphasis, code ticks and straight or curly quotes around a reply's words.
MARKUP = " \t\r\n`*_\"'“”‘’"
_OPTION_INDEX = re.compile(r"^(?:option\s*)?(?:(?P<num>\d+)|(?P<letter>[a-z]))[.)]?$", re.IGNORECASE)


@dataclass
class KeyQuestionBrief:
    """A key question specialists take a position on (Integration Design)."""

    ref: str  # short id such as "Q1"
    text: str
    options: list[str]
    # What in the brief, the inventory or the findings favours an option, per analysis role:
    # {"security": {"option": 0, "why": "PCI DSS in the constraints", "evidence": ["brief:PCI"]}}.
    grounds: dict[str, dict[str, Any]] = field(default_factory=dict)


def _option_norm(text: str) -> str:
    return " ".join(text.strip(MARKUP).rstrip(".").strip(MARKUP).lower().split())


def match_option(answer: str, options: list[str]) -> str | None:
    """The listed option a stated one means, or None when it names none of them for certain.

    Case, surrounding quotes and markup, a final full stop and runs of spaces do not count. A
    number or letter ("2", "b", "option 2", "B)") picks by position, and one outside the list
    picks nothing. Otherwise the answer must contain exactly one option or be part of exactly
    one ("REST" for "Call billing over REST"); an answer found in two options is ambiguous.
    """
    wanted = _option_norm(answer)
    if not wanted:
        return None
    for option in options:
        if _option_norm(option) == wanted:
            return option
    indexed = _OPTION_INDEX.match(wanted)
    if indexed:
        index = int(indexed["num"]) - 1 if indexed["num"] else ord(indexed["letter"].lower()) - ord("a")
        return options[index] if 0 <= index < len(options) else None
    containing = [o for o in options if (norm := _option_norm(o)) and (wanted in norm or norm in wanted)]
    return containing[0] if len(containing) == 1 else None


@dataclass
class ProviderRequest:
    specialist_slug: str
    specialist_name: str
    system_prompt: str
    brief: str  # the Maestro's Agent Deployment brief for this specialist
    context: str  # grounded context as text: project, inventory summary, PRD, synthesis, user messages
    focus: list[str] = field(default_factory=list)  # analysis roles the specialist draws on
    findings: list[Finding] = field(default_factory=list)  # rules findings for those roles
    key_questions: list[KeyQuestionBrief] = field(default_factory=list)
    model: str = ""
    max_tokens: int = 2048
    timeout: float = 120.0
    # The design so far (SPEC §3a), for every provider: the round's kind, the structured brief
    # (schema.Brief as a dict), the current proposal (schema.ProposalContent) and its version,
    # the user feedback this round answers, the rule ids already reported in earlier rounds
    # (cite them, do not repeat them) and the team ({"slug", "name", "focus"}) for plan ownership.
    round_kind: str = ""
    design_brief: dict[str, Any] = field(default_factory=dict)
    proposal: dict[str, Any] = field(default_factory=dict)
    proposal_version: int = 0
    feedback: list[str] = field(default_factory=list)
    reported_rules: list[str] = field(default_factory=list)
    team: list[dict[str, Any]] = field(default_factory=list)
    # The inventory and all its findings, for the rule-based designer (LLM adapters send the
    # text of ``context`` instead).
    inventory: ParsedInventory | None = None
    cluster_findings: list[Finding] = field(default_factory=list)


@dataclass
class Position:
    question: str  # KeyQuestionBrief.ref
    option: str
    rationale: str = ""
    evidence: list[str] = field(default_factory=list)


@dataclass
class ProviderResult:
    text: str  # markdown reply
    provider: str
    model: str
    findings: list[dict[str, Any]] = field(default_factory=list)  # {"title", "detail", "severity", "services"}
    positions: list[Position] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0  # USD
    summary: str = ""  # one paragraph, when the provider gives one
    proposal_changes: dict[str, Any] = field(default_factory=dict)  # schema.ProposalChanges
    plan_items: list[dict[str, Any]] = field(default_factory=list)  # schema.PlanItem
    checks: list[str] = field(default_factory=list)  # integration checks


class ProviderError(Exception):
    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class Provider:
    name: str = ""
    label: str = ""  # shown in the UI, e.g. "rule-based analysis"

    def run(self, request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
        raise NotImplementedError
