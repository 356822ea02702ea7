"""Writes of teams_app that other parts call: a PRD for a reference, found or created."""

from __future__ import annotations

import threading

import pytest

from teams_app.errors import ApplicationError
from teams_app.models import PRD
from teams_app.services import prd_for_reference
from tests.support.db import postgres_only

pytestmark = pytest.mark.django_db


def test_a_known_reference_is_the_existing_prd_even_with_spaces_around_it(project):
    existing = PRD.objects.create(project=project, reference="PRD-7", title="Subscriptions", status=PRD.Status.DRAFT)

    assert prd_for_reference(project=project, reference="PRD-7") == existing
    assert prd_for_reference(project=project, reference="  PRD-7 ") == existing
    assert project.prds.count() == 1


def test_a_new_reference_is_recorded_as_an_active_prd_titled_after_it(project):
    prd = prd_for_reference(project=project, reference=" PRD-12 ")

    assert (prd.reference, prd.title, prd.status) == ("PRD-12", "Attached PRD-12", PRD.Status.ACTIVE)


def test_a_long_link_becomes_a_prd_whose_title_is_cut_to_fit(project):
    link = "https://docs.example.com/prds/" + "payments-" * 40

    prd = prd_for_reference(project=project, reference=link)

    assert prd.reference == link
    assert prd.title == f"Attached {link}"[:200]
    assert prd_for_reference(project=project, reference=link) == prd


def test_a_malformed_reference_is_refused(project):
    with pytest.raises(ApplicationError):
        prd_for_reference(project=project, reference="not a prd")
    assert not project.prds.exists()


def test_a_reference_another_caller_creates_meanwhile_is_that_callers_prd(project, monkeypatch):
    """The lookup misses, another caller inserts the same reference, then this insert loses to the
    unique constraint: the answer is the other caller's PRD, not an error, and only its savepoint
    rolls back."""
    from teams_app import services

    real = services.prd_by_reference
    lookups: list[str] = []

    def late(*, project, reference):
        lookups.append(reference)
        if len(lookups) == 1:
            PRD.objects.create(project=project, reference="PRD-9", title="Made by another caller")
            return None
        return real(project=project, reference=reference)

    monkeypatch.setattr(services, "prd_by_reference", late)
    prd = prd_for_reference(project=project, reference="PRD-9")

    assert prd.title == "Made by another caller"
    assert project.prds.filter(reference="PRD-9").count() == 1 and len(lookups) == 2


RACE = "SQLite locks the whole database, so the other request cannot commit meanwhile"


def _committed_meanwhile(write) -> None:
    """Run ``write`` as another request would: on a connection of its own, committed before this returns."""
    from django.db import connection

    def other_request() -> None:
        try:
            write()
        finally:
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    thread.join(10)


@postgres_only(RACE)
@pytest.mark.django_db(transaction=True)
def test_a_slug_another_request_takes_meanwhile_is_a_clear_error_and_changes_nothing(make_user, monkeypatch):
    """The slug is free when checked, then another request inserts it and commits before this one
    inserts: the unique constraint decides, and the loser gets the same error as for a slug taken
    before, with nothing of its own written."""
    from teams_app.models import Membership, Project
    from teams_app.services import SLUG_TAKEN, project_create

    bob = make_user("bob")
    checked = Project.full_clean

    def then_taken(self, *args, **kwargs):
        checked(self, *args, **kwargs)
        _committed_meanwhile(lambda: Project.objects.create(name="Payments (the other request)", slug=self.slug))

    monkeypatch.setattr(Project, "full_clean", then_taken)
    with pytest.raises(ApplicationError) as raised:
        project_create(name="Payments", slug="payments", created_by=bob)

    assert str(raised.value) == SLUG_TAKEN and raised.value.extra == {"field": "slug"}
    assert list(Project.objects.values_list("name", flat=True)) == ["Payments (the other request)"]
    assert not Membership.objects.filter(user=bob).exists()


@postgres_only(RACE)
@pytest.mark.django_db(transaction=True)
def test_a_prd_reference_another_request_takes_meanwhile_is_a_clear_error(project, monkeypatch):
    """The reference is free when checked, then another request inserts it and commits just before
    this one's insert."""
    from teams_app.services import PRD_EXISTS, prd_create

    inserts = PRD.save

    def after_the_other(self, *args, **kwargs):
        if self.title == "Mine":
            _committed_meanwhile(lambda: PRD.objects.create(project=project, reference=self.reference, title="The other request's"))
        inserts(self, *args, **kwargs)

    monkeypatch.setattr(PRD, "save", after_the_other)
    with pytest.raises(ApplicationError) as raised:
        prd_create(project=project, reference="PRD-20", title="Mine")

    assert str(raised.value) == PRD_EXISTS.format(reference="PRD-20") and raised.value.extra == {"field": "reference"}
    assert list(project.prds.values_list("title", flat=True)) == ["The other request's"]
