from __future__ import annotations

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Design sessions"

    def ready(self) -> None:
        from sessions_app.delivery import delivery_connect

        delivery_connect()
