"""Claude through the official ``anthropic`` SDK: streamed text, structured output by tool use.

The model writes its markdown reply (streamed to ``on_delta`` as it arrives) and then calls the
``report_contribution`` tool, whose ``input_schema`` is
:func:`~sessions_app.design.schema.specialist_output_schema` (the pydantic model, one schema):
summary, findings, positions with evidence, proposal changes, plan items and checks.
``tool_choice`` stays ``auto`` because a forced tool call makes the model skip the text.

The tool input is validated with ``SpecialistOutput.model_validate``. When it does not fit (a
schema violation, JSON that does not parse, input cut off at ``max_tokens``), the adapter makes
one more request, a repair: the conversation so far, a ``tool_result`` with ``is_error`` naming
the field and the problem, and ``tool_choice`` forcing the tool, so that only the structured
part comes back and the text already shown stands. If that fails too, the call ends with a
permanent ProviderError naming the field. A reply without the tool call is not an error:
findings and positions are then read from the text (``position: Q1 -> ...`` lines) and the
proposal changes are empty.

The SDK's own retries are off: Celery retries transient errors, with the message and
``retry_after`` this module provides.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2

from sessions_app.design.schema import SpecialistOutput, specialist_output_schema
from sessions_app.providers import vendor
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

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_TIMEOUT = 120.0
KEY_SETTING = "ANTHROPIC_API_KEY"
MISSING_KEY = "The anthropic provider has no API key: set ANTHROPIC_API_KEY."

# USD per million tokens (input, output): an estimate from the public price list, for budgets
# and display only; the invoice is the truth. Rows match by the longest prefix of the model id
# ("claude-sonnet-4-5-20250929" uses "claude-sonnet-4-5"); an unknown model costs 0.
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}

TOOL_NAME = "report_contribution"
REPORT_TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": (
        "Record the structured part of your contribution after you have written it as text: a short "
        "summary, new findings, one position per key question with its evidence, the proposal changes, "
        "plan items and integration checks this round asks for."
    ),
    "input_schema": specialist_output_schema(),
}
# The SDK raises this (a ValueError) while streaming when the tool input is not valid JSON.
_BAD_TOOL_JSON = "Unable to parse tool parameter JSON"
_JIT_ERROR = re.compile(r"Error: (?P<why>.+?)\. JSON:", re.DOTALL)


@dataclass
class _Attempt:
    """What one request gave: its streamed text, the final message, usage."""

    text: str
    message: Any | None  # None when the stream stopped on tool input that is not JSON
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    bad_json: str | None = None  # why the tool input did not parse

    @property
    def stop_reason(self) -> str | None:
        return getattr(self.message, "stop_reason", None)

    def structured(self) -> SpecialistOutput | None:
        """The validated tool input; None without a tool call. Raises InvalidStructuredOutput."""
        if self.bad_json:
            raise InvalidStructuredOutput(self.bad_json)
        block = _tool_block(self)
        if block is None:
            return None
        if self.stop_reason == "max_tokens":
            # The SDK parses tool JSON leniently, so a cut-off input would pass as a shorter one.
            raise InvalidStructuredOutput(f"(root): the {TOOL_NAME} input was cut off at max_tokens")
        return validate_structured(block.input)


class _BadToolJson(Exception):
    pass


class AnthropicProvider(Provider):
    name = "anthropic"
    label = "Claude (Anthropic)"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        max_retries: int = 0,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_key = (api_key or "").strip() or None
        self.base_url = (base_url or "").strip() or DEFAULT_BASE_URL
        self.model = model or DEFAULT_MODEL
        self.max_retries = max_retries
        self.timeout = timeout
        self._client: anthropic.Anthropic | None = None
        self._client_lock = threading.Lock()

    def _get_client(self) -> anthropic.Anthropic:
        with self._client_lock:
            if self._client is None:
                # The base URL is passed explicitly so the SDK never falls back to the process
                # environment: configuration comes from settings, in one place.
                self._client = anthropic.Anthropic(
                    api_key=self.api_key,
                    base_url=self.base_url,
                    max_retries=self.max_retries,
                    timeout=self.timeout or DEFAULT_TIMEOUT,
                )
            return self._client

    def run(self, request: ProviderRequest, on_delta: DeltaCallback) -> ProviderResult:
        if not self.api_key:
            raise ProviderError(MISSING_KEY, transient=False)
        model = request.model or self.model
        timeout = vendor.call_timeout(self.timeout, request.timeout, DEFAULT_TIMEOUT)
        system, user = build_messages(request, tool_name=TOOL_NAME)
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]

        first = self._attempt(model, system, messages, {"type": "auto"}, request, timeout, on_delta)

        def repair(detail: str, show: DeltaCallback) -> _Attempt:
            # The text stands: the tool call alone is asked for again, forced this time.
            forced = {"type": "tool", "name": TOOL_NAME}
            return self._attempt(
                model, system, _repair_messages(messages, first, detail), forced, request, timeout, show
            )

        return settle_reply(
            provider=self.name, first=first, repair=repair, on_delta=on_delta, request=request, prices=PRICES
        )

    def _attempt(
        self,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        tool_choice: dict[str, Any],
        request: ProviderRequest,
        timeout: float,
        on_delta: DeltaCallback,
    ) -> _Attempt:
        """One streamed request; text deltas go to ``on_delta`` as they arrive."""
        try:
            manager = self._get_client().messages.stream(
                model=model,
                max_tokens=request.max_tokens,
                system=system,
                messages=messages,  # type: ignore[arg-type]
                tools=[REPORT_TOOL],  # type: ignore[list-item]
                tool_choice=tool_choice,  # type: ignore[arg-type]
                timeout=timeout,
            )
            stream = manager.__enter__()
        except Exception as exc:
            raise self._map_error(exc, model, timeout) from exc
        pieces: list[str] = []
        message: Any | None = None
        bad_json: str | None = None
        try:
            try:
                for text in self._text_deltas(stream, model, timeout):
                    pieces.append(text)
                    on_delta(text)
            except _BadToolJson as bad:
                bad_json = str(bad)
            else:
                message = self._guard(stream.get_final_message, model, timeout)
        finally:
            stream.close()
        # After bad tool JSON there is no final message, only the snapshot so far (for usage).
        snapshot = message if message is not None else _snapshot(stream)
        usage = getattr(snapshot, "usage", None)
        return _Attempt(
            text="".join(pieces),
            message=message,
            model=getattr(snapshot, "model", None) or model,
            tokens_in=int(getattr(usage, "input_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "output_tokens", 0) or 0),
            bad_json=bad_json,
        )

    def _text_deltas(self, stream: Any, model: str, timeout: float) -> Iterator[str]:
        """Text deltas in order; vendor failures surface as ProviderError.

        A generator so that ``on_delta`` runs in the caller's frame: an exception raised by the
        callback (a cancelled run, say) passes through untouched instead of being mislabelled.
        """
        iterator = iter(stream)
        saw_stop = False
        while True:
            try:
                event = next(iterator)
            except StopIteration:
                break
            except ValueError as exc:
                if not str(exc).startswith(_BAD_TOOL_JSON):
                    raise self._map_error(exc, model, timeout) from exc
                found = _JIT_ERROR.search(str(exc))
                why = f" ({found['why']})" if found else ""
                raise _BadToolJson(f"(root): the {TOOL_NAME} input is not valid JSON{why}") from exc
            except Exception as exc:
                raise self._map_error(exc, model, timeout) from exc
            kind = getattr(event, "type", None)
            if kind == "text":
                yield event.text
            elif kind == "message_stop":
                saw_stop = True
        if not saw_stop:
            raise vendor.malformed_error(self.name, "the stream ended before message_stop.")

    def _guard(self, call: Any, model: str, timeout: float) -> Any:
        try:
            return call()
        except Exception as exc:
            raise self._map_error(exc, model, timeout) from exc

    def _map_error(self, exc: BaseException, model: str, timeout: float) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, anthropic.APIStatusError):
            return vendor.status_error(
                provider=self.name,
                status=exc.status_code,
                model=model,
                key_setting=KEY_SETTING,
                error_type=_error_type(exc.body),
                detail=_error_message(exc.body) or exc.message,
                headers=exc.response.headers,
            )
        # The SDK wraps transport failures before the response, but not while the stream body is
        # read: those arrive as bare httpx2 vendor.
        if isinstance(exc, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return vendor.timeout_error(self.name, timeout)
        if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
            return vendor.connection_error(self.name, self.base_url)
        return vendor.malformed_error(self.name, f"{type(exc).__name__}: {exc}")


def _error_type(body: object) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _error_message(body: object) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _snapshot(stream: Any) -> Any | None:
    try:
        return stream.current_message_snapshot
    except AssertionError:  # nothing arrived before the failure
        return None


def _tool_block(attempt: _Attempt) -> Any | None:
    if attempt.message is None:
        return None
    return next(
        (
            block
            for block in attempt.message.content
            if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME
        ),
        None,
    )


def _repair_messages(messages: list[dict[str, Any]], attempt: _Attempt, detail: str) -> list[dict[str, Any]]:
    """The conversation for the repair request: the first reply, then what was wrong with it."""
    instruction = repair_instruction(detail, tool_name=TOOL_NAME)
    block = _tool_block(attempt)
    assistant: list[dict[str, Any]] = []
    if attempt.text.strip():
        assistant.append({"type": "text", "text": attempt.text})
    if block is not None:
        tool_input = block.input if isinstance(block.input, dict) else {}
        assistant.append({"type": "tool_use", "id": block.id, "name": TOOL_NAME, "input": tool_input})
        reply: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": block.id, "is_error": True, "content": instruction}
        ]
    else:
        reply = [{"type": "text", "text": instruction}]
    if not assistant:
        # Nothing usable to replay as the assistant's turn: say it in the user's turn.
        return [{"role": "user", "content": [{"type": "text", "text": messages[0]["content"]}, *reply]}]
    return [*messages, {"role": "assistant", "content": assistant}, {"role": "user", "content": reply}]
