"""A Celery worker's thread keeps its database connection from one task to the next for
``WORKER_CONN_MAX_AGE`` (config/celery.py): Celery's Django fixup would otherwise close it
around every task, and a new PostgreSQL connection is a new server process."""

from __future__ import annotations

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from config.celery import _close_old_connections, app
from config.db import connection_kept

pytestmark = pytest.mark.django_db(transaction=True)


def _around_a_task(fixup: DjangoWorkerFixup) -> None:
    """What a worker does before and after each task (the fixup's handlers, then ours)."""
    for _ in range(2):
        fixup.close_database()
        _close_old_connections()


def test_a_connection_within_its_max_age_survives_tasks_and_an_old_one_is_replaced():
    fixup = DjangoWorkerFixup(app)
    saved = connection.settings_dict
    connection.close()
    try:
        connection.settings_dict = connection_kept(saved, 600)  # as a worker's thread has it
        connection.ensure_connection()
        first = connection.connection
        for _ in range(3):
            _around_a_task(fixup)
            connection.ensure_connection()
            assert connection.connection is first, "the same connection serves the next task"
        connection.settings_dict["CONN_MAX_AGE"] = 0
        connection.close_at = 0  # past its age
        _around_a_task(fixup)
        assert connection.connection is None, "a connection past its max age is closed after the task"
    finally:
        connection.close()
        connection.settings_dict = saved
