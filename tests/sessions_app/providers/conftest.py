from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_vendor import fake_vendor  # noqa: F401 - a fixture, registered by importing it here

from sessions_app.providers.base import KeyQuestionBrief, ProviderRequest
from teams_app.inventory.types import Finding

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
def make_request() -> Callable[..., ProviderRequest]:
    return build_request
