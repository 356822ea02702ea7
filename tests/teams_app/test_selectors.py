"""Reads of teams_app that sessions rely on: a PRD by its reference, the team a session keeps."""

from __future__ import annotations

import pytest

from teams_app.models import PRD, Project, Specialist, TeamSlot, TeamTemplate
from teams_app.selectors import prd_by_reference, team_snapshot

pytestmark = pytest.mark.django_db


def test_a_prd_is_found_by_its_reference_in_its_own_project_only(project):
    ours = PRD.objects.create(project=project, reference="PRD-7", title="Subscriptions")
    other = Project.objects.create(name="Other", slug="other")
    PRD.objects.create(project=other, reference="PRD-8", title="Theirs")

    assert prd_by_reference(project=project, reference="PRD-7") == ours
    assert prd_by_reference(project=project, reference="  PRD-7\n") == ours
    assert prd_by_reference(project=project, reference="PRD-8") is None
    assert prd_by_reference(project=project, reference="") is None
    assert prd_by_reference(project=project, reference=None) is None


def _specialist(slug: str, description: str, **extra) -> Specialist:
    return Specialist.objects.create(
        slug=slug, name=slug.replace("-", " ").title(), description=description, system_prompt="You review.", **extra
    )


def test_a_template_gives_its_slots_in_order_with_the_user_slot_and_copies_of_the_specialists():
    security = _specialist(
        "security-guardian", "Guards the PCI scope.\nMore.", color="#c00", focus=["security"], areas=["auth"]
    )
    data = _specialist("data-flow-analyst", "Follows the data.", hints=["events"])
    template = TeamTemplate.objects.create(slug="review", name="Review", mission="Review a change")
    TeamSlot.objects.create(template=template, order=2, is_user=True, role="Business capability validator")
    TeamSlot.objects.create(template=template, order=3, specialist=data, role="Traces the events")
    TeamSlot.objects.create(template=template, order=1, specialist=security, role="Owns the threat model")

    team = team_snapshot(source=template)

    assert team == [
        {
            "is_user": False,
            "specialist": "security-guardian",
            "specialist_id": security.pk,
            "name": "Security Guardian",
            "role": "Owns the threat model",
            "color": "#c00",
            "focus": ["security"],
            "areas": ["auth"],
            "hints": [],
            "description": "Guards the PCI scope.\nMore.",
        },
        {"is_user": True, "name": "USER", "role": "Business capability validator"},
        {
            "is_user": False,
            "specialist": "data-flow-analyst",
            "specialist_id": data.pk,
            "name": "Data Flow Analyst",
            "role": "Traces the events",
            "color": "",
            "focus": [],
            "areas": [],
            "hints": ["events"],
            "description": "Follows the data.",
        },
    ]
    security.focus.append("dataflow")
    security.save()
    assert team[0]["focus"] == ["security"]


def test_a_specialist_alone_is_a_team_of_one_whose_role_is_the_first_line_it_writes():
    specialist = _specialist("devops-specialist", "\n  Runs the containers.  \nAnd the pipelines.")

    (member,) = team_snapshot(source=specialist)

    assert member["specialist"] == "devops-specialist"
    assert member["role"] == "Runs the containers."
    assert member["description"] == specialist.description


def test_a_slot_without_a_role_takes_the_specialists_first_line_and_a_bare_specialist_its_name():
    writer = _specialist("api-writer", "Writes the contracts.")
    silent = _specialist("silent-one", "")
    template = TeamTemplate.objects.create(slug="bare", name="Bare", mission="m")
    TeamSlot.objects.create(template=template, order=1, specialist=writer, role="  ")
    TeamSlot.objects.create(template=template, order=2, specialist=silent, role="")

    assert [m["role"] for m in team_snapshot(source=template)] == ["Writes the contracts.", "Silent One"]
