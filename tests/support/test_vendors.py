"""The local vendor server through the official SDKs: its default answer in both wire formats,
streamed or not, scripted replies taking precedence, and time-stamped OpenAI streams."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from tests.support.processes import wait_for
from tests.support.vendors import (
    ANTHROPIC_PATH,
    DEFAULT_REPLY,
    OPENAI_PATH,
    LLMServer,
    openai_error,
    stamps_in,
)

USER = "To Security Guardian: review the payments service"


@pytest.fixture
def started():
    servers: list[LLMServer] = []

    def start(**options) -> LLMServer:
        server = LLMServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def chat(server: LLMServer, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, **options)


def messages(server: LLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-local", max_retries=0)


def test_the_default_answer_streams_word_by_word_after_the_delay(started):
    server = started(delay=lambda index, body: 0.3, word_delay=0.01)
    began = time.monotonic()
    stream = chat(server).chat.completions.create(
        model="llama3.1:8b", messages=[{"role": "user", "content": USER}], stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append((time.monotonic(), chunk.choices[0].delta.content))
        usage = chunk.usage or usage
    words = DEFAULT_REPLY.split(" ")
    assert "".join(text for _, text in pieces) == DEFAULT_REPLY
    assert len(pieces) == len(words)
    assert pieces[0][0] - began >= 0.3
    assert pieces[-1][0] - pieces[0][0] >= 0.01 * (len(words) - 1) * 0.9
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, len(words))
    [call] = server.calls
    assert (call.index, call.path, call.model, call.user) == (0, OPENAI_PATH, "llama3.1:8b", USER)
    wait_for(lambda: call.finished, 5.0, interval=0.01, what="the call to end on the server")  # (after its last byte)
    assert call.finished - call.started >= 0.3 and call.stamps == []


def test_the_default_answer_speaks_both_wire_formats_streamed_or_not(started):
    server = started()
    completion = chat(server).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": USER}])
    message = messages(server).messages.create(
        model="claude-local", max_tokens=64, messages=[{"role": "user", "content": [{"type": "text", "text": USER}]}]
    )
    with messages(server).messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": USER}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.usage.prompt_tokens == 100
    assert message.content[0].text == DEFAULT_REPLY and message.model == "claude-local"
    assert streamed == DEFAULT_REPLY and final.stop_reason == "end_turn"
    assert [(c.path, c.model, c.user) for c in server.calls] == [
        (OPENAI_PATH, "gpt-4o-mini", USER), (ANTHROPIC_PATH, "claude-local", USER), (ANTHROPIC_PATH, "claude-haiku-4-5", USER),
    ]
    # The server records a call's end after its last byte went out: a client may have read it first.
    wait_for(lambda: all(c.finished for c in server.calls), 5.0, interval=0.01, what="every call to end on the server")


def test_a_scripted_reply_comes_before_the_default_answer(started):
    server = started()
    server.script(openai_error(429, "Rate limit reached", error_type="rate_limit_error", headers={"retry-after": "7"}))
    client = chat(server)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": USER}])
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": USER}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert answer.choices[0].message.content == DEFAULT_REPLY
    assert [c.index for c in server.calls] == [0, 1]


def test_stamped_tokens_carry_their_emission_time_spread_over_the_seconds_asked(started):
    plans = {0: (5, 0.4), 1: None}
    server = started(stamp=lambda index, body: plans[index])
    client = chat(server)
    arrivals: list[tuple[int, str]] = []
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": USER}], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.time_ns() // 1000, chunk.choices[0].delta.content))
    plain = client.chat.completions.create(model="m", messages=[{"role": "user", "content": USER}], stream=True)
    plain_text = "".join(c.choices[0].delta.content or "" for c in plain if c.choices)

    stamped, unstamped = server.calls
    assert len(arrivals) == 5 and all(stamps_in(text) and text.endswith("] ") for _, text in arrivals)
    assert stamps_in("".join(text for _, text in arrivals)) == stamped.stamps
    assert all(arrived >= stamp for (arrived, _), stamp in zip(arrivals, stamped.stamps, strict=True))
    gaps = [b - a for a, b in zip(stamped.stamps, stamped.stamps[1:], strict=False)]
    assert all(70_000 <= gap <= 200_000 for gap in gaps), gaps  # 0.4 s / 4 gaps, give or take the scheduler
    assert stamped.stamps[-1] - stamped.stamps[0] >= 390_000
    assert plain_text == DEFAULT_REPLY and unstamped.stamps == []  # no plan for that call: the default answer
