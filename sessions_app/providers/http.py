"""Streaming JSON POSTs to a vendor's HTTP API, over urllib3's connection pools.

An adapter posts its request and reads the answer line by line as it arrives (server-sent
events); what can go wrong on the way is raised as one of three errors of this module, which
the adapter maps to a :class:`~sessions_app.providers.base.ProviderError`:

* :class:`StatusError`: the server answered with an error status (its body read and kept);
* :class:`Timeout`: no connection, or no byte, within the call's timeout;
* :class:`ConnectionLost`: the server could not be reached, or the answer was cut off;
* :class:`ProxyUnsupported`: the environment names a proxy this transport cannot use.

Why urllib3 and not a vendor's SDK: the calls of a round start together and end together in
one process, under one interpreter lock, so what each call costs in CPU is paid one call after
another before the last call starts and after the last answer ends. Measured on the same
streamed answer from the local vendor server, the ``openai`` SDK over its HTTP stack took about
2.5 ms of CPU per call, urllib3 about 0.6 ms.

Proxies are taken from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
``NO_PROXY``; ``http://`` and ``https://`` proxies, with ``user:password@`` when given), and
decided once per host for as long as those variables keep their values.
Redirects and retries are off: a redirect is an error status, and a caller retries transient
errors itself. Certificates are verified against the system's store.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import NewConnectionError as _Refused
from urllib3.exceptions import TimeoutError as _Urllib3Timeout

READ_SIZE = 64 * 1024
PROXY_VARIABLES = tuple(
    variant for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for variant in (name, name.upper())
) + ("REQUEST_METHOD",)  # (urllib ignores HTTP_PROXY when REQUEST_METHOD says it runs as a CGI script)


class HTTPError(Exception):
    """Base of this module's errors."""


class StatusError(HTTPError):
    """An error status. ``error`` is the JSON body's ``error`` object (or the body itself when
    it has none), None when the body is not a JSON object; ``text`` is the body as sent."""

    def __init__(self, status: int, headers: Mapping[str, str], text: str) -> None:
        self.status = status
        self.headers = headers
        self.text = text
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        error = body.get("error", body) if isinstance(body, dict) else None
        self.error: dict[str, Any] | None = error if isinstance(error, dict) else None
        super().__init__(f"HTTP {status}: {text[:200]}")

    def field(self, name: str) -> str | None:
        """A string field of the error object (``message``, ``type``, ``code``), if present."""
        value = (self.error or {}).get(name)
        return value if isinstance(value, str) else None


class Timeout(HTTPError):
    """No connection, or nothing read, within the timeout."""


class ConnectionLost(HTTPError):
    """The server could not be reached, or closed the connection before the answer ended."""


class ProxyUnsupported(HTTPError):
    """The proxy the environment names is not an ``http://`` or ``https://`` one."""


class Response:
    """An answer with a success status, read as it arrives."""

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self._raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.complete = False  # read to its end: the connection can serve another request

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive (decompressed): each HTTP chunk of a chunked answer,
        else whatever each read returned."""
        raw = self._raw
        try:
            if raw.chunked:
                yield from raw.read_chunked(decode_content=True)
            else:
                while data := raw.read1(READ_SIZE, decode_content=True):
                    yield data
            self.complete = True
        except _Urllib3Timeout as exc:
            raise Timeout(str(exc)) from exc
        except (_Urllib3Error, OSError) as exc:
            raise ConnectionLost(str(exc)) from exc

    def lines(self) -> Iterator[str]:
        """The body's lines as they complete, without their line break."""
        return lines_of(self.chunks())


def lines_of(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into lines at ``\\n``, ``\\r\\n`` or ``\\r`` (the line breaks of
    server-sent events), decoding each complete line as UTF-8 (a byte that is not becomes
    U+FFFD); a last line without a break is yielded at the end."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        parts = chunk.splitlines(keepends=True)
        # An unfinished line, or one ending in "\r" whose "\n" may come with the next chunk, waits.
        pending = parts.pop() if parts and not parts[-1].endswith(b"\n") else b""
        for part in parts:
            yield part.rstrip(b"\r\n").decode(errors="replace")
    if pending:
        yield pending.rstrip(b"\r\n").decode(errors="replace")


class Client:
    """Keeps connections open between calls (one pool per host, and per proxy), safe to share
    between threads. ``max_connections``: idle connections kept per host; more calls at once
    open more, which are closed after use."""

    def __init__(self, *, max_connections: int = 16) -> None:
        self.max_connections = max_connections
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._routes: dict[tuple, str | None] = {}  # (scheme, host, the proxy variables) -> proxy
        self._lock = threading.Lock()

    @contextmanager
    def post_stream(
        self, url: str, body: dict[str, Any], *, headers: Mapping[str, str], timeout: float
    ) -> Iterator[Response]:
        """POST ``body`` as JSON and yield the answer once its head has arrived; the connection
        goes back to the pool when the answer was read to its end, else it is closed. Raises
        :class:`StatusError` for an error status, :class:`Timeout` and :class:`ConnectionLost`."""
        sent = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        try:
            raw = self._manager(url).request(
                "POST", url, body=json.dumps(body).encode(), headers=sent, preload_content=False,
                decode_content=True, retries=False, redirect=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except _Refused as exc:  # (urllib3 derives it from its connect timeout)
            raise ConnectionLost(str(exc)) from exc
        except _Urllib3Timeout as exc:
            raise Timeout(str(exc)) from exc
        except (_Urllib3Error, OSError) as exc:
            raise ConnectionLost(str(exc)) from exc
        response = Response(raw)
        try:
            if raw.status >= 300:  # redirects are not followed: a moved endpoint is configured anew
                try:
                    text = raw.read(decode_content=True).decode(errors="replace")
                    response.complete = True
                except (_Urllib3Error, OSError):
                    text = ""
                raise StatusError(raw.status, raw.headers, text)
            yield response
        finally:
            if not response.complete:  # not read to its end: the connection cannot serve another request
                raw.close()
            raw.release_conn()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        # The proxy is decided again whenever a proxy variable changes, but the environment is
        # not scanned for each call (urllib's lookup reads every variable: about 0.1 ms a call).
        route = (parts.scheme, parts.hostname, tuple(os.environ.get(name) for name in PROXY_VARIABLES))
        if route in self._routes:
            proxy = self._routes[route]
        else:
            proxies = getproxies()
            proxy = proxies.get(parts.scheme) or proxies.get("all")
            if proxy and proxy_bypass(parts.hostname or ""):
                proxy = None
            self._routes[route] = proxy
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                manager = self._managers[proxy] = self._new_manager(proxy)
            return manager

    def _new_manager(self, proxy: str | None) -> urllib3.PoolManager:
        options: dict[str, Any] = {"num_pools": 8, "maxsize": self.max_connections, "block": False}
        if not proxy:
            return urllib3.PoolManager(**options)
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme not in ("http", "https"):
            raise ProxyUnsupported(f"the proxy {parts.scheme}://{parts.hostname} is not an http:// or https:// proxy")
        if parts.username is not None:  # urllib3 sends no credentials from the URL itself
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=credentials)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        return urllib3.ProxyManager(f"{parts.scheme}://{netloc}{f':{parts.port}' if parts.port else ''}", **options)
