"""The requirement, understood: the requirement and the PRD read into a structured brief
(capabilities, implied and touched services, constraints with their numbers, conflicts, and
the unknowns asked of the USER). Deterministic: the same texts and inventory, the same brief."""

from __future__ import annotations

import re

from sessions_app.design import catalogue
from sessions_app.design.cluster import Cluster
from sessions_app.design.naming import mentions
from sessions_app.design.schema import Brief, Capability, Conflict, Constraint, ImpliedService, TouchedService

_NUM = r"(\d+(?:[.,]\d+)?)"
_SENTENCE_BREAK = re.compile(r"(?<=[.;:!?])\s+|\n+")
_LATENCY = re.compile(rf"(?:under|below|<=?|≤|within|at most|max(?:imum)?|of|p9\d)\s*{_NUM}\s*(ms|milliseconds?|s|seconds?)\b", re.I)
_LATENCY_BARE = re.compile(rf"{_NUM}\s*(ms|milliseconds?)\b", re.I)
_THROUGHPUT = re.compile(
    rf"{_NUM}\s*(k\s*)?(orders|requests|req|payments|events|messages|transactions|users|checkouts|calls)?\s*"
    r"(?:per|/|a)\s*(second|sec|s|minute|min|hour|day)\b", re.I)
_RATE = re.compile(rf"{_NUM}\s*(k\s*)?(rps|tps|qps)\b", re.I)
_AVAILABILITY = re.compile(rf"{_NUM}\s*%\s*(?:availability|uptime|sla)|(?:availability|uptime|sla)\D{{0,20}}{_NUM}\s*%", re.I)
_RETENTION = re.compile(rf"(?:retain|retention|keep|kept|stored?|archive)\D{{0,40}}?{_NUM}\s*(days?|weeks?|months?|years?)\b", re.I)
_COMPLIANCE = (
    (re.compile(r"\bpci(?:[- ]?dss)?\b", re.I), "PCI DSS"),
    (re.compile(r"\bgdpr\b", re.I), "GDPR"),
    (re.compile(r"\bhipaa\b", re.I), "HIPAA"),
    (re.compile(r"\bsoc\s?2\b", re.I), "SOC 2"),
    (re.compile(r"\bsox\b", re.I), "SOX"),
)
_UNITS = {"minute": "min", "min": "min", "second": "s", "sec": "s", "s": "s", "hour": "h", "day": "day"}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def constraints_in(text: str, source: str) -> list[Constraint]:
    found: list[Constraint] = []
    for sentence in _SENTENCE_BREAK.split(text or ""):
        s = " ".join(sentence.split())
        low = s.lower()
        if "latency" in low or "response time" in low or re.search(r"\bp9\d\b", low):
            m = _LATENCY.search(s) or _LATENCY_BARE.search(s)
            if m:
                n = _number(m[1])
                ms = n * 1000 if m[2].lower().startswith("s") else n
                found.append(Constraint(kind="latency", value=f"{ms:g} ms", number=ms, unit="ms", source=source, text=s))
        for m in _THROUGHPUT.finditer(s):
            n = _number(m[1]) * (1000 if m[2] else 1)
            what = (m[3] or "requests").lower()
            unit = f"{what}/{_UNITS.get(m[4].lower(), m[4].lower())}"
            found.append(Constraint(kind="throughput", value=f"{n:g} {unit}", number=n, unit=unit, source=source, text=s))
        for m in _RATE.finditer(s):
            n = _number(m[1]) * (1000 if m[2] else 1)
            found.append(Constraint(kind="throughput", value=f"{n:g} {m[3].lower()}", number=n, unit=m[3].lower(), source=source, text=s))
        for m in _AVAILABILITY.finditer(s):
            n = _number(m[1] or m[2])
            found.append(Constraint(kind="availability", value=f"{n:g}%", number=n, unit="%", source=source, text=s))
        for m in _RETENTION.finditer(s):
            n = _number(m[1])
            unit = m[2].lower().rstrip("s")
            found.append(Constraint(kind="retention", value=f"{n:g} {unit}{'s' if n != 1 else ''}", number=n, unit=unit, source=source, text=s))
        for pattern, name in _COMPLIANCE:
            if pattern.search(s):
                found.append(Constraint(kind="compliance", value=name, source=source, text=s))
    unique: dict[tuple, Constraint] = {}
    for c in found:
        unique.setdefault((c.kind, c.value, c.source), c)
    return list(unique.values())


_SOURCE_LABEL = {"requirement": "the requirement", "prd": "the PRD", "project": "the project's constraints"}


def _constraint_conflicts(constraints: list[Constraint]) -> tuple[list[Conflict], list[str]]:
    conflicts: list[Conflict] = []
    questions: list[str] = []
    for kind in ("latency", "throughput", "availability", "retention"):
        values: dict[str, list[Constraint]] = {}
        for c in constraints:
            if c.kind == kind:
                values.setdefault(c.value, []).append(c)
        if kind == "throughput":
            # Different units count different things: only the same unit can disagree.
            by_unit: dict[str, set[str]] = {}
            for c in constraints:
                if c.kind == kind:
                    by_unit.setdefault(c.unit, set()).add(c.value)
            if not any(len(v) > 1 for v in by_unit.values()):
                continue
        if len(values) < 2:
            continue
        parts = [f"{value} in {_SOURCE_LABEL.get(cs[0].source, cs[0].source)} (\"{cs[0].text.strip().rstrip('.')}\")" for value, cs in values.items()]
        conflicts.append(Conflict(kind="constraint", text=f"{kind.capitalize()}: " + " vs ".join(parts)))
        options = " or ".join(f"{value} ({_SOURCE_LABEL.get(cs[0].source, cs[0].source)})" for value, cs in values.items())
        questions.append(f"Which {kind} target holds for this design: {options}?")
    return conflicts, questions


def brief_build(*, requirement: str, prd_reference: str = "", prd_title: str = "", prd_body: str = "",
                project_constraints: str = "", cluster: Cluster) -> Brief:
    """The structured brief of a session (Team Assembly)."""
    req = requirement.strip()
    prd_text = f"{prd_title}\n{prd_body}".strip()
    constraints = (
        constraints_in(req, "requirement") + constraints_in(prd_text, "prd") + constraints_in(project_constraints, "project")
    )
    conflicts, questions = _constraint_conflicts(constraints)

    facts = catalogue.Facts(text=req.lower(), constraints=constraints)
    matched = catalogue.match(req)
    keys = {p.key for p, _ in matched}
    capabilities = [Capability(key=p.key, label=p.label, matched=words) for p, words in matched]
    drafts = [p.build(cluster, facts) for p, _ in matched]

    inventory_names = {s.name for s in cluster.inventory.services}
    new_services: list[ImpliedService] = []
    for draft in drafts:
        for svc, _by in draft.services:
            if svc.kind != "service" or any(n.name == svc.name for n in new_services):
                continue
            exists = svc.name in inventory_names
            responsibility = next((r for name, r in draft.new_services if name == svc.name), svc.responsibility)
            new_services.append(ImpliedService(name=svc.name, kind=svc.kind, responsibility=responsibility,
                                               capability=draft.key, exists=exists))
            if exists:
                conflicts.append(Conflict(
                    kind="existing_service",
                    text=f"The requirement implies a {draft.key} service, and {svc.name} already exists in the "
                         f"inventory: the design changes {svc.name} instead of adding a second one.",
                ))
        questions.extend(q for q in draft.unknowns if q not in questions)

    touched: dict[str, TouchedService] = {}
    for svc, term in mentions(req, cluster.inventory):
        touched.setdefault(svc.name, TouchedService(name=svc.name, term=term, source="requirement"))
    for svc, term in mentions(prd_text, cluster.inventory, kinds=("service", "gateway", "external")):
        touched.setdefault(svc.name, TouchedService(name=svc.name, term=term, source="prd"))
    for draft in drafts:
        for name in draft.touches:
            if name in inventory_names:
                touched.setdefault(name, TouchedService(name=name, term=draft.key, source="capability"))

    # Compliance against the inventory: a sensitive service with secrets in plain environment.
    if any(c.kind == "compliance" for c in constraints):
        regulated = {s.name for s in new_services if s.exists}
        for f in cluster.findings:
            if f.role == "security" and f.severity == "critical" and regulated & set(f.services) and "literal" in f.why:
                names = ", ".join(sorted({c.value for c in constraints if c.kind == "compliance"}))
                conflicts.append(Conflict(kind="inventory", text=f"{names} is required, and {f.why} ({f.rule})."))

    prd_only = [p for p, _ in catalogue.match(prd_text) if p.key not in keys and not p.fallback]
    for p in prd_only:
        questions.append(f"The PRD also asks for {p.label.lower()}: is it part of this design?")
    if not capabilities:
        known = ", ".join(p.label.lower() for p in catalogue.REGISTRY.values() if not p.fallback)
        questions.insert(0, (
            "The rule-based designer's catalogue has no pattern for this requirement "
            f"(it knows: {known}). Which capability do you need, and which services and flows do you expect?"
        ))
    if not any(c.kind == "latency" for c in constraints) and capabilities:
        questions.append("What latency must the new flow meet at p95?")
    if not any(c.kind == "throughput" for c in constraints) and capabilities:
        questions.append("What peak load must it sustain (requests or orders per minute)?")
    if cluster.empty:
        questions.insert(0, "No inventory is imported: which services does the cluster run today?")

    return Brief(
        requirement=req, prd_reference=prd_reference, capabilities=capabilities, new_services=new_services,
        touched_services=sorted(touched.values(), key=lambda t: t.name), constraints=constraints,
        conflicts=conflicts, questions=questions,
    )


def _touched_label(t: TouchedService) -> str:
    if t.source == "capability":
        return f"{t.name} (for {t.term})"
    return t.name if t.term == t.name else f"{t.name} (\"{t.term}\")"


def brief_text(brief: Brief) -> str:
    """The brief as the lines the assembly message and the specialists' context show."""
    lines = []
    if brief.capabilities:
        lines.append("Capabilities: " + "; ".join(f"{c.label} ({', '.join(c.matched)})" for c in brief.capabilities))
    if brief.new_services:
        lines.append("Implied services: " + "; ".join(
            f"{s.name} ({'change the existing service' if s.exists else 'new'}): {s.responsibility}" for s in brief.new_services))
    if brief.touched_services:
        lines.append("Touches: " + ", ".join(_touched_label(t) for t in brief.touched_services))
    if brief.constraints:
        lines.append("Constraints: " + "; ".join(f"{c.kind} {c.value} ({_SOURCE_LABEL.get(c.source, c.source)})" for c in brief.constraints))
    for c in brief.conflicts:
        lines.append(f"Conflict: {c.text}")
    for q in brief.questions:
        lines.append(f"Question for the USER: {q}")
    return "\n".join(lines)
