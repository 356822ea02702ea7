"""The shared pieces: prompt building and reply parsing, the registry, vendor error policy."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessions_app.providers import PROVIDERS, ProviderConfig, build_provider
from sessions_app.providers.anthropic import AnthropicProvider
from sessions_app.providers.base import KeyQuestionBrief, Position, ProviderError, match_option
from sessions_app.providers.openai import OpenAIProvider
from sessions_app.providers.prompting import (
    ROUND_TASKS,
    InvalidStructuredOutput,
    build_messages,
    parse_findings,
    parse_positions,
    validate_structured,
)
from sessions_app.providers.rules import RulesProvider
from sessions_app.providers.vendor import (
    call_timeout,
    price,
    retry_after_seconds,
    status_error,
)

REPO = Path(__file__).resolve().parents[3]


def test_system_prompt_carries_the_specialist_and_the_reply_contract(make_request):
    request = make_request()

    system, _ = build_messages(request)

    assert system.startswith(request.system_prompt)
    assert "Design before development" in system
    assert "Do not invent endpoints" in system
    assert "`## Findings`, `## Recommendations`, `## Open questions`" in system
    assert "position: <ref> -> <option> because <reason>" in system
    assert "report_contribution" not in system
    tool_system = build_messages(request, tool_name="report_contribution")[0]
    assert tool_system.count("report_contribution") == 1
    assert "`proposal_changes`" in tool_system and "`depends_on_keys`" in tool_system
    json_system = build_messages(request, json_field="text")[0]
    assert "one JSON object" in json_system and "Write `text` first." in json_system
    assert "report_contribution" not in json_system


def test_user_message_has_brief_context_findings_and_questions(make_request):
    request = make_request()

    _, user = build_messages(request)

    assert user.startswith(request.brief + "\n\n" + request.context)
    assert "- [critical] SEC001 (orders-db): postgres is exposed on host port 5432" in user
    assert (
        "Q1: Where does payments keep its data?\n  - option: Reuse the orders database\n  - option: Separate database for payments"
        in user
    )
    assert user.index(request.context) < user.index("SEC001") < user.index("Q2: ")


def test_user_message_without_findings_or_questions(make_request):
    _, user = build_messages(make_request(findings=[], key_questions=[]))

    assert "- none: the rule-based analysis found nothing for this focus" in user
    assert "Key questions" not in user


def test_without_a_design_the_prompt_has_no_design_blocks(make_request):
    _, user = build_messages(make_request())

    for heading in ("## This round", "## Design brief", "## Current proposal", "## User feedback", "## Team"):
        assert heading not in user


@pytest.mark.parametrize("kind", sorted(ROUND_TASKS))
def test_each_round_kind_says_what_it_must_produce(make_design_request, kind):
    _, user = build_messages(make_design_request(round_kind=kind))

    title, task = ROUND_TASKS[kind]
    assert f"## This round: {title}\nIt must produce: {task}" in user


def test_round_tasks_name_their_own_output():
    assert "plan items" in ROUND_TASKS["planning"][1] and "dependencies" in ROUND_TASKS["planning"][1]
    assert ROUND_TASKS["validation"][1].startswith("checks")
    assert "once" in ROUND_TASKS["analysis"][1]
    assert "feedback" in ROUND_TASKS["follow_up"][1]


def test_the_prompt_is_deterministic_and_in_a_fixed_order(make_design_request):
    first = build_messages(make_design_request())
    assert build_messages(make_design_request()) == first
    user = first[1]
    order = [
        "## This round",
        "## Design brief",
        "## Current proposal",
        "## User feedback",
        "## Rule-based",
        "## Key",
        "## Team",
    ]
    assert [user.index(heading) for heading in order] == sorted(user.index(heading) for heading in order)


def test_an_empty_proposal_says_the_cluster_is_unchanged(make_design_request):
    _, user = build_messages(make_design_request(proposal={}, proposal_version=1))

    assert "## Current proposal (version 1)\nNo changes yet: the cluster as it is." in user


def test_key_questions_carry_their_grounds(make_request):
    question = KeyQuestionBrief(
        "Q1",
        "Where does payments keep its data?",
        ["Reuse the orders database", "Separate database for payments"],
        grounds={"security": {"option": 1, "why": "PCI DSS in the constraints", "evidence": ["brief:PCI"]}},
    )

    _, user = build_messages(make_request(key_questions=[question]))

    assert (
        '  - grounds (Security Guardian): favours "Separate database for payments": PCI DSS in the constraints '
        "[brief:PCI]" in user
    )


def test_a_schema_violation_names_the_field_and_counts_the_rest():
    with pytest.raises(InvalidStructuredOutput) as caught:
        validate_structured({"findings": [{"severity": "high"}], "plan_items": [{"task": ""}], "extra": 1})

    assert caught.value.detail == "findings.0.title: Field required (and 3 more)"


QUESTIONS = [
    KeyQuestionBrief("Q1", "Data?", ["Reuse the orders database", "Separate database for payments"]),
    KeyQuestionBrief("Q2", "Sync?", ["Call billing over REST", "Publish a PaymentCompleted event"]),
]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "position: Q1 -> Separate database for payments because it isolates data",
            Position("Q1", "Separate database for payments", "it isolates data"),
        ),
        (
            "- **Position:** **Q1** → `separate database for payments`. Because: isolation.",
            Position("Q1", "Separate database for payments", "isolation"),
        ),
        (
            "position: q1 -> B because second",
            Position("Q1", "Separate database for payments", "second"),
        ),
        ("position: Q1 -> option 1", Position("Q1", "Reuse the orders database", "")),
        (
            "position: Q1 -> something else entirely because why not",
            Position("Q1", "something else entirely", "why not"),
        ),
    ],
)
def test_parse_positions_tolerates_formatting(line, expected):
    assert parse_positions(f"intro\n{line}\nmore", QUESTIONS) == [expected]


def test_parse_positions_keeps_the_first_per_question_and_drops_unknown_refs():
    text = "position: Q9 -> x\nposition: Q2 -> REST because a\nposition: Q2 -> event because b\n"

    assert parse_positions(text, QUESTIONS) == [Position("Q2", "Call billing over REST", "a")]
    assert [p.question for p in parse_positions(text, [])] == ["Q9", "Q2"]


def test_match_option_leaves_ambiguity_alone():
    assert match_option("database", QUESTIONS[0].options) is None
    assert parse_positions("position: Q1 -> database", QUESTIONS) == [Position("Q1", "database", "")]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("“Event choreography”", "Event choreography"),
        ("**orchestration   service.**", "Orchestration service"),
        ("Option B)", "Event choreography"),
        ("2.", "Event choreography"),
        ("Orchestration", "Orchestration service"),
        ("orchestration service, because it owns the saga", "Orchestration service"),
        ("", None),
        ("Something else", None),
    ],
)
def test_match_option_reads_wording_position_and_part_of_an_option(answer, expected):
    assert match_option(answer, ["Orchestration service", "Event choreography"]) == expected


def test_an_index_outside_the_list_names_no_option_even_if_an_option_contains_it():
    options = ["Retry 3 times", "Fail fast"]

    assert match_option("3", options) is None
    assert match_option("c", options) is None
    assert parse_positions("position: Q1 -> 3", [KeyQuestionBrief("Q1", "Retries?", options)]) == [
        Position("Q1", "3", "")
    ]


def test_an_answer_that_starts_one_option_and_appears_in_another_is_ambiguous():
    options = ["REST for commands, events for state changes", "Synchronous REST calls"]

    assert match_option("REST", options) is None
    assert match_option("REST for commands", options) == options[0]


def test_parse_findings_reads_top_level_bullets_under_findings_only():
    text = (
        "## Findings\n- [critical] Exposed DB: port 5432 is public\n  - a nested detail\n"
        "- Critical path has a single replica\n* **high**: plaintext secrets\n"
        "## Recommendations\n- not a finding\n"
    )

    assert parse_findings(text) == [
        {
            "title": "Exposed DB",
            "detail": "Exposed DB: port 5432 is public",
            "severity": "critical",
            "services": [],
        },
        {
            "title": "Critical path has a single replica",
            "detail": "Critical path has a single replica",
            "severity": "info",
            "services": [],
        },
        {
            "title": "plaintext secrets",
            "detail": "plaintext secrets",
            "severity": "critical",
            "services": [],
        },
    ]


def test_registry_builds_each_provider_from_config():
    config = ProviderConfig(
        anthropic_api_key="sk-ant",
        anthropic_base_url="http://anthropic.local",
        anthropic_model="claude-haiku-4-5",
        openai_base_url="http://ollama.local:11434/v1",
        openai_api_key=None,
        openai_model="llama3.1:8b",
        timeout=30.0,
    )

    assert PROVIDERS == ("rules", "anthropic", "openai")
    assert isinstance(build_provider("rules", config), RulesProvider)
    anthropic = build_provider("anthropic", config)
    assert isinstance(anthropic, AnthropicProvider)
    assert (
        anthropic.api_key,
        anthropic.base_url,
        anthropic.model,
        anthropic.timeout,
        anthropic.max_retries,
    ) == (
        "sk-ant",
        "http://anthropic.local",
        "claude-haiku-4-5",
        30.0,
        0,
    )
    openai = build_provider(" OpenAI ", config)
    assert isinstance(openai, OpenAIProvider)
    assert (openai.base_url, openai.api_key, openai.model, openai.timeout) == (
        "http://ollama.local:11434/v1",
        None,
        "llama3.1:8b",
        30.0,
    )
    # Missing configuration is reported on the first call, not when building.
    assert isinstance(build_provider("anthropic", ProviderConfig()), AnthropicProvider)


def test_registry_rejects_unknown_names():
    with pytest.raises(ProviderError) as caught:
        build_provider("gemini", ProviderConfig())

    assert caught.value.transient is False
    assert caught.value.message == 'Unknown provider "gemini": choose one of rules, anthropic, openai.'


def test_the_rules_path_loads_no_vendor_sdk():
    code = (
        "import sys\n"
        "from sessions_app.providers import ProviderConfig, build_provider\n"
        "build_provider('rules', ProviderConfig())\n"
        "assert 'anthropic' not in sys.modules and 'openai' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_retry_after_reads_seconds_milliseconds_and_dates():
    assert retry_after_seconds({"Retry-After": "12"}) == 12.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": later}) <= 31
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_call_timeout_takes_the_stricter_value():
    assert call_timeout(120.0, 30.0, 60.0) == 30.0
    assert call_timeout(10.0, 120.0, 60.0) == 10.0
    assert call_timeout(None, 0, 60.0) == 60.0


def test_price_matches_the_longest_prefix():
    prices = {"claude-opus-4": (15.0, 75.0), "claude-opus-4-5": (5.0, 25.0)}

    assert price("claude-opus-4-5-20251101", 1_000_000, 0, prices) == 5.0
    assert price("claude-opus-4-1", 0, 1_000_000, prices) == 75.0
    assert price("mystery", 10, 10, prices) == 0.0


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (529, True),
    ],
)
def test_status_policy(status, transient):
    error = status_error(provider="anthropic", status=status, model="m", key_setting="ANTHROPIC_API_KEY")

    assert error.transient is transient
