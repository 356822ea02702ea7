from __future__ import annotations

import os

from celery import Celery

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
