"""Rows of a session's design as the engine writes them: a brief, proposal versions with their
proposed diagram versions and ``proposal.updated`` events, a plan and a checklist.

The content is the demo's payment requirement: the existing ``payments`` service changed to
own the PCI scope, ``orders → payments`` over REST, ``payment.completed`` to orders and
notifications; version 2 adds the inventory hold a product owner asked for.
"""

from __future__ import annotations

from django.db import transaction

from sessions_app.design.proposal import normalized
from sessions_app.design.schema import (
    Brief,
    Capability,
    Conflict,
    Constraint,
    DataOwnership,
    EdgeChange,
    EventContract,
    ImpliedService,
    PlanItem,
    ProposalContent,
    ServiceChange,
    TouchedService,
)
from sessions_app.design.services import proposal_record
from sessions_app.engine.context import SessionContext
from sessions_app.models import DesignProposal, DesignSession, Round
from teams_app.models import Project, TeamTemplate
from teams_app.selectors import team_snapshot

REQUIREMENT = (
    "Add a payment service with Stripe: PCI scope isolated, latency under 100 ms, subscriptions and one-time payments"
)

BRIEF = Brief(
    requirement=REQUIREMENT,
    prd_reference="PRD-101",
    capabilities=[
        Capability(key="payments", label="Payments and PCI", matched=["payment", "Stripe", "PCI"]),
        Capability(key="subscriptions", label="Subscriptions and billing", matched=["subscriptions"]),
    ],
    new_services=[
        ImpliedService(name="payments", responsibility="Charges through Stripe inside the PCI scope",
                       capability="payments", exists=True),
        ImpliedService(name="billing", responsibility="Subscription cycles and invoices", capability="subscriptions"),
    ],
    touched_services=[
        TouchedService(name="orders", term="one-time payments", source="requirement"),
        TouchedService(name="stripe", term="Stripe", source="requirement"),
    ],
    constraints=[
        Constraint(kind="latency", value="100 ms", number=100, unit="ms", source="requirement", text="latency under 100 ms"),
        Constraint(kind="latency", value="300 ms", number=300, unit="ms", source="prd",
                   text="Checkout p95 latency under 300 ms at 200 orders per minute."),
        Constraint(kind="compliance", value="PCI DSS", source="requirement", text="PCI scope isolated"),
    ],
    conflicts=[
        Conflict(kind="constraint", text="Latency: 100 ms in the requirement, 300 ms in PRD-101."),
        Conflict(kind="existing_service", text="A payments service already exists: it is changed, not added."),
    ],
    questions=["Which Stripe products: Billing for subscriptions, or our own cycles on PaymentIntents?"],
)

PROPOSAL_V1 = ProposalContent(
    services=[
        ServiceChange(name="payments", change="change", responsibility="Charges through Stripe; the only service in PCI scope",
                      store="payments-db (postgres)"),
    ],
    edges=[
        EdgeChange(source="orders", target="payments", protocol="REST", mode="sync", change="add",
                   purpose="authorise the payment at checkout"),
        EdgeChange(source="payments", target="stripe", protocol="HTTPS", mode="sync", change="add", purpose="PaymentIntents"),
    ],
    events=[
        EventContract(name="payment.completed", producer="payments", consumers=["orders", "notifications"],
                      fields=["order_id", "payment_id", "amount", "currency"]),
    ],
    data_ownership=[DataOwnership(data="card tokens", owner="payments")],
    risks=["Stripe webhooks can arrive twice: deduplicate by event id"],
)

PROPOSAL_V2 = ProposalContent(
    services=PROPOSAL_V1.services,
    edges=[*PROPOSAL_V1.edges,
           EdgeChange(source="orders", target="inventory", protocol="AMQP", mode="async", purpose="reserve stock before charging")],
    events=[
        EventContract(name="payment.completed", producer="payments", consumers=["inventory", "notifications", "orders"],
                      fields=["order_id", "payment_id", "amount", "currency"]),
        EventContract(name="inventory.reserved", producer="inventory", consumers=["orders"], fields=["order_id", "sku", "expires_at"]),
    ],
    data_ownership=PROPOSAL_V1.data_ownership,
    risks=PROPOSAL_V1.risks,
)

PLAN = [
    PlanItem(order=1, specialist="pattern-archaeologist", service="payments",
             task="Document the service template payments follows", acceptance="Template linked from the payments README"),
    PlanItem(order=2, specialist="integration-architect", service="payments", task="Define the API contract orders → payments",
             depends_on=[1], acceptance="OpenAPI spec reviewed by the USER"),
    PlanItem(order=3, specialist="devops-specialist", service="payments", task="Prepare container configs",
             depends_on=[1], acceptance="payments starts in compose with its own database"),
    PlanItem(order=4, specialist="security-guardian", service="payments", task="Isolate the PCI network",
             depends_on=[3], acceptance="only payments reaches payments-db and stripe"),
    PlanItem(order=5, specialist="data-flow-analyst", service="orders", task="Plan the payment.completed event schema",
             depends_on=[2], acceptance="schema versioned in the contracts repo"),
]

CHECKLIST = [
    {"check": "Can orders initiate payments via API?", "source": "orders → payments REST"},
    {"check": "payment.completed reaches orders and notifications exactly once", "source": "payment.completed"},
]


def design_session(project: Project, *, user=None, status: str = DesignSession.Status.AWAITING_USER,
                   phase: str = "design", brief: bool = True, plan: bool = False) -> DesignSession:
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = DesignSession.objects.create(
        project=project, template=template, team_name=template.name, mission=template.mission, team=team_snapshot(source=template),
        title="Payment service with Stripe", requirement=REQUIREMENT, prd=project.prds.first(), phase=phase, status=status,
        provider="rules", inventory_revision=project.inventory_revisions.order_by("-number").first(), created_by=user,
        brief=BRIEF.model_dump() if brief else {},
        plan=[p.model_dump() for p in PLAN] if plan else [],
        checklist=list(CHECKLIST) if plan else [],
    )
    return session


def design_round(session: DesignSession, *, number: int = 3, kind: str = "design", phase: str = "design") -> Round:
    return Round.objects.create(session=session, number=number, kind=kind, phase=phase, status=Round.Status.DONE)


def proposal_add(session: DesignSession, content: ProposalContent, *, reason: str, round: Round | None = None,
                 author_kind: str = "maestro", author_name: str = "Maestro", contributors: list[str] | None = None) -> DesignProposal:
    """A new proposal version with its proposed diagram version, through the engine's own service."""
    with transaction.atomic():
        session = DesignSession.objects.select_for_update().get(pk=session.pk)
        return proposal_record(
            session=session, content=normalized(content), inventory=SessionContext.load(session).inventory,
            reason=reason, round=round, author_kind=author_kind, author_name=author_name, contributors=contributors,
        )
