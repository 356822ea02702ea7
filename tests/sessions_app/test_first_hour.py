"""What a newcomer reads on the demo: masked secrets rendered as written, links on the site's
own address, the report's phase wording, and a completed session leaving nothing open."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.core import mail

from sessions_app import services
from sessions_app.engine.checklist import DESIGN_GATE, DISCOVERY_INPUT, VALIDATION_GATE
from sessions_app.engine.context import SessionContext
from sessions_app.models import DesignSession
from sessions_app.reports import awaiting
from sessions_app.templatetags.maestro import render_markdown
from sessions_app.validation import validation_respond
from teams_app.inventory.rules.security import url_credentials
from teams_app.models import Membership, TeamTemplate
from tests.support.processes import ROOT

pytestmark = pytest.mark.django_db
REQ = "Add a payment service integration"
# As the SEC005 rule masks the demo inventory's AMQP_URL and DATABASE_URL values.
AMQP = "amqp://shop:***@rabbitmq:5672/shop"
ORDERS_DB = "postgres://orders:***@postgres:5432/orders"


@pytest.fixture
def po(demo, make_user):
    user = make_user("petra", email="petra@example.com")
    Membership.objects.create(user=user, project=demo, role=Membership.Role.PRODUCT_OWNER)
    return user


def start(run_engine, demo) -> DesignSession:
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = run_engine(services.session_start, project=demo, template=template, requirement=REQ, user=None,
                         prd=demo.prds.get())
    return DesignSession.objects.get(pk=session.pk)


def complete(run_engine, demo, po, session: DesignSession | None = None) -> DesignSession:
    session = session or start(run_engine, demo)
    run_engine(validation_respond, point=session.validation_points.get(gate=DESIGN_GATE, state="open"), user=po, verdict="approve")
    run_engine(validation_respond, point=session.validation_points.get(gate=VALIDATION_GATE, state="open"), user=po, verdict="approve")
    return DesignSession.objects.get(pk=session.pk)


# -- masked secrets ----------------------------------------------------------------------------


def test_the_masks_are_the_ones_the_inventory_rule_writes():
    assert url_credentials("amqp://shop:s3cret@rabbitmq:5672/shop") == AMQP
    assert url_credentials("postgres://orders:orders@postgres:5432/orders") == ORDERS_DB


@pytest.mark.parametrize("text", [
    f"orders embeds credentials in AMQP_URL ({AMQP}) and DATABASE_URL ({ORDERS_DB}); reference a secret instead",
    f"- [critical] SEC005: two masks {AMQP}, {ORDERS_DB}",
    f"| service | url |\n|---|---|\n| orders | {AMQP} |\n| users | {ORDERS_DB} |",
    f"`{AMQP}` and {ORDERS_DB}",
    "PASSWORD=*** and TOKEN=***",
])
def test_masked_secrets_survive_markdown(text):
    html = render_markdown(text)
    assert "<em>" not in html and "<strong>" not in html
    for mask in re.findall(r"\S*\*\*\*\S*", text):
        assert mask.strip("`|(),;") in html


def test_emphasis_and_rules_still_render():
    assert render_markdown("a ***both*** b") == "<p>a <em><strong>both</strong></em> b</p>\n"
    assert render_markdown("above\n\n***\n\nbelow").count("<hr>") == 1


def test_session_cards_and_report_show_the_masked_urls(run_engine, demo, po, client):
    session = start(run_engine, demo)
    # Findings that name one service quote its masked URL; a message quotes both.
    run_engine(services.message_post, session=session, text=f"Keep {AMQP} and {ORDERS_DB} as they are", user=po)
    session = complete(run_engine, demo, po, session)
    client.force_login(po)
    html = client.get(session.get_absolute_url()).content.decode()
    assert AMQP in html and ORDERS_DB in html
    for url in (session.get_absolute_url(), f"/sessions/{session.pk}/report/"):
        html = client.get(url).content.decode()
        assert "shop:@rabbitmq" not in html and "orders:@postgres" not in html


# -- one base URL ------------------------------------------------------------------------------


def test_report_links_follow_the_address_the_site_is_served_on(run_engine, demo, po, client, settings):
    session = complete(run_engine, demo, po)
    client.force_login(po)
    md = client.get(f"/sessions/{session.pk}/report/?format=md", HTTP_HOST="127.0.0.1:8100").content.decode()
    assert "[ADR-0001](http://127.0.0.1:8100/projects/demo/decisions/1/)" in md
    assert "127.0.0.1:8000" not in md
    settings.MAESTRO_BASE_URL = "https://maestro.example.com/"
    md = client.get(f"/sessions/{session.pk}/report/?format=md", HTTP_HOST="127.0.0.1:8100").content.decode()
    assert "[ADR-0001](https://maestro.example.com/projects/demo/decisions/1/)" in md


def test_emails_link_where_make_run_serves_without_a_request(run_engine, demo, po, settings):
    settings.MAESTRO_SERVE_URL = "http://127.0.0.1:8100"
    mail.outbox.clear()
    session = start(run_engine, demo)
    message = next(m for m in mail.outbox if "Design Before Development" in m.subject)
    point = session.validation_points.get(gate=DESIGN_GATE)
    assert f"http://127.0.0.1:8100/sessions/{session.pk}/#point-{point.pk}" in message.body


def test_serve_url_follows_port_and_host(tmp_path):
    probe = "import json, django; from django.conf import settings; print(json.dumps([settings.MAESTRO_SERVE_URL, settings.MAESTRO_BASE_URL]))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MAESTRO_DATA_DIR": str(tmp_path), "PORT": "8100",
           "HOST": "0.0.0.0"}
    env.pop("MAESTRO_BASE_URL", None)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["http://127.0.0.1:8100", ""]


# -- the seed's elements -----------------------------------------------------------------------


def test_the_report_names_five_phases_and_says_completed_once(run_engine, demo, po):
    report = complete(run_engine, demo, po).report
    assert "- **Status**: Completed\n" in report
    assert "Current Phase: Completed (all 5 phases)" in report
    assert "6 Completed" not in report and "phase Completed" not in report


def test_a_running_session_names_its_phase_like_the_agent_definition(run_engine, demo, po, client):
    session = start(run_engine, demo)
    assert session.phase_label == "Phase 3: Integration Design"
    client.force_login(po)
    html = client.get(session.get_absolute_url()).content.decode()
    header = html[html.index('id="session-header"'):html.index("</header>", html.index('id="session-header"'))]
    for line in ("━━━━━━━━", "To continue this cluster session, start your response with:",
                 "Currently Active Team: New Service Integration Team", "Current Phase: Phase 3: Integration Design",
                 f"Services Involved: {', '.join(SessionContext.load(session).involved_services)}",
                 f"Awaiting: {awaiting(session)}"):
        assert line in header


def test_the_optional_input_closes_unanswered_and_leaves_waiting_for_you(run_engine, demo, po, client):
    session = start(run_engine, demo)
    optional = session.validation_points.get(gate=DISCOVERY_INPUT)
    assert optional.state == "open"
    client.force_login(po)
    assert "Business requirements" in client.get("/").content.decode()
    session = complete(run_engine, demo, po, session)
    optional.refresh_from_db()
    assert optional.state == "cancelled" and optional.closed_at is not None
    assert not session.validation_points.filter(state="open").exists()
    assert "Business requirements for the team: closed unanswered" in session.report
    dashboard = client.get("/").content.decode()
    assert "Business requirements" not in dashboard


def test_the_placeholder_names_what_the_session_waits_for(run_engine, demo, po, client):
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = run_engine(services.session_start, project=demo, template=template, requirement=REQ, user=None)
    client.force_login(po)
    assert "it needs a PRD" in client.get(session.get_absolute_url()).content.decode()
    run_engine(services.session_attach_prd, session=session, prd=demo.prds.get())
    html = client.get(session.get_absolute_url()).content.decode()
    first = DesignSession.objects.get(pk=session.pk).rounds.get(number=1)
    assert 'id="no-rounds"' not in html and f'id="round-{first.pk}"' in html


def test_copy_reads_cleanly(run_engine, demo, po):
    session = complete(run_engine, demo, po)
    texts = [c.text for c in session.contributions.all()] + [r.brief for r in session.rounds.all()]
    texts += [p.body for p in session.validation_points.all()]
    joined = "\n".join(texts)
    assert ".. " not in joined and "..\n" not in joined
    assert not re.search(r"Design agreed:\s*$", joined, re.M) or "Design agreed:\n- " in joined
    assert "Scope: Plan your part of the implementation of the agreed design; coordinate before building. Design agreed:" not in joined
    assert f"The team has designed the integration for “{REQ}”:" in joined
