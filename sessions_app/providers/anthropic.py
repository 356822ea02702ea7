"""Claude through the official ``anthropic`` SDK: streamed text, structured output by tool use.

One request per call: the model writes its markdown reply (streamed to ``on_delta`` as it
arrives) and then calls the ``report_contribution`` tool, whose input carries the summary,
findings and positions. ``tool_choice`` stays ``auto`` because a forced tool call makes the
model skip the text; if the tool call is missing, findings and positions are read from the
text (``position: Q1 -> ...`` lines) instead. The SDK's own retries are off: Celery retries
transient errors, with the message and ``retry_after`` this module provides.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2

from sessions_app.providers import vendor
from sessions_app.providers.base import (
    DeltaCallback,
    Position,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
)
from sessions_app.providers.prompting import (
    build_messages,
    clean_finding,
    match_option,
    parse_findings,
    parse_positions,
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
        "Record the structured part of your contribution after you have written it as text: "
        "a short summary, your findings, and one position per key question."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "One paragraph."},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                        "severity": {
                            "type": "string",
                            "enum": ["info", "warning", "critical"],
                        },
                        "services": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["title", "severity"],
                },
            },
            "positions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {
                            "type": "string",
                            "description": "The key question's ref, e.g. Q1.",
                        },
                        "option": {
                            "type": "string",
                            "description": "One of the listed options, verbatim.",
                        },
                        "rationale": {"type": "string"},
                    },
                    "required": ["question", "option"],
                },
            },
        },
        "required": ["summary", "findings", "positions"],
    },
}


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

        streamed: list[str] = []
        try:
            manager = self._get_client().messages.stream(
                model=model,
                max_tokens=request.max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                tools=[REPORT_TOOL],  # type: ignore[list-item]
                tool_choice={"type": "auto"},
                timeout=timeout,
            )
            stream = manager.__enter__()
        except Exception as exc:
            raise self._map_error(exc, model, timeout) from exc
        try:
            for text in self._text_deltas(stream, model, timeout):
                streamed.append(text)
                on_delta(text)
            message = self._guard(stream.get_final_message, model, timeout)
        finally:
            stream.close()

        return self._result(request, model, message, "".join(streamed), on_delta)

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

    def _result(
        self,
        request: ProviderRequest,
        model: str,
        message: Any,
        text: str,
        on_delta: DeltaCallback,
    ) -> ProviderResult:
        tool_input = next(
            (
                block.input
                for block in message.content
                if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME
            ),
            None,
        )
        structured = tool_input if isinstance(tool_input, dict) else {}
        if not text.strip():
            # The model went straight to the tool: the contribution still needs readable text.
            text = render_structured(structured)
            if not text:
                raise vendor.empty_error(self.name, getattr(message, "stop_reason", None))
            on_delta(text)

        findings = [f for f in (clean_finding(raw) for raw in structured.get("findings") or []) if f]
        positions = self._positions(structured.get("positions"), request)
        text_positions = parse_positions(text, request.key_questions)
        known = {p.question for p in positions}
        positions += [p for p in text_positions if p.question not in known]

        usage = getattr(message, "usage", None)
        tokens_in = int(getattr(usage, "input_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "output_tokens", 0) or 0)
        reported_model = getattr(message, "model", None) or model
        return ProviderResult(
            text=text,
            provider=self.name,
            model=reported_model,
            findings=findings or parse_findings(text),
            positions=positions,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=vendor.price(reported_model, tokens_in, tokens_out, PRICES),
            summary=str(structured.get("summary") or "").strip(),
        )

    @staticmethod
    def _positions(raw: object, request: ProviderRequest) -> list[Position]:
        if not isinstance(raw, list):
            return []
        by_ref = {q.ref.lower(): q for q in request.key_questions}
        positions: list[Position] = []
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, dict):
                continue
            ref = str(item.get("question") or "").strip()
            option = str(item.get("option") or "").strip()
            question = by_ref.get(ref.lower())
            if not ref or not option or ref.lower() in seen or (request.key_questions and question is None):
                continue
            seen.add(ref.lower())
            positions.append(
                Position(
                    question=question.ref if question else ref,
                    option=match_option(option, question.options) if question else option,
                    rationale=str(item.get("rationale") or "").strip(),
                )
            )
        return positions

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


def render_structured(structured: dict[str, Any]) -> str:
    """Markdown in the reply format from the tool input alone."""
    if not structured:
        return ""
    lines: list[str] = []
    summary = str(structured.get("summary") or "").strip()
    if summary:
        lines += [summary, ""]
    lines.append("## Findings")
    lines.append("")
    findings = [f for f in (clean_finding(raw) for raw in structured.get("findings") or []) if f]
    for finding in findings:
        services = f" ({', '.join(finding['services'])})" if finding["services"] else ""
        detail = f": {finding['detail']}" if finding["detail"] and finding["detail"] != finding["title"] else ""
        lines.append(f"- [{finding['severity']}] {finding['title']}{services}{detail}")
    if not findings:
        lines.append("- none reported")
    positions = [p for p in structured.get("positions") or [] if isinstance(p, dict)]
    if positions:
        lines += ["", "## Positions"]
        for item in positions:
            rationale = str(item.get("rationale") or "").strip()
            because = f" because {rationale}" if rationale else ""
            lines += [
                "",
                f"position: {item.get('question', '')} -> {item.get('option', '')}{because}",
            ]
    return "\n".join(lines)
