"""The shape of a capability pattern and of what it implies once instantiated on a cluster.

A pattern is a function ``(Cluster, Facts) -> Draft``, registered with its trigger words. A
:class:`Draft` holds what the pattern implies: services, edges, events, data ownership and
risks (each tagged with the analysis roles that propose it), key questions with the evidence
that favours an option per role, plan tasks and integration checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sessions_app.design.cluster import Cluster
from sessions_app.design.schema import (
    Constraint,
    DataOwnership,
    EdgeChange,
    EventContract,
    ProposalChanges,
    ServiceChange,
)


@dataclass
class Facts:
    """What the brief says, as the patterns need it."""

    text: str  # requirement (+ feedback in follow-up rounds), lower-cased
    constraints: list[Constraint] = field(default_factory=list)

    def has(self, *words: str) -> bool:
        return any(re.search(r"\b" + re.escape(w), self.text) for w in words)

    @property
    def compliance(self) -> set[str]:
        return {c.value for c in self.constraints if c.kind == "compliance"}

    def first(self, kind: str) -> Constraint | None:
        return next((c for c in self.constraints if c.kind == kind), None)

    @property
    def latency(self) -> str:
        c = self.first("latency")
        return c.value if c else ""

    @property
    def throughput(self) -> str:
        c = self.first("throughput")
        return c.value if c else ""


@dataclass
class Ground:
    option: int
    why: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class QuestionDraft:
    key: str  # stable within a session, e.g. "payments.pci_store"
    text: str
    options: list[str]
    grounds: dict[str, Ground] = field(default_factory=dict)  # role -> the option it favours, and why


@dataclass
class TaskDraft:
    key: str
    role: str  # analysis role that owns it, or "user"
    service: str
    task: str
    acceptance: str
    after: list[str] = field(default_factory=list)  # keys of tasks it depends on


@dataclass
class Draft:
    key: str
    label: str
    services: list[tuple[ServiceChange, tuple[str, ...]]] = field(default_factory=list)
    edges: list[tuple[EdgeChange, tuple[str, ...]]] = field(default_factory=list)
    events: list[tuple[EventContract, tuple[str, ...]]] = field(default_factory=list)
    ownership: list[tuple[DataOwnership, tuple[str, ...]]] = field(default_factory=list)
    risks: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    questions: list[QuestionDraft] = field(default_factory=list)
    tasks: list[TaskDraft] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)  # questions for the USER
    new_services: list[tuple[str, str]] = field(default_factory=list)  # (name, responsibility) the brief shows
    touches: list[str] = field(default_factory=list)  # existing services the pattern relies on

    # -- builders (skip silently what the cluster cannot ground) ------------------------
    def service(self, name: str, *, change: str, responsibility: str, store: str = "", kind: str = "service", by: tuple[str, ...]) -> None:
        if name:
            self.services.append((ServiceChange(name=name, change=change, kind=kind, responsibility=responsibility, store=store), by))

    def edge(self, source: str, target: str, *, protocol: str, mode: str = "sync", change: str = "add", purpose: str = "", by: tuple[str, ...]) -> None:
        if source and target and source != target:
            self.edges.append((EdgeChange(source=source, target=target, protocol=protocol, mode=mode, change=change, purpose=purpose), by))

    def event(self, name: str, *, producer: str, consumers: list[str], fields: list[str], by: tuple[str, ...] = ("dataflow",)) -> None:
        if producer:
            self.events.append((EventContract(name=name, producer=producer, consumers=[c for c in consumers if c], fields=fields), by))

    def owns(self, data: str, owner: str, *, by: tuple[str, ...] = ("dataflow",)) -> None:
        if owner:
            self.ownership.append((DataOwnership(data=data, owner=owner), by))

    def risk(self, text: str, *, by: tuple[str, ...]) -> None:
        self.risks.append((text, by))

    def task(self, key: str, role: str, service: str, task: str, acceptance: str, after: list[str] | None = None) -> None:
        self.tasks.append(TaskDraft(key=key, role=role, service=service, task=task, acceptance=acceptance, after=list(after or [])))

    # -- what one specialist proposes ----------------------------------------------------
    def changes_for(self, roles: set[str]) -> ProposalChanges:
        def mine(items):
            return [item for item, by in items if roles & set(by)]

        return ProposalChanges(
            services=mine(self.services), edges=mine(self.edges), events=mine(self.events),
            data_ownership=mine(self.ownership), risks=mine(self.risks),
        )


PatternFn = Callable[[Cluster, Facts], Draft]


@dataclass(frozen=True)
class Pattern:
    key: str
    label: str
    triggers: tuple[str, ...]  # regex fragments matched at word starts
    build: PatternFn
    fallback: bool = False  # asked for only when no other pattern is

    def matches(self, text: str) -> list[str]:
        found: list[str] = []
        for trigger in self.triggers:
            for m in re.finditer(r"\b(?:" + trigger + r")\w*", text, re.IGNORECASE):
                word = m.group(0).lower()
                if word not in found:
                    found.append(word)
        return found


REGISTRY: dict[str, Pattern] = {}


def pattern(key: str, label: str, *triggers: str, fallback: bool = False) -> Callable[[PatternFn], PatternFn]:
    def register(fn: PatternFn) -> PatternFn:
        REGISTRY[key] = Pattern(key=key, label=label, triggers=triggers, build=fn, fallback=fallback)
        return fn

    return register


def match(text: str) -> list[tuple[Pattern, list[str]]]:
    """Patterns the text asks for, in catalogue order, with the words that matched; then each
    fallback pattern whose words no other matched pattern covers ("add a subscriptions service"
    is the subscriptions pattern's, "add a loyalty service" is the fallback's)."""
    found = [(p, words) for p in REGISTRY.values() if not p.fallback and (words := p.matches(text))]
    fallbacks = [(p, words) for p in REGISTRY.values() if p.fallback and (words := p.matches(text))]
    return found + [(p, words) for p, words in fallbacks if not any(q.matches(" ".join(words)) for q, _ in found)]
