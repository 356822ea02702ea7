"""The design part of a contribution through both LLM adapters, end to end over the local vendor
server: proposal changes, plan items, checks and positions with evidence, validated against the
one schema, with one repair request when the model's structured output does not fit."""

from __future__ import annotations

import json
import time

import pytest

from sessions_app.design.schema import PlanItem, ProposalChanges, SpecialistOutput, specialist_output_schema
from sessions_app.providers.anthropic import TOOL_NAME, AnthropicProvider
from sessions_app.providers.base import Position, ProviderError
from sessions_app.providers.openai import OpenAIProvider
from sessions_app.providers.prompting import SCHEMA_ERROR
from tests.support.vendors import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    Reply,
    anthropic_events,
    json_chunks,
    openai_error,
    openai_events,
)

pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated")

MARKDOWN = [
    "## Findings\n\n- [warning] Orders charges the card ",
    "in its own request: a Stripe outage blocks checkout.\n\n",
    "## Recommendations\n\n- Add a payments service that owns the Stripe calls.\n\n",
    "## Open questions\n\n- Which Stripe products?\n\n",
]
DESIGN = {
    "summary": "A payments service owns Stripe; orders calls it and learns the outcome by event.",
    "findings": [
        {
            "title": "Card charged inside the order request",
            "detail": "A Stripe outage blocks checkout.",
            "severity": "warning",
            "services": ["orders"],
            "rule": "INT004",
        }
    ],
    "positions": [
        {
            "question": "q1",
            "option": "separate database for payments",
            "rationale": "PCI scope stays out of orders-db",
            "evidence": ["brief:PCI DSS", "SEC001"],
        }
    ],
    "proposal_changes": {
        "services": [
            {
                "name": "payments",
                "change": "add",
                "kind": "service",
                "responsibility": "charges and refunds through Stripe",
                "store": "payments-db (postgres)",
            }
        ],
        "edges": [
            {"source": "orders", "target": "payments", "protocol": "REST", "mode": "sync", "purpose": "start a charge"}
        ],
        "events": [
            {
                "name": "payment.completed",
                "producer": "payments",
                "consumers": ["orders", "billing"],
                "fields": ["payment_id", "order_id", "amount"],
            }
        ],
        "data_ownership": [{"data": "card tokens", "owner": "payments"}],
        "risks": ["Stripe webhooks are delivered at least once"],
    },
    "plan_items": [
        {
            "specialist": "security-guardian.md",
            "service": "payments",
            "task": "Isolate payments-db on its own network",
            "key": "network:payments",
            "acceptance": "orders cannot reach payments-db",
        },
        {
            "specialist": "data-flow-analyst.md",
            "service": "payments",
            "task": "Define the payment.completed schema",
            "key": "events:payments",
            "depends_on_keys": ["network:payments"],
            "acceptance": "orders and billing consume a sample event",
        },
    ],
    "checks": ["Can orders initiate a payment via the payments API?"],
}
# A schema violation two levels down: the field path is what the error must name.
INVALID = {
    **DESIGN,
    "proposal_changes": {
        **DESIGN["proposal_changes"],
        "edges": [{**DESIGN["proposal_changes"]["edges"][0], "mode": "sometimes"}],
    },
}
INVALID_PATH = "proposal_changes.edges.0.mode: Input should be 'sync' or 'async'"


def anthropic(vendor) -> AnthropicProvider:
    return AnthropicProvider(api_key="sk-ant-test", base_url=vendor.url)


def openai(vendor) -> OpenAIProvider:
    return OpenAIProvider(base_url=f"{vendor.url}/v1")


def json_reply(design: dict, text: str = "".join(MARKDOWN)) -> list[str]:
    return json_chunks({"text": text, **design}, parts=40)


def assert_design(result) -> None:
    changes = ProposalChanges.model_validate(result.proposal_changes)
    assert [(s.name, s.change, s.store) for s in changes.services] == [("payments", "add", "payments-db (postgres)")]
    assert [(e.source, e.target, e.protocol, e.mode) for e in changes.edges] == [("orders", "payments", "REST", "sync")]
    assert [(e.name, e.producer, e.consumers) for e in changes.events] == [
        ("payment.completed", "payments", ["orders", "billing"])
    ]
    assert changes.data_ownership[0].owner == "payments"
    plan = [PlanItem.model_validate(item) for item in result.plan_items]
    assert [(p.specialist, p.service, p.key, p.depends_on_keys) for p in plan] == [
        ("security-guardian.md", "payments", "network:payments", []),
        ("data-flow-analyst.md", "payments", "events:payments", ["network:payments"]),
    ]
    assert result.checks == ["Can orders initiate a payment via the payments API?"]
    assert result.positions == [
        Position(
            "Q1",
            "Separate database for payments",
            "PCI scope stays out of orders-db",
            ["brief:PCI DSS", "SEC001"],
        )
    ]
    assert result.findings[0]["rule"] == "INT004" and result.findings[0]["services"] == ["orders"]
    assert result.summary == DESIGN["summary"]


# ---------------------------------------------------------------------------- Anthropic


def test_anthropic_tool_input_carries_the_design(fake_vendor, make_design_request):
    fake_vendor.script(Reply(events=anthropic_events(MARKDOWN, tool_input=DESIGN, tool_json_parts=9)))
    deltas: list[str] = []

    result = anthropic(fake_vendor).run(make_design_request(), deltas.append)

    assert deltas == MARKDOWN
    assert result.text == "".join(MARKDOWN)
    assert_design(result)
    assert len(fake_vendor.received) == 1
    sent = fake_vendor.received[0].body
    assert sent["tools"][0]["name"] == TOOL_NAME
    assert sent["tools"][0]["input_schema"] == specialist_output_schema()
    assert sent["tool_choice"] == {"type": "auto"}


def test_anthropic_invalid_then_valid_succeeds_after_one_repair(fake_vendor, make_design_request):
    fake_vendor.script(
        Reply(events=anthropic_events(MARKDOWN, tool_input=INVALID, input_tokens=1000, output_tokens=400)),
        Reply(events=anthropic_events([], tool_input=DESIGN, input_tokens=1500, output_tokens=200)),
    )
    deltas: list[str] = []

    result = anthropic(fake_vendor).run(make_design_request(), deltas.append)

    assert len(fake_vendor.received) == 2
    assert deltas == MARKDOWN  # the text is shown once, the repair adds none
    assert result.text == "".join(MARKDOWN)
    assert_design(result)
    assert (result.tokens_in, result.tokens_out) == (2500, 600)
    repair = fake_vendor.received[1].body
    assert repair["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    user, assistant, answer = repair["messages"]
    assert user == fake_vendor.received[0].body["messages"][0]
    assert [block["type"] for block in assistant["content"]] == ["text", "tool_use"]
    assert assistant["content"][1]["input"]["proposal_changes"]["edges"][0]["mode"] == "sometimes"
    (tool_result,) = answer["content"]
    assert tool_result["type"] == "tool_result" and tool_result["is_error"] is True
    assert tool_result["tool_use_id"] == assistant["content"][1]["id"]
    assert INVALID_PATH in tool_result["content"]


def test_anthropic_tool_json_that_does_not_parse_is_repaired(fake_vendor, make_design_request):
    broken = '{"summary": "A payments service", "findings": [}'  # a bracket that closes nothing
    fake_vendor.script(
        Reply(events=anthropic_events(MARKDOWN, tool_json=broken)),
        Reply(events=anthropic_events([], tool_input=DESIGN)),
    )
    deltas: list[str] = []

    result = anthropic(fake_vendor).run(make_design_request(), deltas.append)

    assert len(fake_vendor.received) == 2
    assert deltas == MARKDOWN
    assert_design(result)
    # No tool_use to answer: the repair says what was wrong after the text the model wrote.
    _, assistant, answer = fake_vendor.received[1].body["messages"]
    assert assistant["content"] == [{"type": "text", "text": "".join(MARKDOWN)}]
    assert "report_contribution input is not valid JSON" in answer["content"][0]["text"]


def test_anthropic_without_a_tool_call_has_empty_proposal_changes(fake_vendor, make_design_request):
    fake_vendor.script(Reply(events=anthropic_events(MARKDOWN)))

    result = anthropic(fake_vendor).run(make_design_request(), lambda _: None)

    assert len(fake_vendor.received) == 1  # a missing structured part is not retried
    assert result.proposal_changes == ProposalChanges().model_dump()
    assert result.plan_items == [] and result.checks == []
    assert result.findings[0]["severity"] == "warning"


# ---------------------------------------------------------------------------- OpenAI-compatible


def test_openai_streams_the_markdown_field_and_returns_the_design(fake_vendor, make_design_request):
    fake_vendor.script(Reply(events=openai_events(json_reply(DESIGN)), delay=0.03))
    arrivals: list[tuple[float, str]] = []

    result = openai(fake_vendor).run(make_design_request(), lambda text: arrivals.append((time.monotonic(), text)))

    deltas = [text for _, text in arrivals]
    assert "".join(deltas) == "".join(MARKDOWN) == result.text
    # The markdown is shown while the JSON arrives, in pieces, and never the JSON itself.
    assert len(deltas) >= 3 and arrivals[-1][0] - arrivals[0][0] >= 0.05
    assert not any('"' in d and "{" in d for d in deltas)
    assert_design(result)
    assert len(fake_vendor.received) == 1
    fmt = fake_vendor.received[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is False
    schema = fmt["json_schema"]["schema"]
    assert list(schema["properties"])[0] == "text" and "text" in schema["required"]
    assert {k: v for k, v in schema["properties"].items() if k != "text"} == specialist_output_schema()["properties"]


def test_openai_reads_a_fenced_json_reply(fake_vendor, make_design_request):
    fenced = "```json\n" + json.dumps({"text": "".join(MARKDOWN), **DESIGN}) + "\n```"
    fake_vendor.script(Reply(events=openai_events(json_chunks(fenced, parts=10))))
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    assert "".join(deltas) == result.text == "".join(MARKDOWN)
    assert_design(result)


def test_openai_invalid_then_valid_succeeds_after_one_repair(fake_vendor, make_design_request):
    fake_vendor.script(
        Reply(events=openai_events(json_reply(INVALID), prompt_tokens=900, completion_tokens=300)),
        Reply(events=openai_events(json_chunks(DESIGN), prompt_tokens=1400, completion_tokens=150)),
    )
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    assert len(fake_vendor.received) == 2
    assert "".join(deltas) == result.text == "".join(MARKDOWN)
    assert_design(result)
    assert (result.tokens_in, result.tokens_out) == (2300, 450)
    repair = fake_vendor.received[1].body
    system, user, assistant, answer = repair["messages"]
    assert [system, user] == fake_vendor.received[0].body["messages"]
    assert assistant["role"] == "assistant" and json.loads(assistant["content"])["text"] == "".join(MARKDOWN)
    assert answer["role"] == "user" and INVALID_PATH in answer["content"]
    # The repair asks for the structured part alone.
    assert repair["response_format"]["json_schema"]["schema"] == specialist_output_schema()


def test_openai_reply_cut_off_mid_json_is_repaired(fake_vendor, make_design_request):
    whole = json.dumps({"text": "".join(MARKDOWN), **DESIGN})
    cut = whole[: len(whole) - 40]
    fake_vendor.script(
        Reply(events=openai_events(json_chunks(cut), finish_reason="length")),
        Reply(events=openai_events(json_chunks(DESIGN))),
    )
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    assert len(fake_vendor.received) == 2
    assert "".join(deltas) == result.text == "".join(MARKDOWN)
    assert_design(result)
    assert "the reply is not valid JSON" in fake_vendor.received[1].body["messages"][-1]["content"]
    assert "cut off at max_tokens" in fake_vendor.received[1].body["messages"][-1]["content"]


def test_openai_markdown_from_a_server_that_ignores_the_format_falls_back_to_the_text(fake_vendor, make_design_request):
    fake_vendor.script(Reply(events=openai_events(MARKDOWN)))
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    assert deltas == MARKDOWN and len(fake_vendor.received) == 1
    assert result.proposal_changes == ProposalChanges().model_dump()
    assert result.findings[0]["title"].startswith("Orders charges the card")


def test_openai_server_that_rejects_the_format_is_asked_again_without_it(fake_vendor, make_design_request):
    fake_vendor.script(
        openai_error(400, "Unsupported value: 'response_format.type' json_schema is not supported"),
        Reply(events=openai_events(MARKDOWN)),
    )
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    first, second = fake_vendor.received
    assert first.body["response_format"]["type"] == "json_schema"
    assert "response_format" not in second.body and second.body["messages"] == first.body["messages"]
    assert deltas == MARKDOWN and result.text == "".join(MARKDOWN)
    assert result.proposal_changes == ProposalChanges().model_dump()


def test_openai_json_without_text_is_rendered_from_the_structure(fake_vendor, make_design_request):
    fake_vendor.script(Reply(events=openai_events(json_reply(DESIGN, text=""))))
    deltas: list[str] = []

    result = openai(fake_vendor).run(make_design_request(), deltas.append)

    assert deltas == [result.text]
    assert "- add payments (service): charges and refunds through Stripe; owns payments-db (postgres)" in result.text
    assert "- add orders -> payments REST sync: start a charge" in result.text
    assert (
        "2. Define the payment.completed schema [data-flow-analyst.md / payments] (after network:payments)"
        in result.text
    )
    assert "- [ ] Can orders initiate a payment via the payments API?" in result.text
    assert_design(result)


# ---------------------------------------------------------------------------- both adapters


@pytest.mark.parametrize(
    ("adapter", "replies"),
    [
        (
            anthropic,
            lambda: [anthropic_events(MARKDOWN, tool_input=INVALID), anthropic_events([], tool_input=INVALID)],
        ),
        (openai, lambda: [openai_events(json_reply(INVALID)), openai_events(json_chunks(INVALID))]),
    ],
    ids=["anthropic", "openai"],
)
def test_invalid_twice_is_a_clear_permanent_error(fake_vendor, make_design_request, adapter, replies):
    fake_vendor.script(*(Reply(events=events) for events in replies()))

    with pytest.raises(ProviderError) as caught:
        adapter(fake_vendor).run(make_design_request(), lambda _: None)

    assert len(fake_vendor.received) == 2
    assert caught.value.transient is False
    assert caught.value.message == f"{SCHEMA_ERROR}: {INVALID_PATH}"


# ---------------------------------------------------------------------------- the prompt


@pytest.mark.parametrize(
    ("adapter", "path", "script"),
    [
        (anthropic, ANTHROPIC_PATH, lambda: anthropic_events(MARKDOWN, tool_input=DESIGN)),
        (openai, OPENAI_PATH, lambda: openai_events(json_reply(DESIGN))),
    ],
    ids=["anthropic", "openai"],
)
def test_the_prompt_carries_the_brief_the_proposal_and_the_feedback(
    fake_vendor, make_design_request, adapter, path, script
):
    fake_vendor.script(Reply(events=script()))

    adapter(fake_vendor).run(make_design_request(), lambda _: None)

    sent = fake_vendor.received[0]
    assert sent.path == path
    user = next(m["content"] for m in sent.body["messages"] if m["role"] == "user")
    assert "latency: 100 ms (from the requirement)" in user
    assert 'latency: 300 ms (from the prd): "p95 under 300 ms"' in user
    assert "compliance: PCI DSS" in user
    assert "latency: 100 ms in the requirement, 300 ms in the PRD" in user
    assert "## Current proposal (version 2)" in user
    assert "- add orders -> payments REST sync" in user
    assert "No inventory hold during processing: reserve stock before charging." in user
    assert "## This round: Follow-up" in user
    # SEC001 was reported earlier: cited by id, its text not repeated; SEC002 is new.
    assert "postgres is exposed on host port 5432" not in user
    assert "SEC001" in user and "DB_PASSWORD is set in plaintext" in user
    assert "- data-flow-analyst.md: Data Flow Analyst (dataflow)" in user


def test_the_output_schema_is_the_pydantic_model():
    # What the adapters validate and what they send are one definition.
    assert SpecialistOutput.model_validate(DESIGN).proposal_changes.events[0].name == "payment.completed"
    assert set(specialist_output_schema()["properties"]) == set(SpecialistOutput.model_fields)
