from __future__ import annotations

import socket
import time

import pytest

from sessions_app.providers.base import Position, ProviderError
from sessions_app.providers.openai import (
    NOT_CONFIGURED,
    PLACEHOLDER_KEY,
    OpenAIProvider,
)
from tests.support.vendors import OPENAI_PATH, Reply, data_frame, openai_error, openai_events

TEXT = [
    "## Findings\n\n- [warning] Shared database: orders and billing ",
    "both write to orders-db.\n\n## Recommendations\n\n- Give payments its own database.\n\n",
    "## Open questions\n\n- Who owns refunds?\n\n## Positions\n\n",
    "position: Q1 -> Separate database for payments because ownership stays clear\n",
    "position: Q2 -> 2 because billing should not block checkout\n",
]


def provider(vendor, **kwargs) -> OpenAIProvider:
    return OpenAIProvider(base_url=f"{vendor.url}/v1", **kwargs)


def assert_sent_one_request(vendor, request, model="gpt-4o-mini"):
    assert len(vendor.received) == 1, "the SDK must not retry on its own"
    sent = vendor.received[0]
    assert sent.path == OPENAI_PATH
    assert sent.body["model"] == model
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["max_tokens"] == request.max_tokens
    system, user = sent.body["messages"]
    assert system["role"] == "system" and request.system_prompt in system["content"]
    assert "## Findings" in system["content"] and "position: <ref>" in system["content"]
    assert user["role"] == "user" and request.brief in user["content"] and "Q1: " in user["content"]
    return sent


def test_streams_text_in_order_and_records_usage(fake_vendor, make_request):
    fake_vendor.script(
        Reply(
            events=openai_events(TEXT, model="llama3.1:8b", prompt_tokens=900, completion_tokens=250),
            delay=0.05,
        )
    )
    request = make_request(model="llama3.1:8b")
    arrivals: list[tuple[float, str]] = []

    result = provider(fake_vendor).run(request, lambda text: arrivals.append((time.monotonic(), text)))

    assert [text for _, text in arrivals] == TEXT
    assert arrivals[-1][0] - arrivals[0][0] >= 0.1
    assert result.text == "".join(TEXT)
    assert (result.provider, result.model) == ("openai", "llama3.1:8b")
    assert (result.tokens_in, result.tokens_out) == (900, 250)
    assert result.cost == 0.0  # a self-hosted model has no price
    assert_sent_one_request(fake_vendor, request, model="llama3.1:8b")


def test_priced_model_has_a_cost(fake_vendor, make_request):
    fake_vendor.script(
        Reply(
            events=openai_events(
                TEXT,
                model="gpt-4o-mini-2024-07-18",
                prompt_tokens=1000,
                completion_tokens=500,
            )
        )
    )

    result = provider(fake_vendor, api_key="sk-live").run(make_request(), lambda _: None)

    assert result.cost == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1_000_000)
    assert fake_vendor.received[0].headers["authorization"] == "Bearer sk-live"


def test_usage_is_zero_when_the_server_sends_none(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events(TEXT, prompt_tokens=None)))

    result = provider(fake_vendor).run(make_request(), lambda _: None)

    assert (result.tokens_in, result.tokens_out, result.cost) == (0, 0, 0.0)
    assert result.text == "".join(TEXT)


def test_positions_and_findings_are_parsed_from_the_text(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events(TEXT)))

    result = provider(fake_vendor).run(make_request(), lambda _: None)

    assert result.positions == [
        Position("Q1", "Separate database for payments", "ownership stays clear"),
        # "2" is the second listed option.
        Position(
            "Q2",
            "Publish a PaymentCompleted event",
            "billing should not block checkout",
        ),
    ]
    assert result.findings == [
        {
            "title": "Shared database",
            "detail": "Shared database: orders and billing both write to orders-db.",
            "severity": "warning",
            "services": [],
        }
    ]


def test_works_without_a_key_against_a_server_that_needs_none(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events(TEXT)))
    request = make_request()

    result = provider(fake_vendor, api_key=None).run(request, lambda _: None)

    assert result.text == "".join(TEXT)
    sent = assert_sent_one_request(fake_vendor, request)
    assert sent.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


def test_missing_base_url_fails_before_any_request(fake_vendor, make_request):
    for base_url in (None, "", " "):
        with pytest.raises(ProviderError) as caught:
            OpenAIProvider(base_url=base_url, api_key="sk-live").run(make_request(), lambda _: None)
        assert caught.value.message == NOT_CONFIGURED
        assert caught.value.transient is False
    assert fake_vendor.received == []


def test_rate_limit_is_transient_with_retry_after(fake_vendor, make_request):
    fake_vendor.script(
        openai_error(
            429,
            "Rate limit reached",
            error_type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": "3"},
        )
    )
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is True
    assert caught.value.retry_after == 3.0
    assert_sent_one_request(fake_vendor, request)


def test_exhausted_quota_is_permanent(fake_vendor, make_request):
    fake_vendor.script(
        openai_error(
            429,
            "You exceeded your current quota",
            error_type="insufficient_quota",
            code="insufficient_quota",
        )
    )

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert "no quota left" in caught.value.message


def test_server_error_is_transient(fake_vendor, make_request):
    fake_vendor.script(openai_error(500, "llama runner process has terminated", error_type="server_error"))
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is True
    assert "server error (HTTP 500): llama runner process has terminated" in caught.value.message
    assert_sent_one_request(fake_vendor, request)


def test_rejected_key_is_permanent(fake_vendor, make_request):
    fake_vendor.script(openai_error(401, "Incorrect API key provided", code="invalid_api_key"))
    request = make_request()

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor, api_key="sk-wrong").run(request, lambda _: None)

    assert caught.value.transient is False
    assert caught.value.message == "The openai provider rejected the API key (HTTP 401): check OPENAI_API_KEY."
    assert_sent_one_request(fake_vendor, request)


def test_unknown_model_is_permanent_and_named(fake_vendor, make_request):
    fake_vendor.script(openai_error(404, 'model "qwen9" not found, try pulling it first', error_type="api_error"))
    request = make_request(model="qwen9")

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(request, lambda _: None)

    assert caught.value.transient is False
    assert f'does not know the model "qwen9" at {fake_vendor.url}/v1' in caught.value.message
    assert_sent_one_request(fake_vendor, request, model="qwen9")


def test_unknown_model_reported_as_400_is_still_named(fake_vendor, make_request):
    fake_vendor.script(openai_error(400, "The model `qwen9` does not exist", code="model_not_found"))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(model="qwen9"), lambda _: None)

    assert caught.value.transient is False
    assert 'does not know the model "qwen9"' in caught.value.message


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
    fake_vendor.script(Reply(events=openai_events(TEXT), hang_after=2))
    deltas: list[str] = []

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor, timeout=0.5).run(make_request(), deltas.append)

    assert caught.value.transient is True
    assert deltas == TEXT[:1]


def test_malformed_stream_is_permanent(fake_vendor, make_request):
    frames = openai_events(TEXT)
    frames[2] = b'data: {"id":"chatcmpl-fake","choices":[{"index":0,"delta":{"content":\n\n'
    fake_vendor.script(Reply(events=frames))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert caught.value.message.startswith("The openai provider sent a malformed reply")


def test_stream_that_ends_before_the_model_finished_is_malformed(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events(TEXT, finish_reason=None, prompt_tokens=None, done=False)))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert "ended before the model finished" in caught.value.message


def test_dropped_connection_is_transient(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events(TEXT), truncate_after=3))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert "unreachable" in caught.value.message


def test_error_object_inside_the_stream_is_transient(fake_vendor, make_request):
    frames = openai_events(TEXT)[:2] + [
        data_frame({"error": {"message": "CUDA out of memory", "type": "server_error"}})
    ]
    fake_vendor.script(Reply(events=frames))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert caught.value.message == "The openai provider reported an error while answering: CUDA out of memory"


def test_an_empty_reply_is_an_error(fake_vendor, make_request):
    fake_vendor.script(Reply(events=openai_events([], finish_reason="length")))

    with pytest.raises(ProviderError) as caught:
        provider(fake_vendor).run(make_request(), lambda _: None)

    assert caught.value.transient is False
    assert "empty reply (stop reason: length)" in caught.value.message


def test_a_server_that_is_not_there_is_transient(make_request):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1").run(make_request(), lambda _: None)

    assert caught.value.transient is True
    assert "unreachable" in caught.value.message
