"""The "Design Before Development" gate and the seed's anti-pattern warnings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.db.models import Exists

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


def _focus_slugs(session: DesignSession, role: str) -> list[str]:
    """The team's specialists with this focus."""
    return [m["specialist"] for m in session.team if m.get("specialist") and role in (m.get("focus") or [])]


def _design_approvals(session_id: int):
    return ValidationPoint.objects.filter(session=session_id, gate=DESIGN_GATE, state=ValidationPoint.State.APPROVED)


def design_confirmed(session: DesignSession) -> bool:
    """Whether the product owner has approved the session's design gate."""
    return _design_approvals(session.pk).exists()


def gate_state(
    session: DesignSession, ctx: SessionContext, *, synthesized: bool = False, delivered: frozenset[str] = frozenset(),
    confirmed: bool | None = None,
) -> dict[str, bool]:
    """The design gate's checklist, read in one query. What the caller knows is not asked:
    ``synthesized``, a synthesis of the session has just been written; ``delivered``, slugs of
    specialists with a finished contribution in it; ``confirmed``, :func:`design_confirmed`
    as read under the session's lock in this transaction."""
    facts: dict = {}
    known: dict[str, bool] = {}
    if confirmed is None:
        facts["confirmed"] = _design_approvals(session.pk)
    else:
        known["confirmed"] = confirmed
    if synthesized:
        known["has_synthesis"] = True
    else:
        facts["has_synthesis"] = Synthesis.objects.filter(session=session.pk)
    for role in ("dataflow", "pattern"):  # whether a specialist with this focus delivered (none in the team: True)
        slugs = _focus_slugs(session, role)
        if not slugs or delivered.intersection(slugs):
            known[role] = True
        else:
            facts[role] = Contribution.objects.filter(session=session.pk, specialist_slug__in=slugs, status=Contribution.Status.DONE)
    if not facts:
        found = known
    elif len(facts) == 1:  # (after a synthesis, usually): a plain EXISTS, a third cheaper to build than the annotated row
        [(name, rows)] = facts.items()
        found = {name: rows.exists(), **known}
    else:
        exists = {name: Exists(rows.order_by()) for name, rows in facts.items()}
        found = {**DesignSession.objects.filter(pk=session.pk).annotate(**exists).values(*exists).get(), **known}
    has_synthesis = found["has_synthesis"]
    return {
        "integration_points_mapped": has_synthesis and bool(ctx.mapped_integrations()),
        # A team without such a specialist relies on the Maestro's own rule-based synthesis.
        "data_flow_understood": has_synthesis and found["dataflow"],
        "pattern_consistency_verified": has_synthesis and found["pattern"],
        "user_requirements_confirmed": found["confirmed"],
    }


def gate_checklist(gate: dict[str, bool]) -> list[dict]:
    return [{"key": key, "label": label, "ok": bool(gate.get(key))} for key, label in GATE_ITEMS]


@dataclass(frozen=True)
class AntiPattern:
    key: str
    title: str
    detail: str


_ENDPOINT = re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE)\s+/[\w/{}.-]+")
_EVENT = re.compile(r"(?<![\w./:@-])([a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_]*){1,2})(?![\w/:@-]|\.\w)")
# Dotted words that are not events: host names, file names, abbreviations.
_NOT_EVENT_ENDINGS = frozenset(
    "io com org net dev cloud local internal svc app ai co uk de yml yaml json md py txt sh conf ini toml env js ts".split()
)
_NOT_EVENTS = frozenset({"e.g", "i.e", "etc"})


@lru_cache(maxsize=2048)
def cited_integrations(text: str) -> frozenset[str]:
    """Endpoints (``POST /orders``) and event names (``payment.completed``) a text relies on.

    Kept per text: a finished contribution's text does not change, and the checks run on every
    page and every live update of the gate."""
    cited = {m.group(0).rstrip(".") for m in _ENDPOINT.finditer(text)}
    for m in _EVENT.finditer(text):
        token = m.group(1)
        if token in _NOT_EVENTS or token.rsplit(".", 1)[-1] in _NOT_EVENT_ENDINGS:
            continue
        cited.add(token)
    return frozenset(cited)


def anti_patterns(session: DesignSession, ctx: SessionContext) -> list[AntiPattern]:
    warnings: list[AntiPattern] = []
    has_synthesis = Synthesis.objects.filter(session=session).exists()
    if has_synthesis and not ctx.mapped_integrations():
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
    """Endpoints and events that specialists cite while the inventory declares them nowhere
    (not in a service's labels, environment or image)."""
    proposed = ctx.proposed_event_names()
    declared = " ".join(
        " ".join([s.image, *(f"{k}={v}" for k, v in s.labels.items()), *(f"{k}={v}" for k, v in s.environment.items())])
        for s in ctx.inventory.services
    ).lower()
    texts = Contribution.objects.filter(
        session=session, author=Contribution.Author.SPECIALIST, status=Contribution.Status.DONE
    ).values_list("text", flat=True)
    cited = set().union(*(cited_integrations(t) for t in texts)) if texts else set()
    return sorted(token for token in cited if token.lower() not in declared and token not in proposed)
