from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from teams_app.models import Membership, Project


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(username: str | None = None, **extra):
        counter["n"] += 1
        return get_user_model().objects.create_user(username=username or f"user{counter['n']}", password="pw-Secret-1", **extra)

    return make


@pytest.fixture
def project(db):
    return Project.objects.create(name="Shop", slug="shop", description="An online shop")


@pytest.fixture
def member_factory(make_user, project):
    def make(role: str, proj: Project | None = None):
        user = make_user(f"{role}-{(proj or project).slug}")
        Membership.objects.create(user=user, project=proj or project, role=role)
        return user

    return make


@pytest.fixture
def builtin_specialists(db):
    from teams_app.specialists.loader import load_specialists
    from teams_app.specialists.teams import team_templates_load

    load_specialists()
    team_templates_load()
