from __future__ import annotations

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Design sessions"

    def ready(self) -> None:
        from sessions_app import tasks
        from sessions_app.delivery import delivery_connect
        from sessions_app.engine.dispatch import dispatcher_set

        delivery_connect()
        # The engine hands work to a dispatcher instead of importing the Celery interface.
        dispatcher_set(tasks.CeleryDispatcher())
