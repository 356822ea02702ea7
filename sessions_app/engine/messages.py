"""The seed's message templates, filled from real session state.

Each function returns markdown. The wording follows the agent definition the product is built
around: the assembly message, the Agent Deployment brief, the Architecture Synthesis, the User
Validation Points and the continuation block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RULE = "━" * 40
DO_NOT_BUILD = "DO NOT BUILD YET."


def _bullets(items: Iterable[str], empty: str = "none") -> str:
    lines = [f"- {item}" for item in items if item]
    return "\n".join(lines) if lines else f"- {empty}"


def assembly_message(
    *,
    team_name: str,
    requirement: str,
    cluster_line: str,
    constraints: str,
    members: Sequence[tuple[str, str]],
    prd_reference: str,
    brief: str = "",
) -> str:
    member_lines = _bullets(f"{name}: {role}" for name, role in members)
    brief_block = f"BRIEF:\n{_bullets(brief.splitlines())}\n\n" if brief.strip() else ""
    return (
        f'MAESTRO: "{team_name} assembling for: {requirement.strip()}\n\n'
        f"CONTEXT:\n- Current cluster: {cluster_line}\n- New requirement: {requirement.strip()}\n"
        f"- PRD: {prd_reference}\n- Constraints: {constraints.strip() or 'none recorded'}\n\n"
        f"{brief_block}"
        f"TEAM MEMBERS:\n{member_lines}\n\n"
        f'First round: Everyone analyze cluster and report patterns. {DO_NOT_BUILD}"'
    )


def deployment_brief(
    *,
    agent: str,
    team_name: str,
    feature: str,
    mission: str,
    cluster_state: str,
    patterns: str,
    integrate_with: Sequence[str],
    report: str,
) -> str:
    return (
        f'To {agent}:\n"As part of {team_name} working on {feature}:\n\n'
        f"YOUR MISSION: {mission}\n"
        f"CONSTRAINT: Follow existing cluster patterns unless justified\n"
        f"CONTEXT: {cluster_state}\n"
        f"PATTERNS: {patterns}\n"
        f"INTEGRATE WITH: {', '.join(integrate_with) or 'the services named in the requirement'}\n"
        f"REPORT: {report}\n\n"
        f'Coordinate with team for pattern consistency."'
    )


def synthesis_message(
    *,
    number: int,
    ascii_state: str,
    findings: Sequence[tuple[str, str]],
    pattern_checks: Sequence[dict],
    integration_plan: Sequence[str],
    requested_from: Sequence[str],
) -> str:
    finding_lines = _bullets((f"{who}: {what}" for who, what in findings), "no findings reported")
    check_lines = "\n".join(
        f"- {'✓' if check['ok'] else '⚠️'} {check['text']}" for check in pattern_checks
    ) or "- ✓ no pattern deviations detected"
    plan = "\n".join(integration_plan) or "(no integration points mapped yet)"
    return (
        f'"CLUSTER ARCHITECTURE ROUND {number}:\n\n'
        f"CURRENT STATE:\n```\n{ascii_state.rstrip()}\n```\n\n"
        f"FINDINGS:\n{finding_lines}\n\n"
        f"PATTERN CONSISTENCY:\n{check_lines}\n\n"
        f"INTEGRATION PLAN:\n```\n{plan}\n```\n\n"
        f'Requesting input from: {", ".join(requested_from) or "no one: the team is aligned"}"'
    )


VALIDATION_QUESTIONS = (
    "Does this meet business requirements?",
    "Any missing capabilities?",
    "Performance concerns?",
)


def validation_message(
    *, feature: str, diagram: str, decisions: Sequence[str], sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    """The seed's User Validation Points template; ``sections`` ((heading, lines)) add what this
    point is about: the proposal's changes, what changed since the version last seen, open
    questions, the plan or the integration checklist."""
    decision_lines = "\n".join(f"{i}. {d}" for i, d in enumerate(decisions, start=1)) or "1. (no decisions recorded yet)"
    questions = "\n".join(f"- {q}" for q in VALIDATION_QUESTIONS)
    extra = "".join(f"{heading}:\n{_bullets(lines)}\n\n" for heading, lines in sections if lines)
    return (
        f'"USER VALIDATION NEEDED:\n\nThe team has designed the integration for “{feature}”:\n\n'
        f"Architecture:\n```\n{diagram.rstrip()}\n```\n\n"
        f"Key Design Decisions:\n{decision_lines}\n\n"
        f"{extra}"
        f"Please validate:\n{questions}\n\n"
        f'Your input shapes final design."'
    )


def continuation_block(*, team: str, phase: str, services: Sequence[str], awaiting: str) -> str:
    return (
        f"{RULE}\nTo continue this cluster session, start your response with:\n"
        f"@cluster-maestro-orchestrator: [your message]\n\n"
        f"Currently Active Team: {team}\n"
        f"Current Phase: {phase}\n"
        f"Services Involved: {', '.join(services) or 'none identified yet'}\n"
        f"Awaiting: {awaiting}\n{RULE}"
    )
