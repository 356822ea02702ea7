"""Concurrent duplicate ``run_task`` calls: the unique (project, task_id) constraint decides, every
caller gets the one task, and exactly one task session runs."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from sessions_app.hub.models import HubTask
from sessions_app.models import Contribution, DesignSession
from tests.sessions_app.hub.conftest import TASK

pytestmark = pytest.mark.django_db(transaction=True)
CALLERS = 8


def _race(token: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, dict] | BaseException] = [None] * len(bodies)  # type: ignore[list-item]

    def call(index: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = client.post("/hub/run_task", data=json.dumps(bodies[index]), content_type="application/json",
                                   headers={"Authorization": f"Bearer {token}"})
            results[index] = (response.status_code, response.json())
        except BaseException as exc:  # reported below, in the test's thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def test_concurrent_duplicates_make_one_task_and_one_session(token, hub_eager):
    results = _race(token, [TASK] * CALLERS)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (CALLERS - 1) + [202]
    bodies = {(b["task_id"], b["specialist"], b["session_url"], b["status_url"]) for _, b in results}
    assert len(bodies) == 1
    assert HubTask.objects.count() == 1
    hub_task = HubTask.objects.get()
    assert DesignSession.objects.filter(mode=DesignSession.Mode.TASK).count() == 1
    assert Contribution.objects.filter(session=hub_task.session, author="specialist").count() == 1
    hub_task.session.refresh_from_db()
    assert hub_task.session.status == DesignSession.Status.COMPLETED  # it ran once, eagerly, after commit


def test_concurrent_different_bodies_under_one_task_id_make_one_task_and_conflicts(token, hub_eager):
    bodies = [{**TASK, "summary": f"variant {i}"} for i in range(CALLERS)]
    results = _race(token, bodies)
    statuses = sorted(status for status, _ in results)
    assert statuses == [202] + [409] * (CALLERS - 1)
    assert HubTask.objects.count() == 1 and DesignSession.objects.count() == 1


def test_concurrent_tasks_with_a_new_prd_share_one_prd(token, hub_project, hub_eager):
    bodies = [{**TASK, "task_id": f"T-{i}", "prd": "PRD-NEW"} for i in range(CALLERS)]
    results = _race(token, bodies)
    assert sorted(status for status, _ in results) == [202] * CALLERS
    assert hub_project.prds.filter(reference="PRD-NEW").count() == 1
    assert HubTask.objects.filter(prd__reference="PRD-NEW").count() == CALLERS
