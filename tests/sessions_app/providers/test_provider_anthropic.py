from __future__ import annotations

import time

import pytest

from sessions_app.providers.anthropic import MISSING_KEY, TOOL_NAME, AnthropicProvider
from sessions_app.providers.base import Position, ProviderError
from tests.support.vendors import ANTHROPIC_PATH, Reply, anthropic_error, anthropic_events, sse

# The installed SDK announces an end-of-life date for the default model on every call.
pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated")

KEY = "sk-ant-test-key"
TEXT = [
    "## Findings\n\n- [critical] orders-db is ",
    "exposed on a host port.\n\n",
    "## Recommendations\n\n- Isolate it.\n\n## Open questions\n\n- Who needs it?\n\n",
    "## Positions\n\nposition: Q1 -> Separate database for payments because isolation\n",
]
TOOL_INPUT = {
    "summary": "orders-db is exposed; payments should own its data.",
    "findings": [
        {
            "title": "orders-db exposed",
            "detail": "Port 5432 is published.",
            "severity": "critical",
            "services": ["orders-db"],
        },
        {
            "title": "Plaintext secret",
            "detail": "DB_PASSWORD in env.",
            "severity": "warning",
            "services": ["orders"],
        },
    ],
    "positions": [
        {
            "question": "Q1",
            "option": "Separate database for payments",
            "rationale": "isolation limits blast radius",
        },
        {
            "question": "q2",
            "option": "publish a paymentcompleted event",
            "rationale": "billing stays decoupled",
        },
    ],
}


def provider(vendor, **kwargs) -> AnthropicProvider:
    kwargs.setdefault("api_key", KEY)
    return AnthropicProvider(base_url=vendor.url, **kwargs)


def assert_sent_one_request(vendor, request, model="claude-sonnet-4-6"):
    assert len(vendor.received) == 1, "the SDK must not retry on its own"
    sent = vendor.received[0]
    assert sent.path == ANTHROPIC_PATH
    assert sent.body["model"] == model
    assert sent.body["stream"] is True
    assert sent.body["max_tokens"] == request.max_tokens
    assert request.system_prompt in sent.body["system"]
    assert "position: <ref> -> <option> because <reason>" in sent.body["system"]
    assert sent.body["tools"][0]["name"] == TOOL_NAME
    assert sent.body["tool_choice"] == {"type": "auto"}
    user = sent.body["messages"][0]
    assert user["role"] == "user" and request.brief in user["content"]
    assert KEY in (sent.headers.get("x-api-key", "") + sent.headers.get("authorization", ""))
    return sent


def test_streams_text_in_order_and_records_usage_and_cost(fake_vendor, make_request):
    fake_vendor.script(
        Reply(
            events=anthropic_events(TEXT, input_tokens=1200, output_tokens=300),
            delay=0.05,
        )
    )
    request = make_request()
    arrivals: list[tuple[float, str]] = []

    result = provider(fake_vendor).run(request, lambda text: arrivals.append((time.monotonic(), text)))

    assert [text for _, text in arrivals] == TEXT
    # Delivered as the frames arrive, not all at once at the end.
    assert arrivals[-1][0] - arrivals[0][0] >= 0.1
    assert result.text == "".join(TEXT)
    assert (result.provider, result.model) == (
        "anthropic",
        "claude-sonnet-4-5-20250929",
    )
    assert (result.tokens_in, result.tokens_out) == (1200, 300)
    assert result.cost == pytest.approx((1200 * 3.0 + 300 * 15.0) / 1_000_000)
    assert_sent_one_request(fake_vendor, request)


def test_unknown_model_costs_nothing(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT, model="claude-experimental-9")))

    result = provider(fake_vendor, model="claude-experimental-9").run(make_request(), lambda _: None)

    assert result.model == "claude-experimental-9"
    assert result.tokens_in == 1200 and result.cost == 0.0
    assert fake_vendor.received[0].body["model"] == "claude-experimental-9"


def test_request_model_overrides_the_default(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT, model="claude-haiku-4-5")))

    result = provider(fake_vendor).run(make_request(model="claude-haiku-4-5"), lambda _: None)

    assert fake_vendor.received[0].body["model"] == "claude-haiku-4-5"
    assert result.cost == pytest.approx((1200 * 1.0 + 300 * 5.0) / 1_000_000)


def test_tool_use_becomes_findings_and_positions(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT, tool_input=TOOL_INPUT, tool_json_parts=7)))
    deltas: list[str] = []

    result = provider(fake_vendor).run(make_request(), deltas.append)

    assert deltas == TEXT  # the tool's JSON is never shown as text
    assert result.summary == TOOL_INPUT["summary"]
    assert result.findings == [
        {
            "title": "orders-db exposed",
            "detail": "Port 5432 is published.",
            "severity": "critical",
            "services": ["orders-db"],
        },
        {
            "title": "Plaintext secret",
            "detail": "DB_PASSWORD in env.",
            "severity": "warning",
            "services": ["orders"],
        },
    ]
    # Refs and options are matched to the key questions' own wording.
    assert result.positions == [
        Position("Q1", "Separate database for payments", "isolation limits blast radius"),
        Position("Q2", "Publish a PaymentCompleted event", "billing stays decoupled"),
    ]


def test_without_a_tool_call_positions_and_findings_come_from_the_text(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT)))

    result = provider(fake_vendor).run(make_request(), lambda _: None)

    assert result.positions == [Position("Q1", "Separate database for payments", "isolation")]
    assert result.findings[0]["severity"] == "critical"
    assert result.findings[0]["title"].startswith("orders-db is exposed")


def test_a_tool_call_without_text_is_rendered_as_text(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events([], tool_input=TOOL_INPUT)))
    deltas: list[str] = []

    result = provider(fake_vendor).run(make_request(), deltas.append)

    assert deltas == [result.text]
    assert "## Findings" in result.text and "[critical] orders-db exposed (orders-db)" in result.text
    assert "position: Q1 -> Separate database for payments because isolation limits blast radius" in result.text


def test_an_empty_reply_is_an_error_not_a_silent_success(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events([], stop_reason="refusal")))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert not caught.value.transient
    assert "empty reply (stop reason: refusal)" in caught.value.message


def test_missing_key_fails_before_any_request(fake_vendor, make_request):
    for key in (None, "", "  "):
        with pytest.raises(ProviderError) as caught:
            AnthropicProvider(api_key=key, base_url=fake_vendor.url).run(make_request(), lambda _: None)
        assert caught.value.message == MISSING_KEY
        assert caught.value.transient is False
    assert fake_vendor.received == []


def test_rate_limit_is_transient_with_retry_after(fake_vendor, make_request):
    fake_vendor.script(
        anthropic_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit.",
            {"retry-after": "7"},
        )
    )
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is True
    assert caught.value.retry_after == 7.0
    assert "rate limited (HTTP 429)" in caught.value.message
    assert_sent_one_request(fake_vendor, request)


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (500, "api_error", "server error (HTTP 500)"),
        (529, "overloaded_error", "overloaded (HTTP 529)"),
    ],
)
def test_server_errors_are_transient(fake_vendor, make_request, status, error_type, words):
    fake_vendor.script(anthropic_error(status, error_type, "Internal server error"))
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is True
    assert words in caught.value.message
    assert_sent_one_request(fake_vendor, request)


def test_rejected_key_is_permanent(fake_vendor, make_request):
    fake_vendor.script(anthropic_error(401, "authentication_error", "invalid x-api-key"))
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is False
    assert caught.value.message == "The anthropic provider rejected the API key (HTTP 401): check ANTHROPIC_API_KEY."
    assert_sent_one_request(fake_vendor, request)


def test_unknown_model_is_permanent_and_named(fake_vendor, make_request):
    fake_vendor.script(anthropic_error(404, "not_found_error", "model: claude-nope"))
    request = make_request(model="claude-nope")

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is False
    assert 'does not know the model "claude-nope"' in caught.value.message
    assert_sent_one_request(fake_vendor, request, model="claude-nope")


def test_bad_request_is_permanent_with_the_vendors_reason(fake_vendor, make_request):
    fake_vendor.script(anthropic_error(400, "invalid_request_error", "max_tokens: must be at most 64000"))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert caught.value.message.endswith("refused the request (HTTP 400): max_tokens: must be at most 64000")


def test_silent_server_times_out_as_transient(fake_vendor, make_request):
    fake_vendor.script(Reply(hang=True))
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor, timeout=0.5).run(make_request(), lambda _: None)

    assert time.monotonic() - started < 3
    assert caught.value.transient is True
    assert "did not answer within 0.5 s" in caught.value.message
    assert len(fake_vendor.received) == 1


def test_stream_that_stalls_midway_times_out_as_transient(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT), hang_after=4))
    deltas: list[str] = []

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor, timeout=0.5).run(make_request(), deltas.append)

    assert caught.value.transient is True
    assert "did not answer within 0.5 s" in caught.value.message
    assert deltas == TEXT[:1]  # what arrived before the stall was still delivered


def test_request_timeout_can_only_shorten_the_configured_one(fake_vendor, make_request):
    fake_vendor.script(Reply(hang=True))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor, timeout=30).run(make_request(timeout=0.5), lambda _: None)

    assert "within 0.5 s" in caught.value.message


def test_malformed_stream_is_permanent(fake_vendor, make_request):
    frames = anthropic_events(TEXT)
    frames[3] = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":\n\n'
    fake_vendor.script(Reply(events=frames))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert caught.value.message.startswith("The anthropic provider sent a malformed reply")


def test_stream_without_message_stop_is_malformed(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT, message_stop=False)))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert "ended before message_stop" in caught.value.message


def test_dropped_connection_is_transient(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT), truncate_after=5))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert "unreachable" in caught.value.message


def test_unreachable_endpoint_is_transient(make_request):
    with pytest.raises(ProviderError) as caught:
        AnthropicProvider(api_key=KEY, base_url="http://127.0.0.1:9", timeout=2).run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert "unreachable at http://127.0.0.1:9" in caught.value.message


def test_error_event_inside_the_stream_is_mapped(fake_vendor, make_request):
    frames = anthropic_events(TEXT)[:4] + [
        sse(
            "error",
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            },
        )
    ]
    fake_vendor.script(Reply(events=frames))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert "overloaded (error event in the stream)" in caught.value.message


def test_a_failing_callback_is_not_disguised_as_a_provider_error(fake_vendor, make_request):
    fake_vendor.script(Reply(events=anthropic_events(TEXT)))

    class Cancelled(Exception):
        pass

    def on_delta(_: str) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        provider(fake_vendor).run(make_request(), on_delta)
