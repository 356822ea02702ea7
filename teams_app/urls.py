from __future__ import annotations

from django.urls import path

from teams_app import views

urlpatterns = [
    path("projects/", views.project_list, name="project_list"),
    path("projects/new/", views.project_create, name="project_create"),
    path("projects/<slug:slug>/", views.project_detail, name="project_detail"),
    path("projects/<slug:slug>/team/", views.project_team, name="project_team"),
    path("projects/<slug:slug>/members/", views.project_members, name="project_members"),
    path("projects/<slug:slug>/members/role/", views.membership_role, name="membership_role"),
    path("projects/<slug:slug>/prds/new/", views.prd_create, name="prd_create"),
    path("specialists/<slug:slug>/", views.specialist_detail, name="specialist_detail"),
]
