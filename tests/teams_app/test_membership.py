"""Membership rules: a non-member learns nothing about a project; roles limit what members do."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app.models import Diagram
from teams_app.models import PRD, Membership, Project

pytestmark = pytest.mark.django_db

PROJECT_GET_URLS = [
    ("project_detail", {}),
    ("project_team", {}),
    ("project_sessions", {}),
    ("session_create", {}),
    ("prd_create", {}),
    ("inventory_detail", {}),
    ("inventory_compare", {}),
    ("diagram_list", {}),
]
PROJECT_POST_URLS = [
    "project_members",
    "prd_create",
    "session_create",
    "inventory_import",
    "inventory_service_save",
    "inventory_service_remove",
    "inventory_dependency_add",
    "inventory_dependency_remove",
]


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.mark.parametrize("name,extra", PROJECT_GET_URLS)
def test_non_member_gets_404_on_every_project_page(client, project, outsider, name, extra):
    client.force_login(outsider)
    response = client.get(reverse(name, kwargs={"slug": project.slug, **extra}))
    assert response.status_code == 404


@pytest.mark.parametrize("name", PROJECT_POST_URLS)
def test_non_member_gets_404_on_every_project_action(client, project, outsider, name):
    client.force_login(outsider)
    response = client.post(reverse(name, kwargs={"slug": project.slug}), {"username": "outsider", "role": "owner"})
    assert response.status_code == 404
    assert not Membership.objects.filter(project=project, user=outsider).exists()


def test_non_member_gets_404_on_diagram_pages(client, project, outsider):
    diagram = Diagram.objects.create(project=project, kind=Diagram.Kind.CLUSTER, title="Current cluster")
    client.force_login(outsider)
    for name in ("diagram_detail", "diagram_compare"):
        assert client.get(reverse(name, kwargs={"slug": project.slug, "diagram_id": diagram.pk})).status_code == 404
    assert client.post(reverse("diagram_edit", kwargs={"slug": project.slug, "diagram_id": diagram.pk})).status_code == 404


def test_anonymous_is_sent_to_login(client, project):
    response = client.get(reverse("project_detail", kwargs={"slug": project.slug}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.get(reverse("dashboard")).status_code == 302


def test_login_page_is_public(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content


@pytest.mark.parametrize("name,extra", PROJECT_GET_URLS)
def test_viewer_reads_pages_but_role_gated_forms_are_403(client, project, member_factory, name, extra):
    viewer = member_factory(Membership.Role.VIEWER)
    client.force_login(viewer)
    response = client.get(reverse(name, kwargs={"slug": project.slug, **extra}))
    gated = name in ("session_create", "prd_create")
    assert response.status_code == (403 if gated else 200)


def test_project_list_shows_only_member_projects(client, make_user):
    alice = make_user("alice")
    mine = Project.objects.create(name="Mine", slug="mine")
    Project.objects.create(name="Theirs", slug="theirs")
    Membership.objects.create(user=alice, project=mine, role="viewer")
    client.force_login(alice)
    body = client.get(reverse("project_list")).content.decode()
    assert "Mine" in body and "Theirs" not in body


def test_superuser_sees_every_project(client, make_user):
    admin = make_user("root", is_superuser=True, is_staff=True)
    Project.objects.create(name="Theirs", slug="theirs")
    client.force_login(admin)
    assert "Theirs" in client.get(reverse("project_list")).content.decode()
    assert client.get(reverse("project_detail", kwargs={"slug": "theirs"})).status_code == 200


def test_create_project_makes_creator_owner(client, make_user):
    bob = make_user("bob")
    client.force_login(bob)
    response = client.post(reverse("project_create"), {"name": "Payments", "slug": "payments"})
    assert response.status_code == 302
    project = Project.objects.get(slug="payments")
    assert Membership.objects.get(project=project, user=bob).role == Membership.Role.OWNER


def test_create_project_with_taken_slug_changes_nothing(client, make_user, project):
    client.force_login(make_user("bob"))
    response = client.post(reverse("project_create"), {"name": "Other", "slug": project.slug})
    assert response.status_code == 400
    assert Project.objects.count() == 1


def test_only_owner_adds_members(client, project, member_factory, make_user):
    architect = member_factory(Membership.Role.ARCHITECT)
    newcomer = make_user("newcomer")
    client.force_login(architect)
    url = reverse("project_members", kwargs={"slug": project.slug})
    assert client.post(url, {"username": "newcomer", "role": "viewer"}).status_code == 403
    owner = member_factory(Membership.Role.OWNER)
    client.force_login(owner)
    assert client.post(url, {"username": "newcomer", "role": "product_owner"}).status_code == 302
    assert Membership.objects.get(project=project, user=newcomer).role == "product_owner"


def test_adding_unknown_user_or_duplicate_member_changes_nothing(client, project, member_factory):
    owner = member_factory(Membership.Role.OWNER)
    client.force_login(owner)
    url = reverse("project_members", kwargs={"slug": project.slug})
    before = Membership.objects.count()
    response = client.post(url, {"username": "ghost", "role": "viewer"}, follow=True)
    assert "There is no user named ghost" in response.content.decode()
    response = client.post(url, {"username": owner.username, "role": "viewer"}, follow=True)
    assert "already a member" in response.content.decode()
    assert Membership.objects.count() == before
    assert Membership.objects.get(user=owner).role == "owner"


def test_prd_form_validates_reference(client, project, member_factory):
    po = member_factory(Membership.Role.PRODUCT_OWNER)
    client.force_login(po)
    url = reverse("prd_create", kwargs={"slug": project.slug})
    response = client.post(url, {"reference": "not a ref", "title": "X", "status": "active"})
    assert response.status_code == 400
    assert "PRD id such as PRD-123" in response.content.decode()
    assert client.post(url, {"reference": "PRD-7", "title": "Checkout", "status": "active"}).status_code == 302
    assert client.post(url, {"reference": "PRD-7", "title": "Again", "status": "active"}).status_code == 400
    assert list(PRD.objects.values_list("reference", flat=True)) == ["PRD-7"]


def test_project_page_escapes_project_text(client, project, member_factory):
    project.description = "<script>alert(1)</script>"
    project.save()
    client.force_login(member_factory("viewer"))
    body = client.get(reverse("project_detail", kwargs={"slug": project.slug})).content.decode()
    assert "<script>alert(1)</script>" not in body


def test_prd_reference_refuses_control_characters(client, project, member_factory):
    client.force_login(member_factory(Membership.Role.PRODUCT_OWNER))
    url = reverse("prd_create", kwargs={"slug": project.slug})
    response = client.post(url, {"reference": "https://docs.example.com/a\x00b", "title": "X", "status": "active"})
    assert response.status_code == 400
    assert not PRD.objects.exists()


def test_password_change_and_sign_out(client, make_user):
    user = make_user("carol")
    client.force_login(user)
    response = client.post(reverse("password_change"), {
        "old_password": "pw-Secret-1", "new_password1": "a-much-Longer-secret-42", "new_password2": "a-much-Longer-secret-42",
    })
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    user.refresh_from_db()
    assert user.check_password("a-much-Longer-secret-42")
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302  # signed out: back to the login page
    assert client.login(username="carol", password="a-much-Longer-secret-42")
