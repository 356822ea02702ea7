"""The vendors' HTTP transport: lines as they arrive, kept connections, errors by kind."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions_app.providers import http
from tests.support.vendors import OPENAI_PATH, Reply, openai_error, openai_events

TEXT = ["alpha ", "beta ", "gamma"]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    lines=st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12), min_size=1, max_size=8),
    separator=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_lines_are_the_same_however_the_bytes_are_cut(lines, separator, cuts):
    data = (separator.join(lines) + separator).encode()

    assert list(http.lines_of(_split(data, cuts))) == lines


def test_a_last_line_without_a_break_and_a_break_cut_in_two():
    assert list(http.lines_of([b"data: a\r", b"\n\r", b"\ndata: \xc3", b"\xa9"])) == ["data: a", "", "data: é"]


def url(vendor) -> str:
    return f"{vendor.url}{OPENAI_PATH}"


def test_a_stream_is_read_line_by_line_as_it_arrives(fake_vendor):
    fake_vendor.script(Reply(events=_paced(openai_events(TEXT), pause=0.2)))
    client = http.Client()
    seen: list[tuple[float, str]] = []

    with client.post_stream(url(fake_vendor), {"model": "m"}, headers={"Authorization": "Bearer k"}, timeout=5) as response:
        for line in response.lines():
            seen.append((time.monotonic(), line))

    data = [line for _, line in seen if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]" and len(data) == len(openai_events(TEXT))
    assert seen[-1][0] - seen[0][0] >= 0.15  # the first lines came before the pause, not with the rest
    sent = fake_vendor.received[0]
    assert sent.body == {"model": "m"} and sent.headers["authorization"] == "Bearer k"
    assert sent.headers["content-type"] == "application/json"


def _paced(frames: list[bytes], *, pause: float):
    yield frames[0]
    time.sleep(pause)
    yield from frames[1:]


def test_an_error_status_carries_its_error_object_and_headers(fake_vendor):
    fake_vendor.script(openai_error(429, "Rate limit reached", error_type="requests", code="rate_limit_exceeded",
                                    headers={"retry-after": "3"}))

    with pytest.raises(http.StatusError) as caught:
        with http.Client().post_stream(url(fake_vendor), {}, headers={}, timeout=5):
            pass

    assert caught.value.status == 429
    assert (caught.value.field("message"), caught.value.field("code")) == ("Rate limit reached", "rate_limit_exceeded")
    assert caught.value.headers["Retry-After"] == "3"


def test_a_stream_cut_off_is_a_lost_connection_and_the_next_call_works(fake_vendor):
    fake_vendor.script(Reply(events=openai_events(TEXT), truncate_after=2), Reply(events=openai_events(TEXT)))
    client = http.Client()

    with pytest.raises(http.ConnectionLost):
        with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
            list(response.lines())
    with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
        assert list(response.lines())[-2] == "data: [DONE]"


def test_a_stream_left_half_read_does_not_spoil_the_next_call(fake_vendor):
    fake_vendor.script(Reply(events=openai_events(TEXT)), Reply(events=openai_events(["whole"])))
    client = http.Client()

    with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
        next(response.lines())
    with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
        lines = list(response.lines())

    assert any('"whole"' in line for line in lines) and lines[-2] == "data: [DONE]"


def test_a_silent_server_times_out(fake_vendor):
    fake_vendor.script(Reply(hang=True))
    started = time.monotonic()

    with pytest.raises(http.Timeout):
        with http.Client().post_stream(url(fake_vendor), {}, headers={}, timeout=0.3):
            pass

    assert time.monotonic() - started < 2


def test_nobody_listening_is_a_lost_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    with pytest.raises(http.ConnectionLost):
        with http.Client().post_stream(f"http://127.0.0.1:{port}/v1/chat/completions", {}, headers={}, timeout=2):
            pass


class _Unchunked(BaseHTTPRequestHandler):
    """An HTTP/1.0-style stream: no length, no chunks, the end of the body is the connection's close."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b"data: one\n\n")
        self.wfile.flush()
        time.sleep(0.3)
        self.wfile.write(b"data: two\n\n")

    def log_message(self, *args) -> None:
        pass


def test_a_stream_without_chunks_is_read_as_it_arrives_too():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unchunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    arrivals: list[tuple[float, str]] = []
    try:
        with http.Client().post_stream(f"http://127.0.0.1:{server.server_port}/", {}, headers={}, timeout=5) as response:
            for line in response.lines():
                arrivals.append((time.monotonic(), line))
    finally:
        server.shutdown()
        server.server_close()

    assert [line for _, line in arrivals] == ["data: one", "", "data: two", ""]
    assert arrivals[2][0] - arrivals[0][0] >= 0.2


def test_a_proxy_named_in_the_environment_is_used_unless_the_host_is_excepted(fake_vendor, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake_vendor.url)  # the local server plays the proxy
    fake_vendor.script(Reply(events=openai_events(TEXT)))
    client = http.Client()

    with pytest.raises(http.StatusError) as caught:  # it has no route for the absolute form a proxy gets
        with client.post_stream("http://vendor.example/v1/chat/completions", {}, headers={}, timeout=5):
            pass
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
        lines = list(response.lines())

    assert caught.value.status == 404 and "no route http://vendor.example/v1/chat/completions" in caught.value.text
    assert lines[-2] == "data: [DONE]" and fake_vendor.received[-1].path == OPENAI_PATH


class _KeepAlive(BaseHTTPRequestHandler):
    """An HTTP/1.1 server that keeps connections open and streams an OpenAI answer in chunks;
    it counts the connections it was asked on."""

    protocol_version = "HTTP/1.1"
    connections: set[int] = set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).connections.add(self.client_address[1])
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for frame in openai_events(TEXT):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args) -> None:
        pass


def test_calls_one_after_another_share_one_connection(make_request):
    from sessions_app.providers.openai import OpenAIProvider

    _KeepAlive.connections = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        adapter = OpenAIProvider(base_url=f"http://127.0.0.1:{server.server_port}/v1")
        texts = [adapter.run(make_request(), lambda _: None).text for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()

    assert texts == ["".join(TEXT)] * 3
    assert len(_KeepAlive.connections) == 1


def test_the_environment_is_read_for_proxies_once_until_a_proxy_variable_changes(fake_vendor, monkeypatch):
    for name in http.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    lookups = []
    real = http.getproxies

    def getproxies():
        lookups.append(1)
        return real()

    monkeypatch.setattr(http, "getproxies", getproxies)
    client = http.Client()
    for _ in range(3):
        fake_vendor.script(Reply(events=openai_events(TEXT)))
        with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
            list(response.lines())
    assert len(lookups) == 1
    monkeypatch.setenv("no_proxy", "example.org")  # any proxy variable: the route is decided again
    fake_vendor.script(Reply(events=openai_events(TEXT)))
    with client.post_stream(url(fake_vendor), {}, headers={}, timeout=5) as response:
        list(response.lines())
    assert len(lookups) == 2


def test_proxy_credentials_are_sent_and_other_proxies_are_refused(fake_vendor, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = fake_vendor.url.rsplit(":", 1)[1]
    monkeypatch.setenv("ALL_PROXY", f"http://maestro:s%40cret@127.0.0.1:{port}")

    with pytest.raises(http.StatusError):  # the local server, as the proxy, has no route for the absolute form
        with http.Client().post_stream("http://vendor.example/v1/chat/completions", {}, headers={}, timeout=5):
            pass
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(http.ProxyUnsupported, match="socks5://127.0.0.1"):
        with http.Client().post_stream("http://vendor.example/v1/chat/completions", {}, headers={}, timeout=5):
            pass

    assert fake_vendor.received[-1].headers["proxy-authorization"] == "Basic bWFlc3RybzpzQGNyZXQ="  # maestro:s@cret


def test_a_redirect_is_an_error_status_and_bad_bytes_do_not_end_the_stream(fake_vendor):
    fake_vendor.script(Reply(status=307, headers={"location": "https://elsewhere.example/v1/chat/completions"}, json_body={}))

    with pytest.raises(http.StatusError) as caught:
        with http.Client().post_stream(url(fake_vendor), {}, headers={}, timeout=5):
            pass

    assert caught.value.status == 307
    assert list(http.lines_of([b"data: caf\xe9\n"])) == ["data: caf\ufffd"]
