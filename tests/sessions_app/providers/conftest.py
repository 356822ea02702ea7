from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessions_app.design.schema import (
    Brief,
    Capability,
    Conflict,
    Constraint,
    EdgeChange,
    ImpliedService,
    ProposalContent,
    ServiceChange,
    TouchedService,
)
from sessions_app.providers.base import KeyQuestionBrief, ProviderRequest
from teams_app.inventory.types import Finding
from tests.support.vendors import FakeVendor

SYSTEM_PROMPT = "You are the Security Guardian of a microservice cluster."
BRIEF = (
    'To Security Guardian:\n"As part of New Service Integration Team working on payments:\n'
    "YOUR MISSION: Review how the payments service reaches its data\n"
    'CONSTRAINT: Follow existing cluster patterns unless justified"'
)
CONTEXT = (
    "Project: shop\n"
    "Services: gateway, orders, billing, orders-db, rabbitmq\n"
    "Dominant communication: REST (7 of 9 services)\n"
    "Dominant storage: postgresql"
)
QUESTIONS = [
    KeyQuestionBrief(
        "Q1",
        "Where does payments keep its data?",
        ["Reuse the orders database", "Separate database for payments"],
    ),
    KeyQuestionBrief(
        "Q2",
        "How does billing learn about payments?",
        ["Call billing over REST", "Publish a PaymentCompleted event"],
    ),
]
FINDINGS = [
    Finding(
        "SEC001",
        "critical",
        "security",
        ("orders-db",),
        "postgres is exposed on host port 5432",
    ),
    Finding(
        "SEC002",
        "warning",
        "security",
        ("orders",),
        "DB_PASSWORD is set in plaintext in the environment",
    ),
]


# The design so far, as the engine hands it to a follow-up round of the payments requirement.
DESIGN_BRIEF = Brief(
    requirement="Add a payment service with Stripe: PCI scope isolated, latency under 100 ms",
    prd_reference="PRD-7 Payments",
    capabilities=[Capability(key="payments", label="Payments and PCI", matched=["payment", "Stripe", "PCI"])],
    new_services=[ImpliedService(name="payments", responsibility="charges and refunds through Stripe")],
    touched_services=[TouchedService(name="orders", term="orders", source="prd")],
    constraints=[
        Constraint(kind="latency", value="100 ms", number=100, unit="ms", source="requirement"),
        Constraint(kind="latency", value="300 ms", number=300, unit="ms", source="prd", text="p95 under 300 ms"),
        Constraint(kind="compliance", value="PCI DSS", source="requirement"),
    ],
    conflicts=[Conflict(kind="constraint", text="latency: 100 ms in the requirement, 300 ms in the PRD")],
    questions=["Which Stripe products: Checkout, Billing, or both?"],
).model_dump()
PROPOSAL = ProposalContent(
    services=[ServiceChange(name="payments", responsibility="charges", store="payments-db (postgres)")],
    edges=[EdgeChange(source="orders", target="payments", protocol="REST")],
    risks=["Stripe webhooks arrive more than once"],
).model_dump()
FEEDBACK = ["No inventory hold during processing: reserve stock before charging."]
TEAM = [
    {"slug": "security-guardian.md", "name": "Security Guardian", "focus": ["security"]},
    {"slug": "data-flow-analyst.md", "name": "Data Flow Analyst", "focus": ["dataflow"]},
]


def design_request(**overrides: Any) -> ProviderRequest:
    values: dict[str, Any] = {
        "round_kind": "follow_up",
        "design_brief": DESIGN_BRIEF,
        "proposal": PROPOSAL,
        "proposal_version": 2,
        "feedback": list(FEEDBACK),
        "reported_rules": ["SEC001"],
        "team": list(TEAM),
    }
    values.update(overrides)
    return build_request(**values)


def build_request(**overrides: Any) -> ProviderRequest:
    values: dict[str, Any] = {
        "specialist_slug": "security-guardian.md",
        "specialist_name": "Security Guardian",
        "system_prompt": SYSTEM_PROMPT,
        "brief": BRIEF,
        "context": CONTEXT,
        "focus": ["security"],
        "findings": list(FINDINGS),
        "key_questions": list(QUESTIONS),
        "max_tokens": 1024,
    }
    values.update(overrides)
    return ProviderRequest(**values)


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    vendor = FakeVendor().start()
    try:
        yield vendor
    finally:
        vendor.stop()


@pytest.fixture
def make_request() -> Callable[..., ProviderRequest]:
    return build_request


@pytest.fixture
def make_design_request() -> Callable[..., ProviderRequest]:
    return design_request
