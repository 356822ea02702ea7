from __future__ import annotations

import pytest
from django.core.management import call_command

from sessions_app.models import DiagramVersion
from teams_app.models import PRD, InventoryRevision, Project, TeamSlot, TeamTemplate

pytestmark = pytest.mark.django_db


def _counts():
    return (
        Project.objects.count(), PRD.objects.count(), TeamTemplate.objects.count(), TeamSlot.objects.count(),
        InventoryRevision.objects.count(), DiagramVersion.objects.count(),
    )


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    first = _counts()
    call_command("seed_demo")
    assert _counts() == first
    demo = Project.objects.get(slug="demo")
    assert demo.description and demo.business_context and demo.constraints
    assert demo.prds.filter(status="active").count() == 1
    revision = demo.inventory_revisions.get()
    assert 10 <= revision.services.count() <= 15
    kinds = set(revision.services.values_list("kind", flat=True))
    assert {"gateway", "database", "cache", "broker", "external", "service"} <= kinds


def test_builtin_templates_have_missions_and_user_slot():
    call_command("seed_demo")
    names = set(TeamTemplate.objects.values_list("name", flat=True))
    assert names == {"New Service Integration Team", "Service Refactoring Team", "Cross-Service Feature Team"}
    nsi = TeamTemplate.objects.get(slug="new-service-integration")
    assert nsi.mission.startswith("Integrate new services")
    slots = list(nsi.slots.order_by("order"))
    assert [s.specialist.name for s in slots if not s.is_user] == [
        "Pattern Archaeologist", "Integration Architect", "Data Flow Analyst", "Security Guardian",
        "Performance Engineer", "DevOps Specialist",
    ]
    assert slots[-1].is_user and slots[-1].role == "Business capability validator"


def test_ensure_admin_creates_once_and_prints_credentials(capsys, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo")
    capsys.readouterr()
    call_command("ensure_admin")
    first = capsys.readouterr().out
    call_command("ensure_admin")
    second = capsys.readouterr().out
    password = (tmp_path / "admin-password").read_text().strip()
    assert password in first and first == second
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    # The golden path: the printed account approves the demo design (owners do not); as a superuser
    # it keeps the owner rights.
    assert admin.memberships.get(project__slug="demo").role == "product_owner"
