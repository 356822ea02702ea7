"""The sockets' database calls: a crowd asking the same question waits for one answer."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from django.conf import settings

from sessions_app import socket_db
from tests.support.db import postgres_only


class Slow:
    """A read that takes ``seconds`` and counts how often it ran."""

    def __init__(self, seconds: float, fail_first: bool = False) -> None:
        self.seconds = seconds
        self.fail_first = fail_first
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, value):
        with self.lock:
            self.calls += 1
            calls = self.calls
        time.sleep(self.seconds)
        if self.fail_first and calls == 1:
            raise RuntimeError("the database went away")
        return value


def test_a_crowd_asking_at_once_waits_for_one_read():
    read = Slow(0.2)

    async def crowd():
        return await asyncio.gather(*(socket_db.socket_db_recent(("who", "cookie"), read, "ada") for _ in range(200)))

    answers = asyncio.run(crowd())

    assert answers == ["ada"] * 200
    assert read.calls == 1  # not one per socket, nor one per thread of the pool


def test_a_failed_read_fails_everyone_waiting_and_is_asked_again():
    read = Slow(0.1, fail_first=True)

    async def twice():
        first = await asyncio.gather(
            *(socket_db.socket_db_recent(("who", "cookie"), read, "ada") for _ in range(5)), return_exceptions=True
        )
        return first, await socket_db.socket_db_recent(("who", "cookie"), read, "ada")

    first, again = asyncio.run(twice())

    assert all(isinstance(answer, RuntimeError) for answer in first)
    assert again == "ada" and read.calls == 2


def test_a_caller_that_goes_away_does_not_take_the_answer_from_the_others():
    read = Slow(0.2)

    async def one_leaves():
        leaving = asyncio.ensure_future(socket_db.socket_db_recent(("who", "cookie"), read, "ada"))
        staying = asyncio.ensure_future(socket_db.socket_db_recent(("who", "cookie"), read, "ada"))
        await asyncio.sleep(0.05)
        leaving.cancel()
        return await staying, leaving.cancelled()

    answer, left = asyncio.run(one_leaves())

    assert (answer, left) == ("ada", True) and read.calls == 1


def test_different_questions_are_read_apart():
    read = Slow(0.05)

    async def two():
        return await asyncio.gather(
            socket_db.socket_db_recent(("who", "a"), read, "ada"), socket_db.socket_db_recent(("who", "b"), read, "bob")
        )

    assert asyncio.run(two()) == ["ada", "bob"] and read.calls == 2


# -- the pools' connections -----------------------------------------------------------------------

def _whose_connection() -> tuple[int, int | None]:
    """(this thread, the server process behind its connection) after a query; None on SQLite."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    backend = connection.connection.info.backend_pid if connection.vendor == "postgresql" else None
    return threading.get_ident(), backend


def _calls(n: int) -> list[tuple[int, int | None]]:
    async def many():
        return [await socket_db.socket_db(_whose_connection) for _ in range(n)]

    return asyncio.run(many())


def _connected(pids: set[int]) -> set[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
        return {row[0] for row in cursor.fetchall()}


@postgres_only("connections are kept on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_a_socket_thread_keeps_its_database_connection_between_calls():
    calls = _calls(20)

    by_thread: dict[int, set[int]] = {}
    for thread, pid in calls:
        by_thread.setdefault(thread, set()).add(pid)
    assert all(len(pids) == 1 for pids in by_thread.values())  # not a new server process per call
    assert len({pid for pids in by_thread.values() for pid in pids}) <= settings.LIVE_DB_THREADS
    socket_db.pools_close()
    pids = {pid for _, pid in calls}
    deadline = time.monotonic() + 5
    while _connected(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _connected(pids)  # closed with the pools (the test database can be dropped)


@postgres_only("connections are kept on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_without_an_error():
    from django.db import connection

    first = {pid for _, pid in _calls(8)}
    with connection.cursor() as cursor:  # as a restarted PostgreSQL would
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(first)])

    again = _calls(8)  # no OperationalError: each thread finds its connection dead and opens another

    assert {pid for _, pid in again}.isdisjoint(first)


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="SQLite only")
@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_socket_thread_closes_its_connection_after_each_call():
    def still_open() -> bool:
        from django.db import connection

        return connection.connection is not None

    async def twice():
        await socket_db.socket_db(_whose_connection)
        return await socket_db.socket_db(still_open)

    assert asyncio.run(twice()) is False
