"""Fixtures shared by the session tests."""

from __future__ import annotations

import pytest

from sessions_app import socket_db
from teams_app.models import Membership


@pytest.fixture(autouse=True)
def _sockets_forget():
    """The sockets' remembered answers (who a cookie is, who may see a session) do not carry from
    one test to the next: ids are used again after a rollback. Nor do their threads' database
    connections: a test without database access must not find one open."""
    socket_db._recent.clear()
    socket_db._asking.clear()
    socket_db.pools_close()
    yield
    socket_db._recent.clear()
    socket_db._asking.clear()
    socket_db.pools_close()


@pytest.fixture
def people(demo, make_user):
    """The demo project's architect ada, product owners pete and paula, and an outsider
    (a test module may define its own cast under the same name)."""
    out = {}
    for name, role in [("ada", "architect"), ("pete", "product_owner"), ("paula", "product_owner")]:
        out[name] = make_user(name)
        Membership.objects.create(user=out[name], project=demo, role=role)
    out["outsider"] = make_user("outsider")
    return out
