"""The built-in ``rules`` analyst (SPEC §5): deterministic findings from a cluster inventory.

Each rule belongs to one specialist role (pattern, integration, dataflow, security, performance,
devops) and has a fixed severity. ``analyze`` runs them all and returns findings in a stable
order (severity critical > warning > info, then rule id, then services), so the same inventory
always produces the same list, whatever order its services were declared in.
"""

from __future__ import annotations

from collections.abc import Iterable

from teams_app.inventory.types import (
    ROLE_LABELS,
    ROLES,
    SEVERITIES,
    Finding,
    ParsedInventory,
)

from . import dataflow, devops, integration, pattern, performance, security
from .base import RUNTIME_FORMATS, Context, Rule

__all__ = [
    "RULES",
    "Rule",
    "analyze",
    "findings_for_roles",
    "rules_reference",
    "rules_reference_markdown",
    "summarize",
]

RULES: list[Rule] = sorted(
    [
        *pattern.rules.rules,
        *integration.rules.rules,
        *dataflow.rules.rules,
        *security.rules.rules,
        *performance.rules.rules,
        *devops.rules.rules,
    ],
    key=lambda r: (ROLES.index(r.role), r.id),
)

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _sort_key(finding: Finding) -> tuple[int, str, tuple[str, ...], str]:
    return (
        _SEVERITY_RANK.get(finding.severity, 3),
        finding.rule,
        finding.services,
        finding.why,
    )


# A per-service rule that fires on most services states a habit of the cluster, not a list of
# exceptions: one finding that names them says it once (eShop: 21 services without a healthcheck).
COLLAPSE_MIN = 4


def _collapsed(rule: Rule, hits: list[Finding], total: int) -> list[Finding]:
    names = sorted({f.services[0] for f in hits if len(f.services) == 1})
    if len(names) != len(hits) or len(names) < COLLAPSE_MIN or len(names) * 2 <= total:
        return hits
    why = f"{rule.title} on {len(names)} of {total} services: {', '.join(names)}"
    return [Finding(rule.id, rule.severity, rule.role, tuple(names), why)]


def analyze(inv: ParsedInventory) -> list[Finding]:
    """Run every rule on ``inv``; the result is sorted and free of duplicates."""
    ctx = Context(inv)
    total = len(ctx.internal())
    findings: set[Finding] = set()
    for rule in RULES:
        if rule.runtime and inv.format not in RUNTIME_FORMATS:
            continue
        hits = list(
            dict.fromkeys(Finding(rule.id, rule.severity, rule.role, f.services, f.why) for f in rule.check(ctx))
        )
        findings.update(_collapsed(rule, hits, total))
    return sorted(findings, key=_sort_key)


def findings_for_roles(findings: Iterable[Finding], roles: Iterable[str]) -> list[Finding]:
    """The findings of the given roles, in their original order."""
    wanted = set(roles)
    return [f for f in findings if f.role in wanted]


def summarize(findings: Iterable[Finding]) -> dict[str, object]:
    """Counts by severity and by role; every severity and role is present, zero or not.

    ``{"total": n, "by_severity": {"critical": .., "warning": .., "info": ..},
    "by_role": {role: {"label": .., "total": .., "critical": .., "warning": .., "info": ..}}}``
    """
    severities = tuple(reversed(SEVERITIES))  # critical, warning, info
    by_severity = dict.fromkeys(severities, 0)
    role_counts = {role: dict.fromkeys(("total", *severities), 0) for role in ROLES}
    total = 0
    for finding in findings:
        total += 1
        if finding.severity in by_severity:
            by_severity[finding.severity] += 1
        counts = role_counts.get(finding.role)
        if counts is not None:
            counts["total"] += 1
            if finding.severity in counts:
                counts[finding.severity] += 1
    by_role = {role: {"label": ROLE_LABELS[role], **counts} for role, counts in role_counts.items()}
    return {"total": total, "by_severity": by_severity, "by_role": by_role}


def rules_reference() -> list[dict[str, str]]:
    """One row per rule for the reference page, in RULES order."""
    return [
        {
            "id": r.id,
            "role": r.role,
            "role_label": ROLE_LABELS[r.role],
            "severity": r.severity,
            "title": r.title,
            "description": r.description,
        }
        for r in RULES
    ]


def rules_reference_markdown() -> str:
    """The rule reference as a markdown document, one table per role."""
    lines = ["# Built-in analysis rules", ""]
    for role in ROLES:
        lines += [
            f"## {ROLE_LABELS[role]} ({role})",
            "",
            "| id | severity | rule | what it checks |",
            "|---|---|---|---|",
        ]
        for row in rules_reference():
            if row["role"] == role:
                description = row["description"].replace("|", "\\|")
                lines.append(f"| {row['id']} | {row['severity']} | {row['title']} | {description} |")
        lines.append("")
    return "\n".join(lines)
