"""A small local server that speaks the OpenAI chat-completions streaming wire format.

Used by the benchmarks (a model that answers each call after a fixed delay) and by the tests
that run specialists on real Celery workers. It is the edge of the world we cannot reach in a
test: everything on our side of the HTTP connection is the real code path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    index: int
    started: float
    finished: float = 0.0
    model: str = ""
    user: str = ""


@dataclass
class LLMServer:
    """``delay(index, body) -> seconds`` decides how long each call takes before it answers;
    ``word_delay`` spaces the streamed words, so an answer streams for a while."""

    delay: Callable[[int, dict], float] = lambda index, body: 0.0
    word_delay: float = 0.0
    reply: str = (
        "Rule-checked answer from a local model.\n\n## Findings\n- The inventory names the services to integrate.\n\n"
        "## Recommendations\n- Follow the established REST and event patterns.\n\n## Open questions\n- None.\n"
    )
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def _begin(self, body: dict) -> Call:
        with self._lock:
            call = Call(index=len(self.calls), started=time.monotonic(), model=body.get("model", ""))
            messages = body.get("messages") or []
            call.user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
            self.calls.append(call)
            return call


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:
        owner: LLMServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        call = owner._begin(body)
        wait = owner.delay(call.index, body)
        if owner.released.wait(wait):
            return
        self._stream(owner, call, body)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller went away (a worker was killed mid-answer): that call is over

    def _stream(self, owner: LLMServer, call: Call, body: dict) -> None:
        words = owner.reply.split(" ")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        created = int(time.time())
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            if owner.word_delay and i and owner.released.wait(owner.word_delay):
                return
            self._chunk({"id": "cmpl-local", "object": "chat.completion.chunk", "created": created,
                         "model": body.get("model", ""), "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        self._chunk({"id": "cmpl-local", "object": "chat.completion.chunk", "created": created, "model": body.get("model", ""),
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self._chunk({"id": "cmpl-local", "object": "chat.completion.chunk", "created": created, "model": body.get("model", ""),
                     "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": len(words), "total_tokens": 100 + len(words)}})
        self._raw(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        call.finished = time.monotonic()

    def _chunk(self, payload: dict) -> None:
        self._raw(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _raw(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
