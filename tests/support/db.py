"""Marks for tests that need what only one database engine does."""

from __future__ import annotations

import pytest
from django.db import connection


def postgres_only(why: str) -> pytest.MarkDecorator:
    """Skip the test unless the test database is PostgreSQL; ``why`` says what SQLite cannot do."""
    return pytest.mark.skipif(connection.vendor != "postgresql", reason=f"needs PostgreSQL (set DATABASE_URL): {why}")
