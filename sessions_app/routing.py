"""WebSocket URLs only (agent routing lives in teams_app/router.py)."""

from __future__ import annotations

from django.urls import path, re_path

from sessions_app import consumers

websocket_urlpatterns = [
    path("ws/sessions/<int:session_id>/", consumers.SessionConsumer.as_asgi()),
    re_path(r"", consumers.NotFoundConsumer.as_asgi()),  # last: every other path is closed as not found
]
