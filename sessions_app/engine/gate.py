"""The "Design Before Development" gate and the seed's anti-pattern warnings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessions_app.engine.context import SessionContext
from sessions_app.models import Contribution, DesignSession, Synthesis, ValidationPoint

GATE_ITEMS: tuple[tuple[str, str], ...] = (
    ("integration_points_mapped", "Integration points are mapped"),
    ("data_flow_understood", "Data flow is understood"),
    ("pattern_consistency_verified", "Pattern consistency verified"),
    ("user_requirements_confirmed", "User requirements confirmed"),
)
DESIGN_GATE = "design_gate"
VALIDATION_GATE = "integration_validation"
DISCOVERY_INPUT = "discovery_input"


def _focus_done(session: DesignSession, role: str) -> bool | None:
    """True/False whether a specialist with this focus delivered; None if the team has none."""
    slugs = [m["specialist"] for m in session.team if m.get("specialist") and role in (m.get("focus") or [])]
    if not slugs:
        return None
    return Contribution.objects.filter(
        session=session, specialist_slug__in=slugs, status=Contribution.Status.DONE
    ).exists()


def gate_state(session: DesignSession, ctx: SessionContext) -> dict[str, bool]:
    has_synthesis = Synthesis.objects.filter(session=session).exists()
    mapped = has_synthesis and bool(ctx.integration_plan())
    data_flow = _focus_done(session, "dataflow")
    pattern = _focus_done(session, "pattern")
    return {
        "integration_points_mapped": mapped,
        # A team without such a specialist relies on the Maestro's own rule-based synthesis.
        "data_flow_understood": has_synthesis and (data_flow if data_flow is not None else True),
        "pattern_consistency_verified": has_synthesis and (pattern if pattern is not None else True),
        "user_requirements_confirmed": ValidationPoint.objects.filter(
            session=session, gate=DESIGN_GATE, state=ValidationPoint.State.APPROVED
        ).exists(),
    }


def gate_checklist(gate: dict[str, bool]) -> list[dict]:
    return [{"key": key, "label": label, "ok": bool(gate.get(key))} for key, label in GATE_ITEMS]


@dataclass(frozen=True)
class AntiPattern:
    key: str
    title: str
    detail: str


_ENDPOINT_OR_EVENT = re.compile(
    r"(?:\b(?:GET|POST|PUT|PATCH|DELETE)\s+/[\w/{}.-]+)|(?:\b[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)?\b)"
)


def anti_patterns(session: DesignSession, ctx: SessionContext) -> list[AntiPattern]:
    warnings: list[AntiPattern] = []
    has_synthesis = Synthesis.objects.filter(session=session).exists()
    if has_synthesis and not ctx.integration_plan():
        warnings.append(
            AntiPattern(
                "service_in_isolation",
                "Service in isolation",
                "No integration points are mapped: the design names no service it talks to in the inventory.",
            )
        )
    deviations = [f for f in ctx.findings if f.role == "pattern" and f.severity != "info"]
    justified = " ".join(ctx.user_messages).lower()
    unjustified = [f for f in deviations if not any(s.lower() in justified for s in f.services)]
    if unjustified:
        names = sorted({s for f in unjustified for s in f.services})
        warnings.append(
            AntiPattern(
                "pattern_proliferation",
                "Pattern proliferation",
                f"{', '.join(names)} deviate from the cluster's dominant patterns without a recorded justification.",
            )
        )
    assumed = _assumed_integrations(session, ctx)
    if assumed:
        warnings.append(
            AntiPattern(
                "assumption_based_integration",
                "Assumption-based integration",
                "Contributions rely on endpoints or events the inventory does not declare: " + ", ".join(assumed[:6]),
            )
        )
    return warnings


def _assumed_integrations(session: DesignSession, ctx: SessionContext) -> list[str]:
    """Event names like ``payment.completed`` or endpoints like ``POST /orders`` that specialists
    cite as existing while the inventory declares no such service or label."""
    known = {s.name.lower() for s in ctx.inventory.services}
    declared = " ".join(
        " ".join(f"{k}={v}" for k, v in s.labels.items()) + " " + " ".join(f"{k}={v}" for k, v in s.environment.items())
        for s in ctx.inventory.services
    ).lower()
    found: set[str] = set()
    texts = Contribution.objects.filter(
        session=session, author=Contribution.Author.SPECIALIST, status=Contribution.Status.DONE
    ).values_list("text", flat=True)
    for text in texts:
        for match in _ENDPOINT_OR_EVENT.finditer(text):
            token = match.group(0)
            head = token.split(".")[0].lower() if "." in token and " " not in token else ""
            if head and (head in known or head in {"e", "i", "etc", "www"} or token.count(".") > 2):
                continue
            if head and any(ch.isdigit() for ch in token.split(".")[-1]):
                continue
            if token.lower() in declared:
                continue
            if " " in token or head:
                found.add(token)
    return sorted(found)
