"""daphne's sockets: a frame is sent at once when nothing waits, and a frame the kernel cannot
take whole is buffered and sent in order (config/socket_writes.py), over a real socket pair and
a real (uninstalled) Twisted reactor."""

from __future__ import annotations

import socket

from twisted.internet import selectreactor, tcp
from twisted.internet.protocol import Protocol

import config.asgi  # noqa: F401 - serving the application installs the immediate send
from config import socket_writes


def _connection():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    reactor = selectreactor.SelectReactor()
    conn = tcp.Connection(ours, Protocol(), reactor)
    conn.connected = True
    return conn, theirs, reactor


def _read_all(theirs: socket.socket, reactor, conn, size: int) -> bytes:
    theirs.settimeout(0.05)
    got = bytearray()
    while len(got) < size:
        reactor.doIteration(0)  # the reactor sends what the connection buffered
        try:
            got += theirs.recv(1 << 20)
        except TimeoutError:
            continue
    return bytes(got)


def test_the_application_installs_the_immediate_send():
    assert socket_writes.installed()


def test_a_frame_is_sent_at_once_without_waiting_for_the_reactor():
    conn, theirs, reactor = _connection()
    conn.write(b"frame one")
    assert theirs.recv(100) == b"frame one", "on the wire before any reactor turn"
    assert conn not in reactor.getWriters(), "the socket was never registered for writing"


def test_what_the_kernel_cannot_take_is_buffered_and_sent_in_order():
    conn, theirs, reactor = _connection()
    big = bytes(range(256)) * 40_000  # ~10 MB: more than a socket buffer holds
    conn.write(big)
    assert conn in reactor.getWriters(), "the rest waits for the reactor"
    conn.write(b"tail")  # something is buffered: this one queues behind it
    received = _read_all(theirs, reactor, conn, len(big) + 4)
    assert received == big + b"tail"
    assert conn not in reactor.getWriters()


def test_a_closing_connection_keeps_twisted_own_path():
    conn, theirs, reactor = _connection()
    conn.disconnecting = True
    conn.write(b"late")
    assert conn in reactor.getWriters(), "buffered: Twisted flushes it, then closes"
