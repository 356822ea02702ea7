"""What daphne does once, when it imports ``config.asgi``, must not weigh on every request."""

from __future__ import annotations

import contextvars

from django.urls import clear_url_caches, get_resolver

from sessions_app import live


def test_warming_the_fragments_leaves_the_context_requests_start_from_as_it_was():
    """``live.warm()`` builds the URLconf's reverse table and loads the fragments' templates.
    Building the table sets an asgiref ``Local`` on each resolver; set in daphne's main context,
    every request would copy them and compare them after each hop between threads. They stay
    in a context of their own, and the table is built all the same."""
    clear_url_caches()  # a fresh resolver, as in a process that just started
    before = set(contextvars.copy_context())
    live.warm()
    assert set(contextvars.copy_context()) == before, "no context variable was added"
    resolver = get_resolver()
    assert resolver._populated and resolver._reverse_dict, "the reverse table was built"
