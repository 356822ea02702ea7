"""A real local HTTP server that speaks the Anthropic Messages and OpenAI chat-completions wire
formats, so the adapters are tested through the official SDKs end to end (the only test double
is at the vendor's edge).

Each test scripts the replies it wants, in order, and afterwards reads what the server received.
Streams go out as HTTP/1.1 chunked bodies, one SSE frame per chunk, like the real services; a
reply can delay each frame, stay silent (to provoke timeouts), or drop the connection mid-body.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
# Long enough to outlast any client timeout in the tests, short enough that a forgotten
# hang cannot stall the suite: teardown also releases it at once.
HANG_SECONDS = 5.0


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None  # a JSON response (errors)
    events: list[bytes] | None = None  # SSE frames, sent as a chunked text/event-stream body
    delay: float = 0.0  # seconds before each frame
    hang: bool = False  # say nothing at all until the client gives up
    hang_after: int | None = None  # send this many frames, then go silent
    truncate_after: int | None = None  # send this many frames, then drop the connection


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any


class FakeVendor:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.vendor = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

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

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            if received.path not in (ANTHROPIC_PATH, OPENAI_PATH):
                return Reply(
                    404,
                    json_body={
                        "error": {
                            "type": "not_found_error",
                            "message": f"no route {received.path}",
                        }
                    },
                )
            if not self.replies:
                return Reply(
                    418,
                    json_body={
                        "error": {
                            "type": "invalid_request_error",
                            "message": "nothing scripted",
                        }
                    },
                )
            return self.replies.popleft()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
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
        reply = vendor._next(Received("POST", self.path.split("?")[0], headers, body))
        self.close_connection = True
        try:
            self._send(reply, vendor.released)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing left to say

    def _send(self, reply: Reply, released: threading.Event) -> None:
        if reply.hang:
            released.wait(HANG_SECONDS)
            return
        if reply.events is None:
            payload = json.dumps(reply.json_body if reply.json_body is not None else {}).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("connection", "close")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            return

        self.send_response(reply.status)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for index, frame in enumerate(reply.events):
            if reply.truncate_after is not None and index >= reply.truncate_after:
                return  # no terminating chunk: the client sees the body cut short
            if reply.hang_after is not None and index >= reply.hang_after:
                released.wait(HANG_SECONDS)
                return
            if reply.delay:
                released.wait(reply.delay)
            self.wfile.write(b"%X\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    vendor = FakeVendor().start()
    try:
        yield vendor
    finally:
        vendor.stop()


# ---------------------------------------------------------------------------- Anthropic wire


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def anthropic_events(
    text_chunks: list[str],
    *,
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 1200,
    output_tokens: int = 300,
    tool_input: dict[str, Any] | None = None,
    tool_json: str | None = None,
    tool_json_parts: int = 4,
    stop_reason: str | None = None,
    message_stop: bool = True,
) -> list[bytes]:
    """A Messages API stream as Anthropic sends it: text block, optional tool_use block.

    ``tool_json`` sends the tool input as this raw text instead (to send JSON that does not parse).
    """
    if tool_json is not None:
        tool_input = {}
    frames = [
        sse(
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
    ]
    index = 0
    if text_chunks:
        frames.append(
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        frames.append(sse("ping", {"type": "ping"}))
        for chunk in text_chunks:
            frames.append(
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": chunk},
                    },
                )
            )
        frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    if tool_input is not None:
        frames.append(
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_01FakeVendor",
                        "name": "report_contribution",
                        "input": {},
                    },
                },
            )
        )
        # Like the API, the first delta is empty and the JSON arrives in arbitrary slices.
        encoded = tool_json if tool_json is not None else json.dumps(tool_input)
        size = max(1, len(encoded) // tool_json_parts + 1)
        parts = [""] + [encoded[i : i + size] for i in range(0, len(encoded), size)]
        for part in parts:
            frames.append(
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            )
        frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    reason = stop_reason or ("tool_use" if tool_input is not None else "end_turn")
    frames.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    if message_stop:
        frames.append(sse("message_stop", {"type": "message_stop"}))
    return frames


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


def openai_events(
    text_chunks: list[str],
    *,
    model: str = "llama3.1:8b",
    prompt_tokens: int | None = 900,
    completion_tokens: int = 250,
    finish_reason: str | None = "stop",
    done: bool = True,
) -> list[bytes]:
    """A chat-completions stream: role chunk, content chunks, finish chunk, usage chunk, [DONE]."""

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

    frames = [
        chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
    ]
    for text in text_chunks:
        frames.append(
            chunk(
                [
                    {
                        "index": 0,
                        "delta": {"content": text},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        )
    if finish_reason is not None:
        frames.append(
            chunk(
                [
                    {
                        "index": 0,
                        "delta": {},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ]
            )
        )
    if prompt_tokens is not None:
        frames.append(
            chunk(
                [],
                {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            )
        )
    if done:
        frames.append(data_frame("[DONE]"))
    return frames


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
