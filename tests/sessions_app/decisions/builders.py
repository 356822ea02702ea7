"""Builders for the decision log tests: a design session with a settled key question, rows made
directly with the ORM (no engine)."""

from __future__ import annotations

from dataclasses import dataclass

from sessions_app.models import (
    Contribution,
    DesignSession,
    KeyQuestion,
    Position,
    Round,
    ValidationPoint,
    ValidationResponse,
)
from teams_app.models import PRD, Project, TeamTemplate

REST = "Synchronous REST calls"
EVENTS = "Asynchronous events over rabbitmq"
MIXED = "REST for commands, events for state changes"


@dataclass
class Design:
    project: Project
    prd: PRD
    session: DesignSession
    round1: Round
    round2: Round
    question: KeyQuestion
    contributions: dict[str, Contribution]


def make_design(project: Project, *, state: str = KeyQuestion.State.AGREED, suffix: str = "") -> Design:
    prd, _ = PRD.objects.get_or_create(project=project, reference="PRD-42", defaults={"title": "Loyalty points"})
    template, _ = TeamTemplate.objects.get_or_create(
        slug="new-service-integration",
        defaults={"name": "New Service Integration Team", "mission": "Integrate a service"},
    )
    session = DesignSession.objects.create(
        project=project,
        template=template,
        team_name=template.name,
        title=f"Add loyalty points{suffix}",
        requirement="Add a rewards programme to checkout so that shoppers collect stars.",
        prd=prd,
        status=DesignSession.Status.RUNNING,
        phase="design",
    )
    round1 = Round.objects.create(session=session, number=3, phase="design", kind="design")
    round2 = Round.objects.create(session=session, number=4, phase="design", kind="discussion")
    people = [
        ("integration-architect", "Integration Architect", "anthropic", "claude-sonnet-4"),
        ("data-flow-analyst", "Data Flow Analyst", "openai", "llama3.1:8b"),
        ("security-guardian", "Security Guardian", "rules", "rules-v1"),
        ("performance-engineer", "Performance Engineer", "anthropic", "claude-sonnet-4"),
    ]
    contributions: dict[str, Contribution] = {}
    for rnd in (round1, round2):
        for slug, name, provider, model in people:
            contributions[f"{slug}@{rnd.number}"] = Contribution.objects.create(
                session=session,
                round=rnd,
                author=Contribution.Author.SPECIALIST,
                specialist_slug=slug,
                author_name=name,
                provider=provider,
                model=model,
                text=f"{name} on round {rnd.number}",
            )
    question = KeyQuestion.objects.create(
        session=session,
        ref="Q1",
        text="How should the change talk to the services it depends on?",
        options=[REST, EVENTS, MIXED],
        state=state,
        chosen=EVENTS if state != KeyQuestion.State.CONFLICT else "",
        agreement=0.75,
    )
    # Round 3: the data flow analyst first prefers REST, then changes their mind in round 4.
    first = {
        "integration-architect": (EVENTS, "Decouples checkout from the points ledger."),
        "data-flow-analyst": (REST, "Simplest to trace."),
        "security-guardian": (EVENTS, ""),
        "performance-engineer": (MIXED, "Commands need an answer at once."),
    }
    second = {
        "integration-architect": (EVENTS, "Decouples checkout from the points ledger."),
        # Naming the role it argues from, as the rule-based designer writes it: the option's point
        # names its author once (here the role is another specialist's).
        "data-flow-analyst": (EVENTS, "Integration Architect: An outbox keeps balances consistent."),
        "security-guardian": (EVENTS, ""),
        "performance-engineer": (MIXED, "Commands need an answer at once."),
    }
    for rnd, table in ((round1, first), (round2, second)):
        for slug, name, _, _ in people:
            option, rationale = table[slug]
            Position.objects.create(
                question=question,
                round=rnd,
                contribution=contributions[f"{slug}@{rnd.number}"],
                specialist_slug=slug,
                author_name=name,
                option=option,
                rationale=rationale,
            )
    return Design(project, prd, session, round1, round2, question, contributions)


def approve(point: ValidationPoint, user) -> ValidationResponse:
    return ValidationResponse.objects.create(
        point=point, user=user, verdict=ValidationResponse.Verdict.APPROVE, comment="Looks right"
    )


def open_point(session: DesignSession) -> ValidationPoint:
    return ValidationPoint.objects.create(
        session=session,
        gate="design_gate",
        kind=ValidationPoint.Kind.APPROVAL,
        title="Design Before Development: confirm the design",
        body="…",
        questions=[],
    )
