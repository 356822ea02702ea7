"""Decision log URLs, included from ``sessions_app.urls``."""

from __future__ import annotations

from django.urls import path

from sessions_app.decisions import views

urlpatterns = [
    path("projects/<slug:slug>/decisions/", views.decision_list, name="decision_list"),
    path("projects/<slug:slug>/decisions/new/", views.decision_create, name="decision_create"),
    path("projects/<slug:slug>/decisions/export.zip", views.decisions_export_zip, name="decisions_export_zip"),
    path("projects/<slug:slug>/decisions/<int:number>/", views.decision_detail, name="decision_detail"),
    path("projects/<slug:slug>/decisions/<int:number>/edit/", views.decision_edit, name="decision_edit"),
    path("projects/<slug:slug>/decisions/<int:number>/status/", views.decision_status, name="decision_status"),
    path("projects/<slug:slug>/decisions/<int:number>/supersede/", views.decision_supersede, name="decision_supersede"),
    path("projects/<slug:slug>/decisions/<int:number>/links/", views.decision_link_add, name="decision_link_add"),
    path("projects/<slug:slug>/decisions/<int:number>/markdown/", views.decision_markdown, name="decision_markdown"),
]
