"""Any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, LM Studio, llama.cpp server),
with the structured part by JSON-schema response format.

The request is the SDK's wire format, posted and read by :mod:`sessions_app.providers.http`
(urllib3): the ``openai`` SDK's per-call CPU is about four times as much, paid one call after
another by a round's calls (see that module); the local vendor server the tests run against is
itself checked with the SDK (``tests/support/test_vendors.py``).

How the reply streams. ``response_format={"type": "json_schema", ...}`` constrains the *whole*
reply to JSON, so the markdown text cannot come before it as with Anthropic's tool use. The
schema sent is therefore :func:`~sessions_app.design.schema.specialist_output_schema` plus one
string field, ``text``, asked for first, that holds the markdown reply. While the stream arrives,
the accumulated JSON is re-read with ``jiter`` in ``trailing-strings`` partial mode (the SDK's
own ``chat.completions.stream`` helper uses ``partial_mode=True``, which drops an unfinished
string, so the text would only appear once complete) and what ``text`` gained since the last
chunk goes to ``on_delta``: people read the markdown as it is written, never the JSON.
``strict`` is false because the pydantic schema has optional fields with defaults, which strict
mode forbids; the reply is validated here instead, with ``SpecialistOutput.model_validate``.

A server that ignores ``response_format`` and answers in markdown is shown as it comes (one that
rejects it with a 400 naming it is asked again without it), and
findings and positions are read from the text (``## Findings`` bullets, ``position: Q1 -> ...``
lines) with empty proposal changes. A JSON reply that does not fit (malformed, cut off, a schema
violation) gets one repair request: the reply so far, a message naming the field and the
problem, and a response format without ``text``, so that only the structured part comes back
and the text already shown stands. If that fails too, the call ends with a permanent
ProviderError naming the field.

Usage comes from the final chunk when the server honours ``stream_options.include_usage``;
otherwise it is recorded as 0. Nothing is retried here: Celery retries transient errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import jiter

from sessions_app.design.schema import SpecialistOutput, specialist_output_schema
from sessions_app.providers import http, vendor
from sessions_app.providers.base import (
    DeltaCallback,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
)
from sessions_app.providers.prompting import (
    InvalidStructuredOutput,
    build_messages,
    repair_instruction,
    settle_reply,
    validate_structured,
)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 120.0
KEY_SETTING = "OPENAI_API_KEY"
TEXT_FIELD = "text"
NOT_CONFIGURED = "The openai provider is not configured: set OPENAI_BASE_URL."
# Local servers ignore the key, but some proxies in front of them refuse a request without one;
# this value is only ever sent to the configured base URL.
PLACEHOLDER_KEY = "not-needed"

# USD per million tokens (input, output), an estimate from OpenAI's public price list for its
# hosted models; self-hosted models are not listed and cost 0.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}


class OpenAIProvider(Provider):
    name = "openai"
    label = "OpenAI-compatible model"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = (base_url or "").strip() or None
        self.api_key = (api_key or "").strip() or None
        self.model = model or DEFAULT_MODEL
        self.timeout = timeout
        self._client = http.Client()  # its connections are kept between calls

    @property
    def endpoint(self) -> str:
        return f"{(self.base_url or '').rstrip('/')}/chat/completions"

    def run(self, request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
        if not self.base_url:
            raise ProviderError(NOT_CONFIGURED, transient=False)
        model = request.model or self.model
        timeout = vendor.call_timeout(self.timeout, request.timeout, DEFAULT_TIMEOUT)
        system, user = build_messages(request, json_field=TEXT_FIELD)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]

        first = self._attempt(model, messages, reply_format(with_text=True), request, timeout, on_delta)

        def repair(detail: str, show: DeltaCallback) -> _Reply:
            # The text stands: the structured part alone is asked for again, without `text`.
            conversation = [
                *messages,
                {"role": "assistant", "content": first.raw},
                {"role": "user", "content": repair_instruction(detail)},
            ]
            return self._attempt(model, conversation, reply_format(with_text=False), request, timeout, show)

        return settle_reply(
            provider=self.name, first=first, repair=repair, on_delta=on_delta, request=request, prices=PRICES
        )

    def _attempt(
        self,
        model: str,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any],
        request: ProviderRequest,
        timeout: float,
        on_delta: DeltaCallback,
    ) -> _Reply:
        call: dict[str, Any] = {
            "model": model,
            "messages": messages,
            # max_tokens, not max_completion_tokens: the older name is the one that local
            # OpenAI-compatible servers understand.
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers = {"Authorization": f"Bearer {self.api_key or PLACEHOLDER_KEY}"}
        post = functools.partial(self._client.post_stream, self.endpoint, headers=headers, timeout=timeout)
        reply = _Reply(_StreamState(model=model), on_delta)
        try:
            try:
                opened = post({**call, "response_format": response_format})
                response = opened.__enter__()
            except http.StatusError as exc:
                if not _rejects_format(exc):
                    raise
                # A server without JSON-schema response formats: ask again without one; the
                # reply is then read as JSON if the model still writes it, or as markdown.
                opened = post(call)
                response = opened.__enter__()
        except Exception as exc:
            raise self._map_error(exc, model, timeout) from exc
        try:
            for piece in self._text_deltas(response, reply.state, timeout):
                reply.feed(piece)
        finally:
            opened.__exit__(None, None, None)
        reply.finish()
        return reply

    def _text_deltas(self, response: Any, state: _StreamState, timeout: float) -> Iterator[str]:
        """Content deltas in order, recording usage and finish reason on ``state``.

        A generator so that ``on_delta`` runs in the caller's frame and its own exceptions are
        never mistaken for vendor failures.
        """
        iterator = _chunks(response)
        while True:
            try:
                chunk = next(iterator)
                content = state.absorb(chunk)
            except StopIteration:
                break
            except Exception as exc:
                raise self._map_error(exc, state.requested_model, timeout) from exc
            if content:
                yield content
        if state.finish_reason is None:
            raise vendor.malformed_error(self.name, "the stream ended before the model finished.")

    def _map_error(self, exc: BaseException, model: str, timeout: float) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        endpoint = self.base_url or ""
        if isinstance(exc, http.StatusError):
            if exc.field("code") == "insufficient_quota":
                # OpenAI says 429 for an exhausted quota too, and no retry will refill it.
                return ProviderError(
                    f"The {self.name} provider has no quota left on this API key: check the billing of {KEY_SETTING}.",
                    transient=False,
                )
            return vendor.status_error(
                provider=self.name,
                status=exc.status,
                model=model,
                key_setting=KEY_SETTING,
                error_type=exc.field("type"),
                detail=exc.field("message") or exc.text or f"Error code: {exc.status}",
                headers=exc.headers,
                endpoint=endpoint,
            )
        if isinstance(exc, http.ProxyUnsupported):
            return ProviderError(f"The {self.name} provider cannot be reached: {exc}", transient=False)
        if isinstance(exc, http.Timeout):
            return vendor.timeout_error(self.name, timeout)
        if isinstance(exc, http.ConnectionLost):
            return vendor.connection_error(self.name, endpoint)
        if isinstance(exc, _StreamError):
            # An {"error": ...} object inside the stream: the server failed while generating.
            return ProviderError(
                f"The {self.name} provider reported an error while answering: {exc}",
                transient=True,
            )
        return vendor.malformed_error(self.name, f"{type(exc).__name__}: {exc}")


@functools.cache
def reply_format(*, with_text: bool) -> dict[str, Any]:
    """The ``response_format``: the design schema, with the markdown ``text`` field first unless
    this is the repair request, which asks for the structured part alone. Built once per process
    (shared: callers pass it on, never change it)."""
    schema = specialist_output_schema()
    name = "specialist_output"
    if with_text:
        text = {"type": "string", "description": "The whole markdown reply, written first."}
        schema = {
            **schema,
            "properties": {TEXT_FIELD: text, **schema["properties"]},
            "required": [TEXT_FIELD, *schema.get("required", [])],
        }
        name = "specialist_contribution"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


def _rejects_format(exc: http.StatusError) -> bool:
    """A 400 that names the response format: the server does not support it."""
    message = (exc.field("message") or exc.text).lower()
    return exc.status == 400 and ("response_format" in message or "json_schema" in message)


class _StreamError(Exception):
    """An ``error`` object sent inside the stream; its message is the exception's."""


class _Reply:
    """One streamed reply: shows its markdown as it grows, then yields the structured part.

    The first characters decide how it is read: a JSON object (optionally inside a ``` fence)
    shows its ``text`` field; anything else is markdown from a server that ignored the response
    format, shown as it comes.
    """

    def __init__(self, state: _StreamState, on_delta: DeltaCallback) -> None:
        self.state = state
        self.on_delta = on_delta
        self.raw = ""
        self.text = ""  # what has been shown of the markdown
        self.mode: str | None = None  # "json" | "markdown", once the first characters tell
        self._body_start = 0

    @property
    def stop_reason(self) -> str | None:
        return self.state.finish_reason

    @property
    def model(self) -> str:
        return self.state.model

    @property
    def tokens_in(self) -> int:
        return self.state.tokens_in

    @property
    def tokens_out(self) -> int:
        return self.state.tokens_out

    def feed(self, piece: str) -> None:
        self.raw += piece
        self._refresh(final=False)

    def finish(self) -> None:
        self._refresh(final=True)

    def _refresh(self, *, final: bool) -> None:
        if self.mode is None:
            self._sniff(final=final)
        if self.mode == "markdown":
            self._show(self.raw)
        elif self.mode == "json":
            self._show(self._partial_text())

    def structured(self) -> SpecialistOutput | None:
        """The validated structured part; None for a markdown reply. Raises InvalidStructuredOutput."""
        if self.mode != "json":
            return None
        body = self.raw[self._body_start :].strip()
        if body.endswith("```"):
            body = body[:-3].rstrip()
        try:
            data = json.loads(body)
        except ValueError as exc:
            cut = " (the reply was cut off at max_tokens)" if self.state.finish_reason == "length" else ""
            raise InvalidStructuredOutput(f"(root): the reply is not valid JSON: {exc}{cut}") from None
        if not isinstance(data, dict):
            raise InvalidStructuredOutput("(root): the reply is not a JSON object")
        text = data.pop(TEXT_FIELD, "")
        if not isinstance(text, str):
            raise InvalidStructuredOutput(f"{TEXT_FIELD}: Input should be a valid string")
        return validate_structured(data)

    def _sniff(self, *, final: bool) -> None:
        head = self.raw.lstrip()
        if not head:
            return
        offset = len(self.raw) - len(head)
        if head.startswith("{"):
            self.mode, self._body_start = "json", offset
            return
        if head.startswith("```"):
            newline = head.find("\n")
            rest = head[newline + 1 :].lstrip() if newline >= 0 else ""
            if rest.startswith("{"):
                self.mode, self._body_start = "json", offset + head.index("{", newline)
                return
            if not rest and not final:
                return  # the fence line or the line after it is still arriving
        elif "```".startswith(head) and not final:
            return  # one or two backticks: a fence may be starting
        self.mode = "markdown"

    def _partial_text(self) -> str:
        try:
            data = jiter.from_json(self.raw[self._body_start :].encode(), partial_mode="trailing-strings")
        except ValueError:
            return self.text  # not parseable yet (or trailing fence): wait for the final read
        text = data.get(TEXT_FIELD) if isinstance(data, dict) else None
        return text if isinstance(text, str) else self.text

    def _show(self, text: str) -> None:
        # Only ever extend what people have seen; a rewrite of shown text is not streamed.
        if len(text) > len(self.text) and text.startswith(self.text):
            delta = text[len(self.text) :]
            self.text = text
            self.on_delta(delta)


def _chunks(response: http.Response) -> Iterator[dict[str, Any]]:
    """The chunks of a chat-completions stream, as the JSON objects the server sent.

    Server-sent events as the SDK reads them: ``data:`` lines up to a blank line make one
    event; ``[DONE]`` ends the stream; an ``error`` object, in a chunk or as an ``error``
    event, is raised as :class:`_StreamError`. A chunk that is not JSON raises ``ValueError``."""
    data: list[str] = []
    event: str | None = None
    lines = response.lines()
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            continue
        if not data:
            continue
        text, kind = "\n".join(data), event
        data, event = [], None
        if text.startswith("[DONE]"):
            for _ in lines:  # the end of the body follows at once: read, the connection serves the next call
                pass
            return
        chunk = json.loads(text)
        if isinstance(chunk, dict) and chunk.get("error") and kind in (None, "error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise _StreamError(message if isinstance(message, str) and message else "An error occurred during streaming")
        if kind is None and isinstance(chunk, dict):
            yield chunk


class _StreamState:
    def __init__(self, *, model: str) -> None:
        self.requested_model = model
        self.model = model
        self.tokens_in = 0
        self.tokens_out = 0
        self.finish_reason: str | None = None

    def absorb(self, chunk: dict[str, Any]) -> str:
        """Record what the chunk says about the call; return its text, if any."""
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.tokens_in = int(usage.get("prompt_tokens") or 0)
            self.tokens_out = int(usage.get("completion_tokens") or 0)
        content = ""
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            if choice.get("index", 0) == 0 and isinstance(delta.get("content"), str):
                content += delta["content"]
        return content

