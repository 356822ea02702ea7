from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("maestro")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
    PostgreSQL connection is a new server process). daphne keeps ``CONN_MAX_AGE``: it runs each
    request in a thread of its own. SQLite connections are cheap and stay per task."""
    from django.conf import settings
    from django.db import connections

    for alias in connections.settings:
        options = connections.settings[alias]
        if not options["ENGINE"].endswith("sqlite3"):
            options["CONN_MAX_AGE"] = settings.WORKER_CONN_MAX_AGE
            options["CONN_HEALTH_CHECKS"] = True  # a restarted database is reconnected, not an error
