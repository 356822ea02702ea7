from __future__ import annotations

from django.urls import include, path

from sessions_app import views
from sessions_app.diagrams import views as diagram_views
from teams_app.inventory import views as inventory_views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("rules/", inventory_views.rules_page, name="rules_reference"),
    path("projects/<slug:slug>/sessions/", views.project_sessions, name="project_sessions"),
    path("projects/<slug:slug>/sessions/new/", views.session_create, name="session_create"),
    path("projects/<slug:slug>/inventory/", inventory_views.inventory_detail, name="inventory_detail"),
    path("projects/<slug:slug>/inventory/import/", inventory_views.inventory_import, name="inventory_import"),
    path("projects/<slug:slug>/inventory/services/", inventory_views.service_save, name="inventory_service_save"),
    path("projects/<slug:slug>/inventory/services/remove/", inventory_views.service_remove, name="inventory_service_remove"),
    path("projects/<slug:slug>/inventory/dependencies/", inventory_views.dependency_add, name="inventory_dependency_add"),
    path("projects/<slug:slug>/inventory/dependencies/remove/", inventory_views.dependency_remove, name="inventory_dependency_remove"),
    path("projects/<slug:slug>/inventory/compare/", inventory_views.inventory_compare, name="inventory_compare"),
    path("projects/<slug:slug>/diagrams/", diagram_views.diagram_list, name="diagram_list"),
    path("projects/<slug:slug>/diagrams/<int:diagram_id>/", diagram_views.diagram_detail, name="diagram_detail"),
    path("projects/<slug:slug>/diagrams/<int:diagram_id>/edit/", diagram_views.diagram_edit, name="diagram_edit"),
    path("projects/<slug:slug>/diagrams/<int:diagram_id>/compare/", diagram_views.diagram_compare, name="diagram_compare"),
    path("sessions/<int:pk>/", views.session_detail, name="session_detail"),
    path("sessions/<int:pk>/panel/", views.session_user_panel, name="session_user_panel"),
    path("sessions/<int:pk>/prd/", views.session_attach_prd, name="session_attach_prd"),
    path("sessions/<int:pk>/pause/", views.session_pause, name="session_pause"),
    path("sessions/<int:pk>/resume/", views.session_resume, name="session_resume"),
    path("sessions/<int:pk>/continue/", views.session_continue, name="session_continue"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("sessions/<int:pk>/budget/", views.session_budget, name="session_budget"),
    path("sessions/<int:pk>/messages/", views.message_post, name="session_message"),
    path("sessions/<int:pk>/contributions/<int:contribution_id>/rerun/", views.contribution_rerun, name="contribution_rerun"),
    path("sessions/<int:pk>/questions/<int:question_id>/decide/", views.key_question_decide, name="key_question_decide"),
    path("sessions/<int:pk>/validation/<int:point_id>/", views.validation_respond, name="validation_respond"),
    path("sessions/<int:pk>/report/", views.session_report, name="session_report"),
    path("sessions/<int:pk>/continuation.txt", views.session_continuation, name="session_continuation"),
    path("sessions/<int:pk>/export.json", views.session_export, name="session_export"),
    path("", include("sessions_app.decisions.urls")),
]
