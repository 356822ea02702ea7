"""A benchmark's database: a throwaway one (the configured database's test clone under a
bench-specific name, never the configured database itself and never the name a concurrent
pytest run uses), and the plain reads the benches poll it with. Shared by every bench module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def throwaway_database(label: str) -> Iterator[str]:
    """Create a test database under a bench-specific name, yield its URL, destroy it afterwards.

    Same pattern as ``bench/inventory.py``: the configured database's test clone, never the
    configured database itself, and never the name a concurrent pytest run is using."""
    from django.conf import settings
    from django.db import connection
    from django.test import utils

    from config.db import pools_off

    pools_off(settings.DATABASES)  # this process renames its database
    # One bench module after another in the same process: set the test environment up once.
    owned = not hasattr(utils._TestState, "saved_data")
    if owned:
        utils.setup_test_environment()
    settings_dict = connection.settings_dict
    old_name = settings_dict["NAME"]
    test_settings = settings_dict.setdefault("TEST", {})
    old_test_name = test_settings.get("NAME")
    sqlite_path: Path | None = None
    if connection.vendor == "sqlite":
        sqlite_path = Path(settings.DATA_DIR) / f"bench-{label}.sqlite3"
        test_settings["NAME"] = str(sqlite_path)
    else:
        test_settings["NAME"] = f"{old_test_name or 'test_' + str(old_name)}_bench_{label}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield database_url()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        if old_test_name is None:
            test_settings.pop("NAME", None)
        else:
            test_settings["NAME"] = old_test_name
        if owned:
            utils.teardown_test_environment()
        if sqlite_path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)


def database_url() -> str:
    """The URL of the database this process is connected to, for child processes."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "postgres")
        password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def round_status(round_id: int) -> str | None:
    """A round's status, read with a plain cursor. A bench polls it every few milliseconds in the
    process that also serves the vendor's calls: the ORM's query building would take that
    process's CPU from the cores the product runs on."""
    from sessions_app.models import Round

    row = _row(f"SELECT status FROM {_table(Round)} WHERE id = %s", [round_id])  # noqa: S608 - the model's own table
    return row[0] if row else None


def session_quiet_state(session_id: int) -> tuple[int, bool] | None:
    """(the session's last sequence number, does any of its contributions still run or wait?),
    read with one plain query (see :func:`round_status`)."""
    from sessions_app.models import Contribution, DesignSession

    sql = (
        f"SELECT s.last_seq, EXISTS(SELECT 1 FROM {_table(Contribution)} c WHERE c.session_id = s.id"  # noqa: S608
        f" AND c.status IN (%s, %s)) FROM {_table(DesignSession)} s WHERE s.id = %s"
    )
    row = _row(sql, [Contribution.Status.PENDING, Contribution.Status.RUNNING, session_id])
    return (row[0], bool(row[1])) if row else None


def _table(model) -> str:
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def _row(sql: str, params: list) -> tuple | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
