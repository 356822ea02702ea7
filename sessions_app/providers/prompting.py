"""The prompt both LLM adapters send, and the reading of what comes back.

Prompt and parser live together because they are two halves of one contract: the prompt asks
for a markdown reply (headings, ``position: Q1 -> option because reason`` lines) plus a
structured part in the shape of :class:`~sessions_app.design.schema.SpecialistOutput`; this
module validates that part, maps it onto :class:`ProviderResult` fields, and reads findings and
positions from the text when a model gives no structured part at all.

The user message is built from the request only, in a fixed order and without timestamps, so
the same request always gives the same prompt (vendors cache a stable prefix, and tests can
assert on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from sessions_app.design.schema import SpecialistOutput
from sessions_app.providers import vendor
from sessions_app.providers.base import (
    MARKUP,
    DeltaCallback,
    KeyQuestionBrief,
    Position,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    match_option,
)
from teams_app.inventory.types import ROLE_LABELS, Finding

REPLY_HEADINGS: tuple[str, ...] = (
    "## Findings",
    "## Recommendations",
    "## Open questions",
)
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SCHEMA_ERROR = "The model's structured output did not match the design schema"

_INSTRUCTIONS = """\
## How to answer in this Maestro design session
- Design before development: analyse and propose a design; do not write implementation code.
- Ground every statement in the context you are given. Do not invent endpoints, events, topics, \
services or fields that the inventory does not declare; when the design needs one, say that it \
is new and propose it explicitly.
- Follow the cluster's established patterns unless you justify a deviation.
- Reply in markdown with exactly these headings, in this order: `## Findings`, \
`## Recommendations`, `## Open questions`. Under `## Findings`, one bullet per finding, \
starting with its severity in brackets: [info], [warning] or [critical].
- When key questions are listed, end with a `## Positions` heading and one line per question, \
exactly: `position: <ref> -> <option> because <reason>`, copying the option verbatim from the \
listed options."""

_STRUCTURED_FIELDS = """\
`summary` (one paragraph), `findings` (new ones only; `rule` is the rule id when one applies), \
`positions` (`question` ref, `option` verbatim, `rationale`, `evidence`: rule ids, brief items or \
inventory facts), `proposal_changes` (`services`, `edges`, `events`, `data_ownership`, `risks`: \
only what you propose to add, change or remove against the current proposal), `plan_items` \
(`specialist` is a team slug, `service` a service name, `task`, `acceptance`; a stable `key` such \
as "contracts:payments" and the keys it depends on in `depends_on_keys`) and `checks` \
(integration checks). Fill what this round asks for and leave the rest empty."""

_TOOL_INSTRUCTION = (
    "- After the markdown text, call the `{tool}` tool exactly once with the structured part of the "
    "same contribution: " + _STRUCTURED_FIELDS + " Always write the text first."
)

_JSON_INSTRUCTION = (
    "- Answer with one JSON object and nothing around it. Its `{field}` field holds the whole markdown "
    "reply described above; the other fields hold its structured part: " + _STRUCTURED_FIELDS + " "
    "Write `{field}` first."
)

# What each round kind must produce (the seed's Phases 2 to 5), said once in the prompt so that
# rounds build on each other instead of repeating the analysis.
ROUND_TASKS: dict[str, tuple[str, str]] = {
    "analysis": (
        "Pattern Discovery",
        "report your findings once, each with its rule id where one applies; no proposal changes yet.",
    ),
    "discussion": (
        "Discussion",
        "take or revise one position per open key question, with evidence; cite findings by rule id.",
    ),
    "design": (
        "Integration Design",
        "proposal changes (service boundaries, edges with protocol and sync/async, event contracts, "
        "data ownership, risks) and one position per key question with its evidence.",
    ),
    "consensus": (
        "Consensus",
        "confirm or contest the merged proposal; name any change you still need as a proposal change.",
    ),
    "planning": (
        "Implementation Planning",
        "plan items: ordered tasks for you and per service (service template, API contracts, container "
        "configs, network isolation, event schemas, USER review of the API), each with dependencies and "
        "an acceptance check.",
    ),
    "validation": (
        "Integration Validation",
        "checks: an integration test checklist derived from the proposal (can the flow be started via "
        "the API, do events arrive, do failures compensate); findings only for gaps in the proposal.",
    ),
    "follow_up": (
        "Follow-up",
        "proposal changes that answer the user feedback below (new events, steps, edges or services); "
        "say what changes and why, and keep the rest of the proposal as it is.",
    ),
}


def build_messages(
    request: ProviderRequest,
    *,
    tool_name: str | None = None,
    json_field: str | None = None,
) -> tuple[str, str]:
    """(system, user) for one specialist call.

    ``tool_name`` asks for the structured part as a call of that tool after the text;
    ``json_field`` asks for one JSON object whose ``json_field`` holds the markdown text.
    """
    instructions = _INSTRUCTIONS
    if tool_name:
        instructions += "\n" + _TOOL_INSTRUCTION.format(tool=tool_name)
    elif json_field:
        instructions += "\n" + _JSON_INSTRUCTION.format(field=json_field)
    system_prompt = request.system_prompt.strip()
    system = f"{system_prompt}\n\n{instructions}" if system_prompt else instructions

    parts = [
        request.brief.strip(),
        request.context.strip(),
        _round_block(request),
        _design_brief_block(request.design_brief),
        _proposal_block(request),
        _feedback_block(request.feedback),
        _findings_block(request),
        _questions_block(request.key_questions),
        _team_block(request.team),
    ]
    user = "\n\n".join(part for part in parts if part)
    return system, user


def repair_instruction(detail: str, *, tool_name: str | None = None) -> str:
    """What the second request says after a structured part that did not validate."""
    how = (
        f"Call `{tool_name}` again with the corrected input."
        if tool_name
        else "Send the structured part again as one corrected JSON object, without the `text` field."
    )
    return (
        f"Your structured output did not match the design schema: {detail}. {how} "
        "Do not rewrite the markdown text: it has been shown already."
    )


# ---------------------------------------------------------------------------- prompt blocks


def _round_block(request: ProviderRequest) -> str:
    if not request.round_kind:
        return ""
    title, task = ROUND_TASKS.get(request.round_kind, (request.round_kind.replace("_", " ").title(), ""))
    line = f"## This round: {title}"
    return f"{line}\nIt must produce: {task}" if task else line


def _design_brief_block(brief: dict[str, Any]) -> str:
    if not brief:
        return ""
    lines = ["## Design brief"]
    if brief.get("requirement"):
        lines.append(f"Requirement: {brief['requirement']}")
    if brief.get("prd_reference"):
        lines.append(f"PRD: {brief['prd_reference']}")
    capabilities = [
        f"{c.get('label') or c.get('key')}" + (f" ({', '.join(c['matched'])})" if c.get("matched") else "")
        for c in brief.get("capabilities") or []
    ]
    if capabilities:
        lines.append("Capabilities: " + "; ".join(capabilities))
    _section(
        lines,
        "New services implied",
        [
            f"{s.get('name')} ({s.get('kind') or 'service'})"
            + (f": {s['responsibility']}" if s.get("responsibility") else "")
            + (" [already in the inventory: a change, not a new service]" if s.get("exists") else "")
            for s in brief.get("new_services") or []
        ],
    )
    _section(
        lines,
        "Existing services touched",
        [
            f'{s.get("name")} ("{s.get("term")}", from the {s.get("source")})'
            for s in brief.get("touched_services") or []
        ],
    )
    _section(
        lines,
        "Constraints",
        [
            f"{c.get('kind')}: {c.get('value')} (from the {c.get('source')})"
            + (f': "{c["text"]}"' if c.get("text") else "")
            for c in brief.get("constraints") or []
        ],
    )
    _section(lines, "Conflicts", [f"{c.get('kind')}: {c.get('text')}" for c in brief.get("conflicts") or []])
    _section(lines, "Questions for the USER (do not guess the answers)", list(brief.get("questions") or []))
    return "\n".join(lines)


def _proposal_block(request: ProviderRequest) -> str:
    proposal = request.proposal
    if not proposal and not request.proposal_version:
        return ""
    title = f"## Current proposal (version {request.proposal_version})"
    if not any(proposal.get(key) for key in ("services", "edges", "events", "data_ownership", "risks")):
        return f"{title}\nNo changes yet: the cluster as it is."
    lines = [title]
    lines += _changes_lines(proposal)
    return "\n".join(lines)


def _changes_lines(changes: dict[str, Any]) -> list[str]:
    """Proposal changes as compact lines; shared by the prompt and the rendered reply."""
    lines: list[str] = []
    for title, key, line in _CHANGE_SECTIONS:
        _section(lines, title, [line(item) for item in changes.get(key) or []])
    return lines


def _optional(prefix: str, value: object) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return f"{prefix}{value}" if value else ""


def _service_line(s: dict[str, Any]) -> str:
    head = f"{s.get('change', 'add')} {s.get('name')} ({s.get('kind') or 'service'})"
    return head + _optional(": ", s.get("responsibility")) + _optional("; owns ", s.get("store"))


def _edge_line(e: dict[str, Any]) -> str:
    route = f"{e.get('source')} -> {e.get('target')} {e.get('protocol') or 'REST'} {e.get('mode') or 'sync'}"
    return f"{e.get('change', 'add')} {route}" + _optional(": ", e.get("purpose"))


def _event_line(e: dict[str, Any]) -> str:
    consumers = ", ".join(e.get("consumers") or []) or "no consumer yet"
    return f"{e.get('change', 'add')} {e.get('name')}: {e.get('producer')} -> {consumers}" + _optional(
        "; fields ", e.get("fields")
    )


_CHANGE_SECTIONS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Services", "services", _service_line),
    ("Edges", "edges", _edge_line),
    ("Events", "events", _event_line),
    ("Data ownership", "data_ownership", lambda d: f"{d.get('data')}: {d.get('owner')}"),
    ("Risks", "risks", str),
)


def _section(lines: list[str], title: str, items: list[str]) -> None:
    if items:
        lines.append(f"{title}:")
        lines.extend(f"- {item}" for item in items)


def _feedback_block(feedback: list[str]) -> str:
    items = [f.strip() for f in feedback if f and f.strip()]
    if not items:
        return ""
    return "\n".join(["## User feedback this round answers", *(f"- {item}" for item in items)])


def _findings_block(request: ProviderRequest) -> str:
    focus = ", ".join(ROLE_LABELS.get(role, role) for role in request.focus) or "all roles"
    reported = set(request.reported_rules)
    fresh = [f for f in request.findings if f.rule not in reported]
    lines = [f"## Rule-based findings for your focus ({focus})"]
    if not request.findings:
        lines.append("- none: the rule-based analysis found nothing for this focus")
    for finding in fresh:
        lines.append(f"- {format_finding(finding)}")
    if request.reported_rules:
        lines.append(
            "Already reported in earlier rounds (cite them by id, do not repeat them): " + ", ".join(sorted(reported))
        )
    return "\n".join(lines)


def format_finding(finding: Finding) -> str:
    services = ", ".join(finding.services) or "cluster-wide"
    return f"[{finding.severity}] {finding.rule} ({services}): {finding.why}"


def _questions_block(questions: list[KeyQuestionBrief]) -> str:
    if not questions:
        return ""
    lines = ["## Key questions (take one position per question, with its evidence)"]
    for question in questions:
        lines.append(f"{question.ref}: {question.text}")
        for option in question.options:
            lines.append(f"  - option: {option}")
        for role in sorted(question.grounds):
            lines.append(f"  - grounds ({ROLE_LABELS.get(role, role)}): {_ground(question, question.grounds[role])}")
    return "\n".join(lines)


def _ground(question: KeyQuestionBrief, ground: dict[str, Any]) -> str:
    option = ground.get("option")
    if isinstance(option, int) and 0 <= option < len(question.options):
        option = question.options[option]
    text = f'favours "{option}"' if option not in (None, "") else "no preference"
    if ground.get("why"):
        text += f": {ground['why']}"
    if ground.get("evidence"):
        text += f" [{', '.join(str(e) for e in ground['evidence'])}]"
    return text


def _team_block(team: list[dict[str, Any]]) -> str:
    if not team:
        return ""
    lines = ["## Team (plan items name their owner by slug)"]
    for member in team:
        focus = member.get("focus") or []
        focus_text = ", ".join(focus) if isinstance(focus, list) else str(focus)
        lines.append(f"- {member.get('slug')}: {member.get('name')}" + (f" ({focus_text})" if focus_text else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- structured part


class InvalidStructuredOutput(Exception):
    """The structured part is there but does not fit the schema; ``detail`` names where."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def validate_structured(raw: object) -> SpecialistOutput:
    try:
        return SpecialistOutput.model_validate(raw)
    except ValidationError as exc:
        raise InvalidStructuredOutput(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """``field.path: message`` of the first error, and how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"]) or "(root)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {first['msg']}{more}"


def structured_error(detail: str) -> ProviderError:
    # Permanent: the adapter has already asked once more; another identical call is unlikely
    # to fit better, and a retry by Celery would show the text a second time.
    return ProviderError(f"{SCHEMA_ERROR}: {detail}", transient=False)


class Attempt(Protocol):
    """One request's reply as an adapter has read it."""

    text: str  # the markdown shown to people, as it was streamed
    stop_reason: str | None
    model: str  # as the vendor reported it
    tokens_in: int
    tokens_out: int

    def structured(self) -> SpecialistOutput | None:
        """The validated structured part, None when there is none; raises InvalidStructuredOutput."""
        ...


def settle_reply(
    *,
    provider: str,
    first: Attempt,
    repair: Callable[[str, DeltaCallback], Attempt],
    on_delta: DeltaCallback,
    request: ProviderRequest,
    prices: Mapping[str, tuple[float, float]],
) -> ProviderResult:
    """The result of a call whose first reply is ``first``, after at most one repair request.

    ``repair(detail, on_delta)`` makes the second request when the structured part did not
    validate. Its text is streamed only when the first showed none, so people never see a
    contribution written twice, and the text returned is the text shown. A reply with a
    structured part and no text is rendered from that part. Usage adds up both requests.
    """
    attempts = [first]
    try:
        output = first.structured()
    except InvalidStructuredOutput as invalid:
        second = repair(invalid.detail, _discard if first.text.strip() else on_delta)
        attempts.append(second)
        try:
            output = second.structured()
        except InvalidStructuredOutput as again:
            raise structured_error(again.detail) from None
        if output is None:
            raise structured_error(invalid.detail) from None

    text = next((a.text for a in attempts if a.text.strip()), "")
    if not text.strip():
        # The model went straight to the structured part: the contribution still needs text.
        if output is None or output == SpecialistOutput():
            raise vendor.empty_error(provider, attempts[-1].stop_reason)
        text = render_structured(output)
        on_delta(text)
    tokens_in = sum(a.tokens_in for a in attempts)
    tokens_out = sum(a.tokens_out for a in attempts)
    model = attempts[-1].model
    return ProviderResult(
        text=text,
        provider=provider,
        model=model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=vendor.price(model, tokens_in, tokens_out, prices),
        **result_fields(output, text, request.key_questions),
    )


def _discard(_: str) -> None:
    pass


def result_fields(output: SpecialistOutput | None, text: str, questions: list[KeyQuestionBrief]) -> dict[str, Any]:
    """The :class:`ProviderResult` fields that come from the reply's content.

    Without a structured part, findings and positions are read from the text and the
    proposal changes are empty; positions missing from the structured part are taken from the
    text too, so a model that only wrote ``position:`` lines is still heard.
    """
    structured = output or SpecialistOutput()
    findings = [_finding_dict(f) for f in structured.findings]
    positions = _structured_positions(structured, questions)
    known = {p.question for p in positions}
    positions += [p for p in parse_positions(text, questions) if p.question not in known]
    return {
        "findings": findings or parse_findings(text),
        "positions": positions,
        "summary": structured.summary.strip(),
        "proposal_changes": structured.proposal_changes.model_dump(),
        "plan_items": [item.model_dump() for item in structured.plan_items],
        "checks": [check.strip() for check in structured.checks if check.strip()],
    }


def _finding_dict(finding: Any) -> dict[str, Any]:
    data = {
        "title": finding.title.strip() or finding.detail.strip()[:120],
        "detail": finding.detail.strip(),
        "severity": finding.severity,
        "services": [s.strip() for s in finding.services if s.strip()],
    }
    if finding.rule.strip():
        data["rule"] = finding.rule.strip()
    return data


def _structured_positions(output: SpecialistOutput, questions: list[KeyQuestionBrief]) -> list[Position]:
    by_ref = {q.ref.lower(): q for q in questions}
    positions: list[Position] = []
    seen: set[str] = set()
    for item in output.positions:
        ref, option = item.question.strip(), item.option.strip()
        question = by_ref.get(ref.lower())
        if not ref or not option or ref.lower() in seen or (questions and question is None):
            continue
        seen.add(ref.lower())
        positions.append(
            Position(
                question=question.ref if question else ref,
                option=(match_option(option, question.options) or option) if question else option,
                rationale=item.rationale.strip(),
                evidence=[e.strip() for e in item.evidence if e.strip()],
            )
        )
    return positions


def render_structured(output: SpecialistOutput) -> str:
    """Markdown in the reply format from the structured part alone (a model that skipped the text)."""
    lines: list[str] = []
    if output.summary.strip():
        lines += [output.summary.strip(), ""]
    lines += ["## Findings", ""]
    for finding in output.findings:
        data = _finding_dict(finding)
        services = f" ({', '.join(data['services'])})" if data["services"] else ""
        detail = f": {data['detail']}" if data["detail"] and data["detail"] != data["title"] else ""
        lines.append(f"- [{data['severity']}] {data['title']}{services}{detail}")
    if not output.findings:
        lines.append("- none reported")
    changes = _changes_lines(output.proposal_changes.model_dump())
    if changes:
        lines += ["", "## Proposed changes", "", *changes]
    if output.plan_items:
        lines += ["", "## Plan", ""]
        for number, item in enumerate(output.plan_items, 1):
            owner = " / ".join(part for part in (item.specialist, item.service) if part)
            after = f" (after {', '.join(item.depends_on_keys)})" if item.depends_on_keys else ""
            done = f"; done when {item.acceptance}" if item.acceptance else ""
            lines.append(f"{number}. {item.task}" + (f" [{owner}]" if owner else "") + after + done)
    if output.checks:
        lines += ["", "## Integration checks", "", *(f"- [ ] {check}" for check in output.checks)]
    if output.positions:
        lines += ["", "## Positions"]
        for item in output.positions:
            because = f" because {item.rationale.strip()}" if item.rationale.strip() else ""
            lines += ["", f"position: {item.question} -> {item.option}{because}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reply parsing

_POSITION_LINE = re.compile(
    r"^[\s>*_`\-]*position[\s*_]*:[\s*_`]*(?P<ref>[^\s*_`:]+?)[\s*_`]*:?\s*"
    r"(?:->|→|=>)\s*(?P<rest>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_BECAUSE = re.compile(r"\s+because\b[\s:,]*", re.IGNORECASE)


def parse_positions(text: str, questions: list[KeyQuestionBrief]) -> list[Position]:
    """Positions from ``position: Q1 -> option because reason`` lines, first one per question.

    With key questions given, only their refs count and options are matched to the listed
    wording when the reply paraphrases or numbers them; an unmatched option is kept verbatim.
    """
    by_ref = {q.ref.lower(): q for q in questions}
    seen: set[str] = set()
    positions: list[Position] = []
    for match in _POSITION_LINE.finditer(text):
        ref = match.group("ref").strip(MARKUP)
        key = ref.lower()
        question = by_ref.get(key)
        if (questions and question is None) or key in seen:
            continue
        option_text, _, rationale = _split_because(match.group("rest"))
        option = option_text.strip(MARKUP).rstrip(".;,").strip(MARKUP)
        if not option:
            continue
        seen.add(key)
        positions.append(
            Position(
                question=question.ref if question else ref,
                option=(match_option(option, question.options) or option) if question else option,
                rationale=rationale.strip().rstrip("."),
            )
        )
    return positions


def _split_because(rest: str) -> tuple[str, str, str]:
    found = _BECAUSE.search(rest)
    if not found:
        return rest, "", ""
    return rest[: found.start()], found.group(0), rest[found.end() :]


_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+(?P<body>.+)$")
_SEV = r"info|warning|critical|low|medium|high"
# Only a marked severity counts ("[warning]", "(high)", "**critical**", "warning:"), so that a
# finding that merely starts with such a word ("Critical path ...") keeps it.
_SEVERITY_TAG = re.compile(
    rf"^[\s*_`]*(?:\[\s*(?P<a>{_SEV})\s*\]|\(\s*(?P<b>{_SEV})\s*\)|(?P<c>{_SEV})(?:[*_`]+|\s*[:\-—–]))"
    r"[\s*_`]*[:\-—–]?\s*",
    re.IGNORECASE,
)
_SEVERITY_ALIASES = {"low": "info", "medium": "warning", "high": "critical"}
_TITLE_BREAK = re.compile(r"\s(?:—|–|-)\s|:\s|\.\s")


def parse_findings(text: str) -> list[dict[str, Any]]:
    """Findings from the top-level bullets under a ``## Findings`` heading (best effort)."""
    findings: list[dict[str, Any]] = []
    inside = False
    for line in text.splitlines():
        heading = _HEADING.match(line.strip())
        if heading:
            inside = heading["title"].strip(MARKUP).lower() == "findings"
            continue
        if not inside or line[:1].isspace():
            continue
        bullet = _BULLET.match(line.strip())
        if not bullet:
            continue
        body = bullet["body"].strip()
        severity = "info"
        tag = _SEVERITY_TAG.match(body)
        if tag:
            word = (tag["a"] or tag["b"] or tag["c"]).lower()
            severity = _SEVERITY_ALIASES.get(word, word)
            body = body[tag.end() :]
        plain = body.replace("**", "").replace("__", "").strip()
        if not plain:
            continue
        split = _TITLE_BREAK.search(plain)
        title = plain[: split.start()] if split and split.start() > 0 else plain
        findings.append(
            {
                "title": title.strip()[:200],
                "detail": plain,
                "severity": severity,
                "services": [],
            }
        )
    return findings
