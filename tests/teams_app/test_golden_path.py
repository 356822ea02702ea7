"""The golden path of a fresh checkout: the printed admin starts the demo's session and
approves its design; an owner invites a product owner by email, who can then approve too."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.models import DesignSession, ValidationPoint
from teams_app.models import Membership, TeamTemplate

pytestmark = pytest.mark.django_db
REQ = "Add a subscriptions service that creates recurring orders through orders"


@pytest.fixture
def admin_user(demo, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    out = capsys.readouterr().out
    assert "product owner of Demo: online shop" in out
    return get_user_model().objects.get(username="admin")


def start_from_the_form(client, run_engine, demo) -> DesignSession:
    page = client.get(reverse("session_create", kwargs={"slug": "demo"})).content.decode()
    nsi = TeamTemplate.objects.get(slug="new-service-integration")
    # The README's team is the form's default.
    assert re.search(rf'<option value="{nsi.pk}" selected>New Service Integration Team</option>', page)
    data = {"template": nsi.pk, "requirement": REQ, "prd": demo.prds.get().pk, "approval_quorum": 1,
            "expiry_action": "keep_open"}
    response = run_engine(client.post, reverse("session_create", kwargs={"slug": "demo"}), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return DesignSession.objects.latest("pk")


def approve(client, run_engine, session: DesignSession, gate: str = DESIGN_GATE):
    point = session.validation_points.get(gate=gate, state="open")
    url = reverse("validation_respond", kwargs={"pk": session.pk, "point_id": point.pk})
    return run_engine(client.post, url, {"verdict": "approve", "comment": "ship it"})


def test_the_printed_admin_starts_the_demo_session_and_approves_it(client, run_engine, demo, admin_user):
    assert Membership.objects.get(user=admin_user, project=demo).role == "product_owner"
    client.force_login(admin_user)
    session = start_from_the_form(client, run_engine, demo)
    assert session.status == "awaiting_user"
    page = client.get(session.get_absolute_url()).content.decode()
    assert 'value="approve"' in page  # the card offers the verdict form to the admin
    approve(client, run_engine, session)
    point = session.validation_points.get(gate=DESIGN_GATE)
    assert point.state == ValidationPoint.State.APPROVED
    assert point.responses.get().user == admin_user


def test_earlier_checkouts_owner_admin_becomes_product_owner(demo, make_user, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    admin = get_user_model().objects.create_superuser("admin", "", "pw-Secret-1")
    Membership.objects.create(user=admin, project=demo, role="owner")
    call_command("ensure_admin", verbosity=0)
    assert Membership.objects.get(user=admin, project=demo).role == "product_owner"


def test_an_owner_invites_a_product_owner_by_email_who_then_approves(client, run_engine, demo, make_user):
    owner = make_user("olga")
    Membership.objects.create(user=owner, project=demo, role="owner")
    client.force_login(owner)
    session = start_from_the_form(client, run_engine, demo)
    # The card tells the owner who can answer, and where to get such a person.
    card = client.get(session.get_absolute_url()).content.decode()
    assert "Only a product owner can answer this point, and this project has none yet." in card
    assert f'href="{reverse("project_members", kwargs={"slug": "demo"})}#invite"' in card
    assert 'value="approve"' not in card

    mail.outbox.clear()
    members = reverse("project_members", kwargs={"slug": "demo"})
    response = run_engine(client.post, members, {"username": "Petra.Owner@example.com", "role": "product_owner"},
                          HTTP_HOST="127.0.0.1:8100", follow=True)
    assert "petraowner added as Product owner" in response.content.decode()
    petra = get_user_model().objects.get(email="Petra.Owner@example.com")
    assert not petra.has_usable_password()
    assert Membership.objects.get(user=petra, project=demo).role == "product_owner"
    (invitation,) = mail.outbox
    assert invitation.to == ["Petra.Owner@example.com"]
    link = re.search(r"http://127\.0\.0\.1:8100(/accounts/reset/\S+/)", invitation.body).group(1)

    client.logout()
    form_page = client.get(link, follow=True)
    assert "Choose your password" in form_page.content.decode()
    response = client.post(form_page.redirect_chain[-1][0] if form_page.redirect_chain else link,
                           {"new_password1": "a-Long-pass-42", "new_password2": "a-Long-pass-42"})
    assert response.status_code == 302
    assert client.login(username="petraowner", password="a-Long-pass-42")

    card = client.get(session.get_absolute_url()).content.decode()
    assert 'value="approve"' in card
    approve(client, run_engine, session)
    assert session.validation_points.get(gate=DESIGN_GATE).state == "approved"

    client.force_login(owner)
    card = client.get(session.get_absolute_url()).content.decode()
    assert session.validation_points.filter(gate="integration_validation", state="open").exists()
    assert "Waiting for a product owner: petraowner. Only they can answer this point." in card


def test_invite_by_username_role_change_and_refusals(client, demo, make_user):
    owner = make_user("olga")
    Membership.objects.create(user=owner, project=demo, role="owner")
    arch = make_user("archie")
    Membership.objects.create(user=arch, project=demo, role="architect")
    make_user("newbie")
    members = reverse("project_members", kwargs={"slug": "demo"})

    client.force_login(arch)
    assert client.get(members).status_code == 200  # everyone on the project sees the page
    assert client.post(members, {"username": "newbie", "role": "viewer"}).status_code == 403

    client.force_login(owner)
    assert client.post(members, {"username": "newbie", "role": "viewer"}).status_code == 302
    newbie = Membership.objects.get(user__username="newbie", project=demo)
    assert newbie.role == "viewer"
    for bad, message in [({"username": "ghost", "role": "viewer"}, "There is no user named ghost"),
                         ({"username": "not-an@email", "role": "viewer"}, "is not a valid email address"),
                         ({"username": "newbie", "role": "viewer"}, "already a member")]:
        before = (get_user_model().objects.count(), Membership.objects.count())
        response = client.post(members, bad)
        assert response.status_code == 400 and message in response.content.decode()
        assert (get_user_model().objects.count(), Membership.objects.count()) == before

    role_url = reverse("membership_role", kwargs={"slug": "demo"})
    client.post(role_url, {"membership": newbie.pk, "role": "product_owner"})
    newbie.refresh_from_db()
    assert newbie.role == "product_owner"
    mine = Membership.objects.get(user=owner, project=demo)
    response = client.post(role_url, {"membership": mine.pk, "role": "viewer"}, follow=True)
    assert "at least one owner" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == "owner"


def test_admin_approvers_widget_offers_only_members(client, demo, make_user, admin_user, run_engine):
    from sessions_app import services

    member = make_user("mia")
    Membership.objects.create(user=member, project=demo, role="product_owner")
    make_user("stranger")
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = run_engine(services.session_start, project=demo, template=template, requirement=REQ, user=None,
                         prd=demo.prds.get())
    client.force_login(admin_user)
    page = client.get(reverse("admin:sessions_app_designsession_change", args=[session.pk])).content.decode()
    approvers = page[page.index('name="approvers"'):page.index("</select>", page.index('name="approvers"'))]
    assert ">mia<" in approvers and ">stranger<" not in approvers
    point = session.validation_points.filter(kind="approval").first()
    page = client.get(reverse("admin:sessions_app_validationpoint_change", args=[point.pk])).content.decode()
    approvers = page[page.index('name="approvers"'):page.index("</select>", page.index('name="approvers"'))]
    assert ">mia<" in approvers and ">stranger<" not in approvers


def test_the_form_shows_unconfigured_providers_as_unavailable(client, demo, admin_user, settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    client.force_login(admin_user)
    url = reverse("session_create", kwargs={"slug": "demo"})
    page = client.get(url).content.decode()
    assert '<option value="anthropic" disabled>anthropic (unavailable: ANTHROPIC_API_KEY is not set)</option>' in page
    assert '<option value="openai" disabled>openai (unavailable: OPENAI_BASE_URL is not set)</option>' in page
    assert '<option value="rules">rules</option>' in page
    nsi = TeamTemplate.objects.get(slug="new-service-integration")
    response = client.post(url, {"template": nsi.pk, "requirement": REQ, "provider": "anthropic", "approval_quorum": 1,
                                 "expiry_action": "keep_open"})
    assert response.status_code == 400 and "anthropic is unavailable" in response.content.decode()
    assert not DesignSession.objects.exists()
    settings.OPENAI_BASE_URL = "http://127.0.0.1:11434/v1"
    assert '<option value="openai">openai</option>' in client.get(url).content.decode()


def test_the_form_refuses_more_approvals_than_the_project_has_product_owners(client, demo, admin_user, make_user, run_engine):
    client.force_login(admin_user)
    demo.memberships.filter(role=Membership.Role.PRODUCT_OWNER).delete()
    pia = make_user("pia")
    Membership.objects.create(user=pia, project=demo, role=Membership.Role.PRODUCT_OWNER)
    url = reverse("session_create", kwargs={"slug": "demo"})
    nsi = TeamTemplate.objects.get(slug="new-service-integration")
    data = {"template": nsi.pk, "requirement": REQ, "provider": "rules", "approval_quorum": 5, "expiry_action": "keep_open"}
    response = client.post(url, data)
    assert response.status_code == 400
    assert "The project has 1 product owner, so at most 1 can approve." in response.content.decode()
    assert not DesignSession.objects.exists()
    named = run_engine(client.post, url, {**data, "approvers": [pia.pk]})  # named approvers: all of them approve instead
    assert named.status_code == 302 and DesignSession.objects.get().approval_quorum == 5
