"""The prompt both LLM adapters send, and the parser for the reply format it asks for.

Prompt and parser live together because they are two halves of one contract: the reply
headings and the ``position: Q1 -> option because reason`` lines requested here are what
:func:`parse_positions` and :func:`parse_findings` read back.
"""

from __future__ import annotations

import re
from typing import Any

from sessions_app.providers.base import KeyQuestionBrief, Position, ProviderRequest
from teams_app.inventory.types import ROLE_LABELS, Finding

REPLY_HEADINGS: tuple[str, ...] = (
    "## Findings",
    "## Recommendations",
    "## Open questions",
)
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

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

_TOOL_INSTRUCTION = """\
- After the markdown text, call the `{tool}` tool exactly once with the same content: a short \
summary, the findings and your positions. Always write the text first."""


def build_messages(request: ProviderRequest, *, tool_name: str | None = None) -> tuple[str, str]:
    """(system, user) for one specialist call. ``tool_name`` adds the structured-output step."""
    instructions = _INSTRUCTIONS
    if tool_name:
        instructions += "\n" + _TOOL_INSTRUCTION.format(tool=tool_name)
    system_prompt = request.system_prompt.strip()
    system = f"{system_prompt}\n\n{instructions}" if system_prompt else instructions

    parts = [request.brief.strip(), request.context.strip()]
    parts.append(_findings_block(request))
    if request.key_questions:
        parts.append(_questions_block(request.key_questions))
    user = "\n\n".join(part for part in parts if part)
    return system, user


def _findings_block(request: ProviderRequest) -> str:
    focus = ", ".join(ROLE_LABELS.get(role, role) for role in request.focus) or "all roles"
    lines = [f"## Rule-based findings for your focus ({focus})"]
    if not request.findings:
        lines.append("- none: the rule-based analysis found nothing for this focus")
    for finding in request.findings:
        lines.append(f"- {format_finding(finding)}")
    return "\n".join(lines)


def format_finding(finding: Finding) -> str:
    services = ", ".join(finding.services) or "cluster-wide"
    return f"[{finding.severity}] {finding.rule} ({services}): {finding.why}"


def _questions_block(questions: list[KeyQuestionBrief]) -> str:
    lines = ["## Key questions (take one position per question)"]
    for question in questions:
        lines.append(f"{question.ref}: {question.text}")
        for option in question.options:
            lines.append(f"  - option: {option}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reply parsing

_POSITION_LINE = re.compile(
    r"^[\s>*_`\-]*position[\s*_]*:[\s*_`]*(?P<ref>[^\s*_`:]+?)[\s*_`]*:?\s*"
    r"(?:->|→|=>)\s*(?P<rest>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_BECAUSE = re.compile(r"\s+because\b[\s:,]*", re.IGNORECASE)
_OPTION_INDEX = re.compile(r"^(?:option\s*)?(?:(?P<num>\d+)|(?P<letter>[a-z]))[.)]?$", re.IGNORECASE)
_STRIP = " \t`*_\"'“”‘’"


def parse_positions(text: str, questions: list[KeyQuestionBrief]) -> list[Position]:
    """Positions from ``position: Q1 -> option because reason`` lines, first one per question.

    With key questions given, only their refs count and options are matched to the listed
    wording when the reply paraphrases or numbers them; an unmatched option is kept verbatim.
    """
    by_ref = {q.ref.lower(): q for q in questions}
    seen: set[str] = set()
    positions: list[Position] = []
    for match in _POSITION_LINE.finditer(text):
        ref = match.group("ref").strip(_STRIP)
        key = ref.lower()
        question = by_ref.get(key)
        if (questions and question is None) or key in seen:
            continue
        option_text, _, rationale = _split_because(match.group("rest"))
        option = option_text.strip(_STRIP).rstrip(".;,").strip(_STRIP)
        if not option:
            continue
        seen.add(key)
        positions.append(
            Position(
                question=question.ref if question else ref,
                option=match_option(option, question.options) if question else option,
                rationale=rationale.strip().rstrip("."),
            )
        )
    return positions


def _split_because(rest: str) -> tuple[str, str, str]:
    found = _BECAUSE.search(rest)
    if not found:
        return rest, "", ""
    return rest[: found.start()], found.group(0), rest[found.end() :]


def match_option(option: str, options: list[str]) -> str:
    """The listed option a reply means, or the reply's own wording when none fits."""
    if not options:
        return option
    wanted = _norm(option)
    for candidate in options:
        if _norm(candidate) == wanted:
            return candidate
    indexed = _OPTION_INDEX.match(wanted)
    if indexed:
        index = int(indexed["num"]) - 1 if indexed["num"] else ord(indexed["letter"].lower()) - ord("a")
        if 0 <= index < len(options):
            return options[index]
    containing = [c for c in options if wanted and (wanted in _norm(c) or _norm(c) in wanted)]
    if len(containing) == 1:
        return containing[0]
    return option


def _norm(text: str) -> str:
    return " ".join(text.strip(_STRIP).lower().rstrip(".").split())


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
            inside = heading["title"].strip(_STRIP).lower() == "findings"
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


def clean_finding(raw: object) -> dict[str, Any] | None:
    """A structured finding from a model, coerced to the contract's shape, or None if unusable."""
    if not isinstance(raw, dict):
        return None
    title = str(raw.get("title") or "").strip()
    detail = str(raw.get("detail") or "").strip()
    if not title and not detail:
        return None
    severity = str(raw.get("severity") or "info").strip().lower()
    severity = _SEVERITY_ALIASES.get(severity, severity)
    if severity not in SEVERITIES:
        severity = "info"
    services_raw = raw.get("services")
    services = [str(s).strip() for s in services_raw if str(s).strip()] if isinstance(services_raw, list) else []
    return {
        "title": title or detail[:120],
        "detail": detail,
        "severity": severity,
        "services": services,
    }
