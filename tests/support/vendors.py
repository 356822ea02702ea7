"""A real local HTTP server that speaks the Anthropic Messages and OpenAI chat-completions wire
formats: the only test double, at the vendor's edge. Everything on our side of the connection is
the real code path, the official SDKs included.

Each request is answered by the first of:

* a scripted reply (``script(Reply(...), ...)``), taken in order: what a provider test wants to
  see, down to error statuses with ``retry-after``, malformed frames, silence (to provoke
  timeouts) and a connection dropped mid-body;
* the default answer, when the server has one (:class:`LLMServer`): the same text for every call,
  in the wire format of the path called, streamed or not as the request asks, after
  ``delay(index, body)`` seconds and with ``word_delay`` seconds between words. With
  ``stamp(index, body) -> (tokens, seconds)``, an OpenAI stream is instead ``tokens`` tokens spread
  evenly over ``seconds``, each reading ``[ts:<microseconds since the epoch>] `` (its wall-clock
  emission time), so a reader can tell how long each token took to reach it;
* otherwise 418, "nothing scripted".

Every request is recorded as a :class:`Call` (index, start and finish, model, user text, the raw
request, the stamps sent). Streams go out as HTTP/1.1 chunked bodies, one SSE frame per chunk, as
the real services send them.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
# Long enough to outlast any client timeout in the tests, short enough that a forgotten
# hang cannot stall the suite: stop() also releases it at once.
HANG_SECONDS = 5.0
DEFAULT_REPLY = (
    "Rule-checked answer from a local model.\n\n## Findings\n- The inventory names the services to integrate.\n\n"
    "## Recommendations\n- Follow the established REST and event patterns.\n\n## Open questions\n- None.\n"
)
DEFAULT_PROMPT_TOKENS = 100  # the usage the default answer reports for every prompt
STAMP = re.compile(r"\[ts:(\d+)\] ")

Delay = Callable[[int, dict], float]
Stamp = Callable[[int, dict], tuple[int, float] | None]


class _Cut(Exception):
    """Stop answering here: the connection closes without the body's end, as when a server dies."""


@dataclass
class Reply:
    """One response. ``events`` may be any iterable: a generator is read as the frames go out."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None  # a JSON response (errors, non-streamed answers)
    events: Iterable[bytes] | None = None  # SSE frames, sent as a chunked text/event-stream body
    delay: float = 0.0  # seconds before each frame
    hang: bool = False  # say nothing at all until the client gives up
    hang_after: int | None = None  # send this many frames, then go silent
    truncate_after: int | None = None  # send this many frames, then drop the connection


@dataclass
class Call:
    """One request as the server saw it; times are ``time.monotonic()``."""

    index: int
    started: float
    finished: float = 0.0  # when the whole reply was sent; 0.0 if it never was
    model: str = ""
    user: str = ""  # the first user message's text
    method: str = "POST"
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: Any = None
    stamps: list[int] = field(default_factory=list)  # microseconds since the epoch, one per stamped token


def stamps_in(text: str) -> list[int]:
    """The stamps a stamped stream carried, in order (microseconds since the epoch)."""
    return [int(value) for value in STAMP.findall(text)]


class FakeVendor:
    """The server. Without ``reply`` it answers only what is scripted; with it, every call that
    finds nothing scripted gets the default answer (see the module docstring)."""

    def __init__(
        self,
        *,
        reply: str | None = None,
        delay: Delay | None = None,
        word_delay: float = 0.0,
        stamp: Stamp | None = None,
    ) -> None:
        self.reply = reply
        self.delay: Delay = delay or (lambda index, body: 0.0)
        self.word_delay = word_delay
        self.stamp = stamp
        self.replies: deque[Reply] = deque()
        self.calls: list[Call] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.vendor = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The Anthropic SDK's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI SDK's base URL."""
        return f"{self.url}/v1"

    @property
    def received(self) -> list[Call]:
        return self.calls

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> FakeVendor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _begin(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[Call, Reply | None]:
        """Record the call; the reply it gets, or None for the default answer."""
        fields = body if isinstance(body, dict) else {}
        with self._lock:
            call = Call(
                index=len(self.calls), started=time.monotonic(), model=str(fields.get("model") or ""),
                user=_user_text(fields), method=method, path=path, headers=headers, body=body,
            )
            self.calls.append(call)
            if path not in (ANTHROPIC_PATH, OPENAI_PATH):
                return call, Reply(404, json_body={"error": {"type": "not_found_error", "message": f"no route {path}"}})
            if self.replies:
                return call, self.replies.popleft()
            if self.reply is None:
                return call, Reply(418, json_body={"error": {"type": "invalid_request_error", "message": "nothing scripted"}})
            return call, None

    def _answer(self, call: Call) -> Reply:
        """The default answer to ``call``, in its path's wire format."""
        body = call.body if isinstance(call.body, dict) else {}
        streamed = bool(body.get("stream"))
        openai = call.path == OPENAI_PATH
        plan = self.stamp(call.index, body) if self.stamp and openai and streamed else None
        if plan is not None:
            tokens, seconds = plan
            return Reply(events=openai_frames(self._stamped(call, tokens, seconds), model=call.model,
                                              prompt_tokens=DEFAULT_PROMPT_TOKENS, completion_tokens=tokens))
        words = (self.reply or "").split(" ")
        pieces = [word if i == 0 else " " + word for i, word in enumerate(words)]
        if not streamed:
            text = "".join(pieces)
            if openai:
                return openai_completion(text, model=call.model, prompt_tokens=DEFAULT_PROMPT_TOKENS,
                                         completion_tokens=len(words))
            return anthropic_message(text, model=call.model, input_tokens=DEFAULT_PROMPT_TOKENS, output_tokens=len(words))
        if openai:
            return Reply(events=openai_frames(self._spaced(pieces), model=call.model,
                                              prompt_tokens=DEFAULT_PROMPT_TOKENS, completion_tokens=len(words)))
        return Reply(events=anthropic_frames(self._spaced(pieces), model=call.model,
                                             input_tokens=DEFAULT_PROMPT_TOKENS, output_tokens=len(words)))

    def _spaced(self, pieces: list[str]) -> Iterator[str]:
        for i, piece in enumerate(pieces):
            if i and self.word_delay and self.released.wait(self.word_delay):
                raise _Cut
            yield piece

    def _stamped(self, call: Call, tokens: int, seconds: float) -> Iterator[str]:
        """``tokens`` tokens, the first at once and the last ``seconds`` later, evenly spaced on
        the clock (a slow reader does not shift the schedule)."""
        began = time.monotonic()
        step = seconds / (tokens - 1) if tokens > 1 else 0.0
        for i in range(tokens):
            pause = began + i * step - time.monotonic()
            if pause > 0 and self.released.wait(pause):
                raise _Cut
            stamp = time.time_ns() // 1000
            call.stamps.append(stamp)
            yield f"[ts:{stamp}] "


class LLMServer(FakeVendor):
    """A model that gives every call the same answer (:data:`DEFAULT_REPLY`): used by the
    benchmarks and by the tests that run specialists on real workers. ``delay(index, body)``
    decides how long each call waits before it answers; ``word_delay`` spaces the streamed words,
    so an answer streams for a while; ``stamp`` turns an OpenAI stream into time-stamped tokens."""

    def __init__(
        self,
        delay: Delay | None = None,
        word_delay: float = 0.0,
        reply: str = DEFAULT_REPLY,
        stamp: Stamp | None = None,
    ) -> None:
        super().__init__(reply=reply, delay=delay, word_delay=word_delay, stamp=stamp)


def _user_text(body: dict) -> str:
    """The first user message's text; content given as parts (both vendors allow it) is joined."""
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content)
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:
        vendor: FakeVendor = self.server.vendor  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        headers = {name.lower(): value for name, value in self.headers.items()}
        call, reply = vendor._begin("POST", self.path.split("?")[0], headers, body)
        self.close_connection = True
        try:
            if reply is None:
                if vendor.released.wait(vendor.delay(call.index, body if isinstance(body, dict) else {})):
                    return
                reply = vendor._answer(call)
            self._send(reply, vendor.released)
        except (_Cut, BrokenPipeError, ConnectionResetError):
            return  # cut short on purpose, or the client gave up (a timeout, a killed worker)
        call.finished = time.monotonic()

    def _send(self, reply: Reply, released: threading.Event) -> None:
        if reply.hang:
            released.wait(HANG_SECONDS)
            raise _Cut
        if reply.events is None:
            payload = json.dumps(reply.json_body if reply.json_body is not None else {}).encode()
            self._head(reply, {"content-type": "application/json", "content-length": str(len(payload))})
            self.wfile.write(payload)
            return
        self._head(reply, {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                           "transfer-encoding": "chunked"})
        for index, frame in enumerate(reply.events):
            if reply.truncate_after is not None and index >= reply.truncate_after:
                raise _Cut  # no terminating chunk: the client sees the body cut short
            if reply.hang_after is not None and index >= reply.hang_after:
                released.wait(HANG_SECONDS)
                raise _Cut
            if reply.delay and released.wait(reply.delay):
                raise _Cut
            self.wfile.write(b"%X\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _head(self, reply: Reply, headers: dict[str, str]) -> None:
        self.send_response(reply.status)
        for name, value in {**headers, "connection": "close", **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()


# ---------------------------------------------------------------------------- Anthropic wire


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def anthropic_frames(
    text_chunks: Iterable[str],
    *,
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 1200,
    output_tokens: int = 300,
    tool_input: dict[str, Any] | None = None,
    tool_json: str | None = None,
    tool_json_parts: int = 4,
    stop_reason: str | None = None,
    message_stop: bool = True,
) -> Iterator[bytes]:
    """A Messages API stream as Anthropic sends it, frame by frame as ``text_chunks`` come: a text
    block (none without chunks), an optional tool_use block.

    ``tool_json`` sends the tool input as this raw text instead (to send JSON that does not parse).
    """
    if tool_json is not None:
        tool_input = {}
    yield sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01FakeVendor",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        },
    )
    index = 0
    chunks = iter(text_chunks)
    first = next(chunks, None)
    if first is not None:
        yield sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        yield sse("ping", {"type": "ping"})
        for chunk in itertools.chain([first], chunks):
            yield sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}},
            )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    if tool_input is not None:
        yield sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": "toolu_01FakeVendor", "name": "report_contribution", "input": {}},
            },
        )
        # Like the API, the first delta is empty and the JSON arrives in arbitrary slices.
        encoded = tool_json if tool_json is not None else json.dumps(tool_input)
        size = max(1, len(encoded) // tool_json_parts + 1)
        for part in [""] + [encoded[i : i + size] for i in range(0, len(encoded), size)]:
            yield sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}},
            )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    reason = stop_reason or ("tool_use" if tool_input is not None else "end_turn")
    yield sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    if message_stop:
        yield sse("message_stop", {"type": "message_stop"})


def anthropic_events(text_chunks: Iterable[str], **options: Any) -> list[bytes]:
    """:func:`anthropic_frames` as a list, to script or to edit."""
    return list(anthropic_frames(text_chunks, **options))


def anthropic_message(
    text: str,
    *,
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 1200,
    output_tokens: int = 300,
    stop_reason: str = "end_turn",
) -> Reply:
    """A non-streamed Messages API answer."""
    return Reply(
        json_body={
            "id": "msg_01FakeVendor",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def anthropic_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status,
        headers={"request-id": "req_fake", **(headers or {})},
        json_body={
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": "req_fake",
        },
    )


# ---------------------------------------------------------------------------- OpenAI wire


def data_frame(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def openai_frames(
    text_chunks: Iterable[str],
    *,
    model: str = "llama3.1:8b",
    prompt_tokens: int | None = 900,
    completion_tokens: int = 250,
    finish_reason: str | None = "stop",
    done: bool = True,
) -> Iterator[bytes]:
    """A chat-completions stream, frame by frame as ``text_chunks`` come: role chunk, content
    chunks, finish chunk, usage chunk, [DONE]."""

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        return data_frame(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                "usage": usage,
            }
        )

    yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
    for text in text_chunks:
        yield chunk([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
    if finish_reason is not None:
        yield chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}])
    if prompt_tokens is not None:
        yield chunk(
            [],
            {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )
    if done:
        yield data_frame("[DONE]")


def openai_events(text_chunks: Iterable[str], **options: Any) -> list[bytes]:
    """:func:`openai_frames` as a list, to script or to edit."""
    return list(openai_frames(text_chunks, **options))


def openai_completion(
    text: str,
    *,
    model: str = "llama3.1:8b",
    prompt_tokens: int = 900,
    completion_tokens: int = 250,
    finish_reason: str = "stop",
) -> Reply:
    """A non-streamed chat completion."""
    return Reply(
        json_body={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def json_chunks(payload: dict[str, Any] | str, parts: int = 6) -> list[str]:
    """A JSON reply cut into ``parts`` content deltas, the way a model streams a structured answer."""
    encoded = payload if isinstance(payload, str) else json.dumps(payload)
    size = max(1, len(encoded) // parts + 1)
    return [encoded[i : i + size] for i in range(0, len(encoded), size)]


def openai_error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    return Reply(
        status,
        headers=headers or {},
        json_body={
            "error": {
                "message": message,
                "type": error_type,
                "param": None,
                "code": code,
            }
        },
    )
