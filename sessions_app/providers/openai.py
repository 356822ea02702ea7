"""Any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, LM Studio, llama.cpp server)
through the official ``openai`` SDK.

Local servers rarely implement tool calling the same way, so structured output is read from
the text: findings from the bullets under ``## Findings`` and positions from
``position: Q1 -> option because reason`` lines, both requested by the shared prompt. Usage
comes from the final chunk when the server honours ``stream_options.include_usage``;
otherwise it is recorded as 0. The SDK's own retries are off: Celery retries transient vendor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import openai

from sessions_app.providers import vendor
from sessions_app.providers.base import (
    DeltaCallback,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
)
from sessions_app.providers.prompting import (
    build_messages,
    parse_findings,
    parse_positions,
)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 120.0
KEY_SETTING = "OPENAI_API_KEY"
NOT_CONFIGURED = "The openai provider is not configured: set OPENAI_BASE_URL."
# Local servers ignore the key, but the SDK refuses to build a client without one; this value
# is only ever sent to the configured base URL.
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
        max_retries: int = 0,
    ) -> None:
        self.base_url = (base_url or "").strip() or None
        self.api_key = (api_key or "").strip() or None
        self.model = model or DEFAULT_MODEL
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: openai.OpenAI | None = None
        self._client_lock = threading.Lock()

    def _get_client(self) -> openai.OpenAI:
        with self._client_lock:
            if self._client is None:
                self._client = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key or PLACEHOLDER_KEY,
                    max_retries=self.max_retries,
                    timeout=self.timeout or DEFAULT_TIMEOUT,
                )
            return self._client

    def run(self, request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
        if not self.base_url:
            raise ProviderError(NOT_CONFIGURED, transient=False)
        model = request.model or self.model
        timeout = vendor.call_timeout(self.timeout, request.timeout, DEFAULT_TIMEOUT)
        system, user = build_messages(request)

        try:
            stream = self._get_client().chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                # max_tokens, not max_completion_tokens: the older name is the one that local
                # OpenAI-compatible servers understand.
                max_tokens=request.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                timeout=timeout,
            )
        except Exception as exc:
            raise self._map_error(exc, model, timeout) from exc

        state = _StreamState(model=model)
        pieces: list[str] = []
        try:
            for piece in self._text_deltas(stream, state, timeout):
                pieces.append(piece)
                on_delta(piece)
        finally:
            stream.close()

        text = "".join(pieces)
        if not text.strip():
            raise vendor.empty_error(self.name, state.finish_reason)
        return ProviderResult(
            text=text,
            provider=self.name,
            model=state.model,
            findings=parse_findings(text),
            positions=parse_positions(text, request.key_questions),
            tokens_in=state.tokens_in,
            tokens_out=state.tokens_out,
            cost=vendor.price(state.model, state.tokens_in, state.tokens_out, PRICES),
        )

    def _text_deltas(self, stream: Any, state: _StreamState, timeout: float) -> Iterator[str]:
        """Content deltas in order, recording usage and finish reason on ``state``.

        A generator so that ``on_delta`` runs in the caller's frame and its own exceptions are
        never mistaken for vendor failures.
        """
        iterator = iter(stream)
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
        if isinstance(exc, openai.APIStatusError):
            if exc.code == "insufficient_quota":
                # OpenAI says 429 for an exhausted quota too, and no retry will refill it.
                return ProviderError(
                    f"The {self.name} provider has no quota left on this API key: check the billing of {KEY_SETTING}.",
                    transient=False,
                )
            return vendor.status_error(
                provider=self.name,
                status=exc.status_code,
                model=model,
                key_setting=KEY_SETTING,
                error_type=_error_field(exc.body, "type"),
                detail=_error_field(exc.body, "message") or exc.message,
                headers=exc.response.headers,
                endpoint=endpoint,
            )
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
            return vendor.timeout_error(self.name, timeout)
        if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
            return vendor.connection_error(self.name, endpoint)
        if type(exc) is openai.APIError:
            # An {"error": ...} object inside the stream: the server failed while generating.
            return ProviderError(
                f"The {self.name} provider reported an error while answering: {exc.message}",
                transient=True,
            )
        return vendor.malformed_error(self.name, f"{type(exc).__name__}: {exc}")


class _StreamState:
    def __init__(self, *, model: str) -> None:
        self.requested_model = model
        self.model = model
        self.tokens_in = 0
        self.tokens_out = 0
        self.finish_reason: str | None = None

    def absorb(self, chunk: Any) -> str:
        """Record what the chunk says about the call; return its text, if any."""
        if getattr(chunk, "model", None):
            self.model = chunk.model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
            self.tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        content = ""
        for choice in chunk.choices or []:
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            if choice.index == 0 and choice.delta is not None and choice.delta.content:
                content += choice.delta.content
        return content


def _error_field(body: object, name: str) -> str | None:
    # The SDK hands over the "error" object itself for status errors; some servers nest it.
    error = body.get("error", body) if isinstance(body, dict) else None
    value = error.get(name) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None
