"""Database connection settings shared by the processes' settings and their long-lived threads."""

from __future__ import annotations

from typing import Any


def pool_options(*, min_size: int, max_size: int, timeout: float) -> dict[str, Any] | None:
    """The ``OPTIONS["pool"]`` of a PostgreSQL database (psycopg's connection pool, one per
    process), or None when ``max_size`` is 0 (a connection per request). ``timeout``: how long a
    request waits for a free connection before it fails."""
    if max_size <= 0:
        return None
    return {"min_size": max(0, min(min_size, max_size)), "max_size": max_size, "timeout": timeout}


def pools_off(databases: dict[str, dict[str, Any]]) -> None:
    """This process opens its own connections: no pool for any of ``databases`` (settings, in
    place). For a process that creates a database and renames its settings to it (the tests'
    and the benchmarks' throwaway databases): a pool is bound to the database it was made for,
    and one made while Django looks for a database to create the new one from (when the server's
    ``postgres`` database is out of reach, the configured one) would serve everything after the
    rename from the configured database."""
    for settings_dict in databases.values():
        settings_dict["OPTIONS"] = _unpooled(settings_dict)


def connection_kept(settings_dict: dict[str, Any], max_age: int) -> dict[str, Any]:
    """``settings_dict`` for a thread that lives as long as its process and keeps its own
    connection for ``max_age`` seconds, checked before each reuse (a restarted database is
    reconnected, not an error). Such a thread takes no connection from the process's pool:
    Django allows a pool only with connections closed after each request."""
    return {**settings_dict, "OPTIONS": _unpooled(settings_dict), "CONN_MAX_AGE": max_age, "CONN_HEALTH_CHECKS": True}


def _unpooled(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The database's ``OPTIONS`` without its pool."""
    return {name: value for name, value in (settings_dict.get("OPTIONS") or {}).items() if name != "pool"}
