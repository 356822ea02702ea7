"""The sockets' database calls: a crowd asking the same question waits for one answer."""

from __future__ import annotations

import asyncio
import threading
import time

from sessions_app import socket_db


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
