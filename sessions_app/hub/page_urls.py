"""The project's Hub page (tokens and tasks), under ``/projects/<slug>/hub/`` (config/urls.py)."""

from __future__ import annotations

from django.urls import path

from sessions_app.hub import pages

urlpatterns = [
    path("projects/<slug:slug>/hub/", pages.hub_page, name="hub_page"),
    path("projects/<slug:slug>/hub/tokens/", pages.token_create, name="hub_token_create"),
    path("projects/<slug:slug>/hub/tokens/<int:token_id>/revoke/", pages.token_revoke, name="hub_token_revoke"),
    path("projects/<slug:slug>/hub/tasks/<str:task_id>/", pages.task_page, name="hub_task_page"),
    path("projects/<slug:slug>/hub/prds/import/", pages.prds_import, name="hub_prds_import"),
]
