"""The built-in, offline provider. In a session round it is the rule-based designer
(:mod:`sessions_app.design.designer`); for a request without a brief (a hub assist call) it
composes a specialist's contribution from the rules findings.

Deterministic by construction: the same request always yields the same text, findings and
positions (findings are sorted, tables are ordered, no clock or randomness), so sessions run
without any model, tests can assert exact output, and the UI can label it honestly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sessions_app.design.cluster import Cluster
from sessions_app.design.designer import DesignRequest, design
from sessions_app.design.schema import Brief, ProposalContent
from sessions_app.providers.base import (
    DeltaCallback,
    KeyQuestionBrief,
    Position,
    Provider,
    ProviderRequest,
    ProviderResult,
)
from teams_app.inventory.rules.base import plural
from teams_app.inventory.types import ROLE_LABELS, ROLES, Finding, ParsedInventory

MODEL = "rules-v1"
DESIGNER_MODEL = "rules-designer-v1"

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

# Rule ids are "<PREFIX><number>"; a finding whose id uses an unknown prefix still gets the
# recommendations of its role through this table.
_ROLE_PREFIX: dict[str, str] = {
    "security": "SEC",
    "dataflow": "DAT",
    "performance": "PERF",
    "devops": "OPS",
    "pattern": "PAT",
    "integration": "INT",
}

# (rule-id prefix, words of which one must appear in the finding's why, recommendation).
# Ordered: the first matching row per finding wins, so specific rows precede the catch-all row
# of each prefix. "{dominant}" is filled from the context's "Dominant ...:" lines.
_RECOMMENDATIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "SEC",
        ("secret", "password", "plaintext", "credential", "token"),
        (
            "Move secrets out of plain environment values into a secret store (Docker or Kubernetes "
            "secrets, Vault) and rotate the values that were exposed."
        ),
    ),
    (
        "SEC",
        ("auth",),
        (
            "Require authentication on every service entry point (enforced at the gateway, or mTLS "
            "between services) before the new service depends on it."
        ),
    ),
    (
        "SEC",
        (),
        (
            "Isolate datastores and brokers on an internal network: no host ports, reachable only by "
            "the services that own them."
        ),
    ),
    (
        "DAT",
        (
            "share",
            "same database",
            "both write",
            "several services",
            "multiple services",
        ),
        (
            "Give each service its own schema or database and publish domain events instead of "
            "reading or writing another service's tables."
        ),
    ),
    (
        "DAT",
        ("cycle", "circular"),
        (
            "Break the dependency cycle: make one direction asynchronous (an event) or move the shared "
            "concept into the service that owns it."
        ),
    ),
    (
        "DAT",
        ("fan-in", "fan in", "hotspot"),
        "Protect the fan-in hotspot: cache its reads, queue its writes and scale it on its own.",
    ),
    (
        "DAT",
        (),
        "Name one owning service for each piece of data and publish its changes as events.",
    ),
    (
        "PERF",
        ("replica",),
        (
            "Run at least 2 replicas of each service on the critical path behind the gateway, with "
            "health-checked load balancing."
        ),
    ),
    (
        "PERF",
        (),
        (
            "Shorten synchronous chains on hot paths: replace a hop with an event or a cache, and put "
            "timeouts and circuit breakers on the calls that remain."
        ),
    ),
    (
        "OPS",
        ("healthcheck", "health check"),
        ("Add a healthcheck to every service so that orchestration restarts and routes on real readiness."),
    ),
    (
        "OPS",
        ("latest", "tag"),
        ("Pin image tags to a version or digest instead of `latest`, so that deploys are reproducible."),
    ),
    (
        "OPS",
        ("restart",),
        "Set a restart policy (`unless-stopped` or `on-failure`) on every long-running service.",
    ),
    (
        "OPS",
        ("limit", "resource", "memory", "cpu"),
        "Set CPU and memory limits so that one service cannot starve its neighbours.",
    ),
    (
        "OPS",
        (),
        "Give every service a healthcheck, a pinned image tag, a restart policy and resource limits.",
    ),
    (
        "PAT",
        (),
        ("Follow the cluster's dominant pattern{dominant} or record a justification for the deviation as a decision."),
    ),
    (
        "INT",
        ("chain", "synchronous", "hop"),
        (
            "Replace a hop of the synchronous call chain with an event or a cache, so that one slow "
            "service does not stall the whole request."
        ),
    ),
    (
        "INT",
        (),
        (
            "Declare every integration point (endpoint or event, owner, contract) in the inventory "
            "before designing against it."
        ),
    ),
)

# What each role's rules look at, said when they found nothing.
_CHECKS: dict[str, str] = {
    "pattern": "the dominant communication, storage and auth patterns and deviations from them",
    "integration": "declared integration points and synchronous call chains",
    "dataflow": "data flow, shared databases, dependency cycles and fan-in hotspots",
    "security": (
        "databases or brokers exposed on host ports, plaintext secrets in the environment "
        "and services without an auth pattern"
    ),
    "performance": "single replicas on critical paths and long synchronous chains",
    "devops": "missing healthchecks, `latest` image tags, missing restart policies and resource limits",
}

_QUESTIONS: dict[str, str] = {
    "pattern": "Is any deviation from the cluster's dominant patterns intended, and what justifies it?",
    "integration": (
        "Which endpoints or events of existing services will the change use, and are they "
        "all declared in the inventory?"
    ),
    "dataflow": "Which service owns each piece of data the change reads or writes?",
    "security": "Which services must be reachable from outside the cluster, and through which gateway?",
    "performance": "What latency and throughput must the new flow sustain at peak?",
    "devops": "Which environments and deployment pipeline will the change go through?",
}

# Option words each focus favours when taking a position. Integration and pattern favour the
# cluster's dominant patterns instead, read from the context (see _dominant_words).
_AFFINITY: dict[str, tuple[str, ...]] = {
    "security": (
        "separate",
        "isolat",
        "dedicated",
        "private",
        "internal",
        "encrypt",
        "least privilege",
    ),
    "dataflow": (
        "event",
        "async",
        "publish",
        "queue",
        "outbox",
        "own database",
        "own schema",
    ),
    "performance": ("cache", "async", "replica", "scale", "batch", "read model"),
    "devops": ("existing", "reuse", "managed", "standard", "pinned", "healthcheck"),
    "pattern": ("existing", "consistent", "reuse", "standard", "dominant", "same"),
    "integration": (),
}

# How the names of communication patterns in the context appear in option wording.
_PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "rest": ("rest", "http", "api call"),
    "http": ("rest", "http", "api call"),
    "grpc": ("grpc", "rpc"),
    "amqp": ("amqp", "rabbitmq", "event", "queue", "message", "async", "publish"),
    "rabbitmq": ("amqp", "rabbitmq", "event", "queue", "message", "async", "publish"),
    "kafka": ("kafka", "event", "stream", "topic", "async", "publish"),
    "events": ("event", "async", "publish", "message"),
    "event": ("event", "async", "publish", "message"),
}

_DOMINANT_LINE = re.compile(
    r"^\s*[-*]?\s*dominant\s+(?P<kind>[a-z ]+?)\s*:\s*(?P<value>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_MISSION_LINE = re.compile(r"^\W*your mission\W*:\s*(?P<mission>.+)$", re.IGNORECASE | re.MULTILINE)


class RulesProvider(Provider):
    name = "rules"
    label = "rule-based designer"

    def run(self, request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
        if request.round_kind and request.design_brief:
            return _run_designer(request, on_delta)
        findings = sorted(request.findings, key=_finding_order)
        roles = _roles(request, findings)
        dominant = _dominant_patterns(request.context)
        positions = [_choose(q, roles, findings, dominant) for q in request.key_questions if q.options]

        chunks = [
            _intro(request, roles),
            _findings_section(findings, roles),
            _recommendations_section(findings, dominant),
            _questions_section(roles, positions),
        ]
        if positions:
            chunks.append(_positions_section(positions))
        for index, chunk in enumerate(chunks):
            # Paragraph-sized pieces keep the live view and the saved text identical.
            piece = chunk if index == len(chunks) - 1 else chunk + "\n\n"
            on_delta(piece)
            chunks[index] = piece

        return ProviderResult(
            text="".join(chunks),
            provider=self.name,
            model=MODEL,
            findings=[_as_result_finding(f) for f in findings],
            positions=[position for position, _ in positions],
            summary=_summary(findings, roles),
        )


def _run_designer(request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
    """A session round: the rule-based designer's contribution (design/designer.py)."""
    inventory = request.inventory or ParsedInventory(format="manual")
    reply = design(DesignRequest(
        specialist_slug=request.specialist_slug, specialist_name=request.specialist_name,
        roles=[r for r in ROLES if r in set(request.focus)] or list(ROLES), round_kind=request.round_kind,
        brief=Brief.model_validate(request.design_brief), cluster=Cluster(inventory, list(request.cluster_findings)),
        findings=list(request.findings), proposal=ProposalContent.model_validate(request.proposal or {}),
        proposal_version=request.proposal_version,
        questions=[{"ref": q.ref, "text": q.text, "options": list(q.options), "grounds": q.grounds} for q in request.key_questions],
        feedback=list(request.feedback), reported_rules=list(request.reported_rules), team=list(request.team),
    ))
    pieces = []
    for index, section in enumerate(reply.sections):
        piece = section if index == len(reply.sections) - 1 else section + "\n\n"
        on_delta(piece)  # paragraph-sized pieces keep the live view and the saved text identical
        pieces.append(piece)
    return ProviderResult(
        text="".join(pieces), provider="rules", model=DESIGNER_MODEL,
        findings=[_as_result_finding(f) for f in reply.findings],
        positions=[Position(p.question, p.option, p.rationale, list(p.evidence)) for p in reply.positions],
        summary=reply.summary, proposal_changes=reply.changes.model_dump(),
        plan_items=[i.model_dump() for i in reply.plan_items], checks=list(reply.checks),
    )


def _finding_order(finding: Finding) -> tuple[int, str, tuple[str, ...], str]:
    return (
        _SEVERITY_RANK.get(finding.severity, 3),
        finding.rule,
        finding.services,
        finding.why,
    )


def _roles(request: ProviderRequest, findings: list[Finding]) -> list[str]:
    """The specialist's focus, in canonical order; findings' roles count when no focus is set."""
    wanted = set(request.focus) or {f.role for f in findings}
    return [role for role in ROLES if role in wanted] + sorted(wanted - set(ROLES))


def _role_labels(roles: Iterable[str]) -> str:
    return ", ".join(ROLE_LABELS.get(role, role) for role in roles) or "all roles"


def _intro(request: ProviderRequest, roles: list[str]) -> str:
    lines = [
        (
            f"_This is a rule-based analysis for {request.specialist_name}: deterministic checks of "
            f"the cluster inventory (focus: {_role_labels(roles)}); no language model was involved._"
        )
    ]
    scope = _scope(request.brief)
    if scope:
        lines.append("")
        lines.append(f"Scope: {scope}")
    return "\n".join(lines)


def _scope(brief: str) -> str:
    mission = _MISSION_LINE.search(brief)
    line = mission["mission"] if mission else next((ln for ln in brief.splitlines() if ln.strip()), "")
    line = " ".join(line.strip().strip('"').split())
    return line if len(line) <= 200 else line[:199] + "…"


def _findings_section(findings: list[Finding], roles: list[str]) -> str:
    lines = ["## Findings", ""]
    if not findings:
        checked = [_CHECKS[r] for r in (roles or ROLES) if r in _CHECKS] or list(_CHECKS.values())
        lines.append(
            f"The rule-based analysis found nothing for this focus ({_role_labels(roles)}). "
            f"It checked: {'; '.join(checked)}."
        )
        return "\n".join(lines)
    for finding in findings:
        services = ", ".join(finding.services) or "cluster-wide"
        badge = finding.severity.upper() or "INFO"
        lines.append(f"- **{badge}** `{finding.rule}` — {services}: {finding.why}")
    return "\n".join(lines)


def _recommendation_for(finding: Finding) -> str | None:
    rule = finding.rule.upper()
    prefixes = [p for p in {row[0] for row in _RECOMMENDATIONS} if rule.startswith(p)]
    prefix = max(prefixes, key=len) if prefixes else _ROLE_PREFIX.get(finding.role)
    why = finding.why.lower()
    for row_prefix, words, sentence in _RECOMMENDATIONS:
        if row_prefix == prefix and (not words or any(word in why for word in words)):
            return sentence
    return None


def _recommendations_section(findings: list[Finding], dominant: dict[str, str]) -> str:
    lines = ["## Recommendations", ""]
    sources: dict[str, list[str]] = {}
    for finding in findings:
        sentence = _recommendation_for(finding)
        if sentence is None:
            continue
        rules = sources.setdefault(sentence, [])
        if finding.rule not in rules:
            rules.append(finding.rule)
    if not sources:
        lines.append("Nothing to act on from the rules for this focus.")
        return "\n".join(lines)
    named = "; ".join(f"{kind}: {value}" for kind, value in dominant.items())
    for sentence, rules in sources.items():
        text = sentence.format(dominant=f" ({named})" if named else "")
        lines.append(f"- {text} ({', '.join(rules)})")
    return "\n".join(lines)


def _questions_section(roles: list[str], positions: list[tuple[Position, bool]]) -> str:
    lines = ["## Open questions", ""]
    for role in roles or ROLES:
        if role in _QUESTIONS:
            lines.append(f"- {_QUESTIONS[role]}")
    undecided = [p.question for p, evidenced in positions if not evidenced]
    if undecided:
        lines.append(
            f"- The rules give no evidence that separates the options of {', '.join(undecided)}: "
            "a model-backed specialist or the product owner should weigh them."
        )
    lines.append("- The rules read only the inventory: which of these findings matter for this requirement?")
    return "\n".join(lines)


def _positions_section(positions: list[tuple[Position, bool]]) -> str:
    # One bare line per question, blank-line separated, so the text parses like a model's reply.
    lines = ["## Positions"]
    for position, _ in positions:
        lines.append("")
        lines.append(f"position: {position.question} -> {position.option} because {position.rationale}")
    return "\n".join(lines)


def _dominant_patterns(context: str) -> dict[str, str]:
    """{"communication": "REST (7 of 9 services)", ...} from the context's "Dominant ...:" lines."""
    found: dict[str, str] = {}
    for match in _DOMINANT_LINE.finditer(context):
        # "Dominant communication pattern: REST" and "Dominant communication: REST" alike.
        kind = match["kind"].split()[0].lower()
        found.setdefault(kind, match["value"].strip().rstrip("."))
    return found


_FILLER = frozenset({"and", "or", "over", "with", "via", "the", "for", "from", "based", "mostly"})


def _dominant_words(dominant: dict[str, str], kinds: tuple[str, ...]) -> tuple[str, ...]:
    words: list[str] = []
    for kind in kinds:
        # "REST over HTTP (7 of 9 services)": the counts in parentheses are not pattern names.
        value = dominant.get(kind, "").split("(")[0].lower()
        for token in re.findall(r"[a-z][a-z0-9-]*", value):
            if token in _FILLER or len(token) < 3 and token not in _PATTERN_WORDS:
                continue
            for word in _PATTERN_WORDS.get(token, (token,)):
                if word not in words:
                    words.append(word)
    return tuple(words)


def _affinity(role: str, dominant: dict[str, str]) -> tuple[str, ...]:
    if role == "integration":
        return _dominant_words(dominant, ("communication",))
    if role == "pattern":
        return _AFFINITY["pattern"] + _dominant_words(dominant, tuple(dominant))
    return _AFFINITY.get(role, ())


def _mentions(text: str, word: str) -> bool:
    # Word-start match: "isolat" matches "isolated", "rest" does not match "interest".
    return re.search(r"\b" + re.escape(word), text) is not None


def _choose(
    question: KeyQuestionBrief,
    roles: list[str],
    findings: list[Finding],
    dominant: dict[str, str],
) -> tuple[Position, bool]:
    """The option with the strongest keyword affinity to the focus; the first option on a tie.

    A role weighs 2 when the specialist has findings of that role (evidence), 1 when it is only
    in the focus. Returns the position and whether any evidence separated the options.
    """
    rules_by_role: dict[str, list[str]] = {}
    for finding in findings:
        rules_by_role.setdefault(finding.role, []).append(finding.rule)
    weighted = set(roles) | set(rules_by_role)
    ordered_roles = [r for r in ROLES if r in weighted] + sorted(weighted - set(ROLES))

    best: tuple[int, int, list[tuple[str, list[str]]]] | None = None
    for index, option in enumerate(question.options):
        text = option.lower()
        score = 0
        reasons: list[tuple[str, list[str]]] = []
        for role in ordered_roles:
            hits = [w for w in _affinity(role, dominant) if _mentions(text, w)]
            if hits:
                score += len(hits) * (2 if role in rules_by_role else 1)
                reasons.append((role, hits))
        if best is None or score > best[0]:
            best = (score, index, reasons)

    assert best is not None  # callers pass questions with options only
    score, index, reasons = best
    option = question.options[index]
    if score == 0:
        rationale = "the rule-based analysis has no evidence that separates the options, so it takes the first one"
        return Position(question.ref, option, rationale), False

    parts = []
    for role, hits in reasons:
        words = ", ".join(f'"{w}"' for w in hits)
        label = ROLE_LABELS.get(role, role)
        if role in rules_by_role:
            evidence = ", ".join(dict.fromkeys(rules_by_role[role]))
            parts.append(f"it matches the {label} focus ({words}) backed by {evidence}")
        elif role in ("integration", "pattern") and dominant:
            parts.append(f"it follows the cluster's dominant pattern ({words}) for the {label} focus")
        else:
            parts.append(f"it matches the {label} focus ({words})")
    return Position(question.ref, option, "; ".join(parts)), True


def _as_result_finding(finding: Finding) -> dict[str, object]:
    return {
        "title": finding.why,
        "detail": f"{finding.rule} ({ROLE_LABELS.get(finding.role, finding.role)}): {finding.why}",
        "severity": finding.severity,
        "services": list(finding.services),
        "rule": finding.rule,
    }


def _summary(findings: list[Finding], roles: list[str]) -> str:
    if not findings:
        return f"Rule-based analysis: nothing found for {_role_labels(roles)}."
    counts = [
        f"{sum(1 for f in findings if f.severity == sev)} {sev}"
        for sev in ("critical", "warning", "info")
        if any(f.severity == sev for f in findings)
    ]
    return f"Rule-based analysis: {plural(len(findings), 'finding')} for {_role_labels(roles)} ({', '.join(counts)})."
