from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("maestro")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery's Django fixup closes every database connection of a task's thread before and after
# each task, whatever CONN_MAX_AGE says, unless this is set (then only every 2 × this many
# tasks). Set out of reach: :func:`_close_old_connections` applies Django's own rule instead.
app.conf["CELERY_DB_REUSE_MAX"] = 1 << 62


def run_here_without_broker() -> bool:
    """With no broker to hand tasks to (the embedded profile while nothing serves: Celery's
    ``memory://``), run them in this process instead of queueing them where no worker looks.
    True when that is the case."""
    if not str(app.conf.broker_url or "").startswith("memory://"):
        return False
    app.conf.task_always_eager = True
    return True


@signals.worker_init.connect
def _keep_worker_connections(**_kwargs) -> None:
    """A worker's threads are few and live as long as the worker: each keeps its database
    connection for ``WORKER_CONN_MAX_AGE`` seconds instead of opening one per task (a new
    PostgreSQL connection is a new server process), and takes none from the pool daphne's
    requests share (``DB_POOL_MAX_SIZE``). SQLite connections are cheap and stay per task."""
    from django.conf import settings
    from django.db import connections

    from config.db import connection_kept

    # New settings, not changed in place: a connection made before this (none is) keeps the pool.
    for alias, options in connections.settings.items():
        if not options["ENGINE"].endswith("sqlite3"):
            connections.settings[alias] = connection_kept(options, settings.WORKER_CONN_MAX_AGE)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **_kwargs) -> None:
    """Around each task a worker runs, as Django does around each request: a connection past its
    ``CONN_MAX_AGE`` (``WORKER_CONN_MAX_AGE`` in workers, 0 for SQLite) or broken is closed, a
    live one is kept (and health-checked before its next use). A task run inline runs inside its
    caller's request or transaction, whose connection is not the task's to close."""
    from django.db import close_old_connections

    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()


@signals.worker_ready.connect
def _freeze_startup_objects(**_kwargs) -> None:
    """A started worker's startup objects stay out of full collections (see config/heap.py)."""
    from config.heap import startup_objects_freeze

    startup_objects_freeze()
