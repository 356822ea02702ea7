"""ADR numbers under concurrent creation: one gap-free sequence per project."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from sessions_app.decisions.models import Decision
from sessions_app.decisions.services import writes
from teams_app.models import Project
from tests.support.db import postgres_only

WORKERS = 8
EACH = 3


@postgres_only("SQLite serialises every writer, so threads would not race")
@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_numbers_without_gaps_or_duplicates():
    shop = Project.objects.create(name="Shop", slug="shop")
    other = Project.objects.create(name="Other", slug="other")
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for n in range(EACH):
                target = shop if index % 4 else other
                writes.decision_create(project=target, user=None, title=f"Decision {index}.{n}")
        except BaseException as exc:  # reported below, the thread must not die silently
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for project, writers in ((shop, WORKERS - WORKERS // 4), (other, WORKERS // 4)):
        numbers = sorted(Decision.objects.filter(project=project).values_list("number", flat=True))
        assert numbers == list(range(1, writers * EACH + 1))
