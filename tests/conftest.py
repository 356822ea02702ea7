from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from teams_app.models import Membership, Project


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """The test process creates the test database and renames its settings to it: it opens its
    own connections, without a pool (config.db.pools_off). The servers and workers the tests
    start use the settings as they are, on the test database."""
    from django.conf import settings

    from config.db import pools_off

    pools_off(settings.DATABASES)


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


@pytest.fixture
def eager_celery():
    """Run Celery tasks inline; callers wrap engine calls in ``django_capture_on_commit_callbacks``."""
    from config.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def demo(db):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    return Project.objects.get(slug="demo")


@pytest.fixture
def run_engine(eager_celery, django_capture_on_commit_callbacks):
    """Call an engine service and run everything it enqueues (tasks and their follow-ups) inline."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            result = fn(*args, **kwargs)
        return result

    return run


@pytest.fixture(scope="session", autouse=True)
def _socket_threads_let_go(django_db_setup):
    """The sockets' threads keep their database connections (sessions_app/socket_db.py): they are
    closed before the test database is dropped."""
    yield
    from sessions_app import socket_db

    socket_db.pools_close()
