"""The hub's JSON API, mounted at ``/hub/`` (config/urls.py)."""

from __future__ import annotations

from django.urls import path

from sessions_app.hub import views

urlpatterns = [
    path("health", views.health, name="hub_health"),
    path("ping", views.ping, name="hub_ping"),
    path("route_only", views.route_only, name="hub_route_only"),
    path("run_task", views.run_task, name="hub_run_task"),
    path("tasks/<str:task_id>", views.task_status, name="hub_task_status"),
    path("openapi.json", views.openapi, name="hub_openapi"),
]
