from __future__ import annotations

import random

import pytest

from sessions_app.providers.base import KeyQuestionBrief, Position
from sessions_app.providers.prompting import parse_positions
from sessions_app.providers.rules import RulesProvider
from teams_app.inventory.types import Finding


def run(request):
    deltas: list[str] = []
    result = RulesProvider().run(request, deltas.append)
    return result, deltas


def test_labels_itself_as_rule_based_and_costs_nothing(make_request):
    result, deltas = run(make_request())

    assert RulesProvider.name == "rules"
    assert RulesProvider.label == "rule-based designer"
    assert "rule-based analysis" in result.text.splitlines()[0].lower()
    assert (result.provider, result.model) == ("rules", "rules-v1")
    assert (result.tokens_in, result.tokens_out, result.cost) == (0, 0, 0.0)
    # Streamed in paragraph-sized pieces that add up to the saved text.
    assert len(deltas) >= 4
    assert "".join(deltas) == result.text


def test_output_is_deterministic_whatever_the_order_of_findings(make_request):
    findings = [
        Finding("SEC002", "warning", "security", ("orders",), "DB_PASSWORD in plaintext"),
        Finding(
            "SEC001",
            "critical",
            "security",
            ("orders-db",),
            "postgres exposed on host port 5432",
        ),
        Finding("SEC003", "info", "security", ("billing",), "no auth pattern detected"),
    ]
    first, _ = run(make_request(findings=findings))
    shuffled = list(findings)
    random.Random(7).shuffle(shuffled)
    second, _ = run(make_request(findings=list(reversed(findings))))
    third, _ = run(make_request(findings=shuffled))

    assert first.text == second.text == third.text
    assert first.positions == second.positions == third.positions
    assert first.findings == second.findings


def test_lists_each_finding_with_badge_rule_services_and_why(make_request):
    result, _ = run(make_request())

    findings_part = result.text.split("## Findings")[1].split("## Recommendations")[0]
    lines = [line for line in findings_part.splitlines() if line.startswith("- ")]
    assert lines == [
        "- **CRITICAL** `SEC001` — orders-db: postgres is exposed on host port 5432",
        "- **WARNING** `SEC002` — orders: DB_PASSWORD is set in plaintext in the environment",
    ]
    assert result.findings[0] == {
        "title": "postgres is exposed on host port 5432",
        "detail": "SEC001 (Security Guardian): postgres is exposed on host port 5432",
        "severity": "critical",
        "services": ["orders-db"],
        "rule": "SEC001",
    }
    for heading in (
        "## Findings",
        "## Recommendations",
        "## Open questions",
        "## Positions",
    ):
        assert heading in result.text


@pytest.mark.parametrize(
    ("finding", "expected"),
    [
        (
            Finding(
                "SEC001",
                "critical",
                "security",
                ("orders-db",),
                "postgres exposed on host port 5432",
            ),
            "internal network",
        ),
        (
            Finding(
                "DAT002",
                "warning",
                "dataflow",
                ("orders", "billing"),
                "orders and billing share database orders-db",
            ),
            "own schema or database",
        ),
        (
            Finding(
                "PERF001",
                "warning",
                "performance",
                ("orders",),
                "orders runs a single replica on the checkout path",
            ),
            "at least 2 replicas",
        ),
        (
            Finding("OPS003", "warning", "devops", ("orders",), "image tag is latest"),
            "Pin image tags",
        ),
        (
            Finding("OPS001", "info", "devops", ("orders",), "no healthcheck"),
            "healthcheck",
        ),
        (
            Finding(
                "PAT002",
                "warning",
                "pattern",
                ("legacy",),
                "legacy uses gRPC while the cluster uses REST",
            ),
            "dominant pattern",
        ),
        (
            Finding(
                "INT002",
                "warning",
                "integration",
                ("gateway", "orders", "billing"),
                "synchronous chain of 3 hops",
            ),
            "event or a cache",
        ),
        # An unknown prefix still gets its role's recommendation.
        (
            Finding("X9", "info", "dataflow", ("a", "b"), "shared database between a and b"),
            "own schema or database",
        ),
    ],
)
def test_recommendations_follow_rule_prefix_and_why(make_request, finding, expected):
    result, _ = run(make_request(findings=[finding], focus=[finding.role], key_questions=[]))

    recommendations = result.text.split("## Recommendations")[1].split("## Open questions")[0]
    assert expected in recommendations
    assert f"({finding.rule})" in recommendations


def test_pattern_recommendation_names_the_dominant_patterns_from_the_context(
    make_request,
):
    finding = Finding(
        "PAT001",
        "warning",
        "pattern",
        ("legacy",),
        "deviates from the dominant pattern",
    )
    result, _ = run(make_request(findings=[finding], focus=["pattern"], key_questions=[]))

    assert "(communication: REST (7 of 9 services); storage: postgresql)" in result.text


def test_no_findings_says_so_and_what_was_checked(make_request):
    result, _ = run(make_request(findings=[], focus=["devops"], key_questions=[]))

    assert "found nothing for this focus (DevOps Specialist)" in result.text
    assert "missing healthchecks, `latest` image tags" in result.text
    assert "## Positions" not in result.text
    assert result.findings == []
    assert result.positions == []


def test_security_focus_with_sec_findings_prefers_separation(make_request):
    result, _ = run(make_request())

    assert result.positions[0] == Position(
        "Q1",
        "Separate database for payments",
        'it matches the Security Guardian focus ("separate") backed by SEC001, SEC002',
    )


def test_dataflow_focus_prefers_events(make_request):
    finding = Finding(
        "DAT001",
        "warning",
        "dataflow",
        ("orders", "billing"),
        "orders and billing share database orders-db",
    )
    result, _ = run(make_request(findings=[finding], focus=["dataflow"]))

    assert result.positions[1].option == "Publish a PaymentCompleted event"


@pytest.mark.parametrize(
    ("dominant", "expected"),
    [
        ("Dominant communication: REST (7 of 9 services)", "Call billing over REST"),
        (
            "Dominant communication: events over AMQP (6 of 9 services)",
            "Publish a PaymentCompleted event",
        ),
    ],
)
def test_integration_focus_prefers_the_dominant_communication_pattern(make_request, dominant, expected):
    result, _ = run(make_request(findings=[], focus=["integration"], context=f"Project: shop\n{dominant}"))

    assert result.positions[1].option == expected
    assert "dominant pattern" in result.positions[1].rationale


def test_without_evidence_it_takes_the_first_option_and_says_why(make_request):
    question = KeyQuestionBrief("Q3", "Which region?", ["eu-west-1", "us-east-1"])
    result, _ = run(make_request(key_questions=[question]))

    assert result.positions == [
        Position(
            "Q3",
            "eu-west-1",
            "the rule-based analysis has no evidence that separates the options, so it takes the first one",
        )
    ]
    assert "no evidence that separates the options of Q3" in result.text


def test_position_lines_in_the_text_match_the_structured_positions(make_request):
    request = make_request()
    result, _ = run(request)

    lines = [line for line in result.text.splitlines() if line.startswith("position: ")]
    assert lines[0].startswith("position: Q1 -> Separate database for payments because ")
    assert len(lines) == len(request.key_questions)
    assert parse_positions(result.text, request.key_questions) == result.positions
