"""The README's path in headless Chromium, as the account `make run` prints: sign in, start
the demo's session from the form, watch it stream, approve both gates, read the report. No
console errors and no Content-Security-Policy violations on the way; Mermaid still renders."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from selenium.webdriver.common.by import By

from sessions_app.models import DesignSession, ValidationPoint
from tests.browser.chromium import SCREENSHOTS, Browser

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
REQUIREMENT = "Add a subscriptions service that creates recurring orders through orders"


def clean(b: Browser) -> None:
    assert b.console_errors() == []
    assert b.recorder()["csp"] == []


def approve(b: Browser, pk: int, gate: str, title: str) -> ValidationPoint:
    b.wait_text("#user-panel", title, 60)
    point = b.wait(lambda: ValidationPoint.objects.filter(session_id=pk, gate=gate, state="open").first(), what=f"the open {gate}")
    # The panel may name the gate (its phase) before the point's own section arrives.
    section = b.wait(lambda: next(iter(b.driver.find_elements(By.ID, f"point-{point.pk}")), None), what=f"the {gate} on the page")
    section.find_element(By.CSS_SELECTOR, "textarea[name=comment]").send_keys("Approved by the demo's product owner.")
    section.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
    b.wait(lambda: not b.driver.find_elements(By.ID, f"point-{point.pk}"), what=f"{gate} leaves the panel")
    return point


def test_the_printed_admin_walks_the_golden_path(demo, browser, start_worker, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    printed = capsys.readouterr().out
    password = (tmp_path / "admin-password").read_text().strip()
    assert f"as admin / {password}" in printed

    start_worker()
    b = browser("admin")
    b.login("admin", password)
    b.open("/projects/demo/")
    b.wait(lambda: b.js("return document.querySelectorAll('.mermaid-rendered svg').length") >= 1, what="Mermaid")
    clean(b)
    b.open("/projects/demo/sessions/new/")
    assert "New Service Integration Team" in b.js("var s = document.getElementById('id_template'); return s.options[s.selectedIndex].text")
    b.driver.find_element(By.ID, "id_requirement").send_keys(REQUIREMENT)
    b.driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    b.wait(lambda: b.path.startswith("/sessions/"), what="the session page")
    pk = int(b.path.split("/")[2])

    # It streams: rounds arrive over the WebSocket until the design waits at its gate.
    b.wait(lambda: b.recorder()["wsMessages"] > 0, what="live frames")
    approve(b, pk, "design_gate", "Design Before Development")
    b.wait_text(".continuation", "Current Phase: Phase 5: Integration Validation", 60)
    b.screenshot(SCREENSHOTS / "golden-path-validation.png")
    approve(b, pk, "integration_validation", "Integration Validation")
    b.wait_text(".continuation", "Current Phase: Completed (all 5 phases)", 60)
    session = DesignSession.objects.get(pk=pk)
    assert session.status == "completed"
    assert not session.validation_points.filter(state="open").exists()
    assert session.validation_points.get(gate="design_gate").responses.get().user.username == "admin"
    clean(b)

    b.open(f"/sessions/{pk}/report/")
    report = b.text("main")
    assert "Final report" in report and "Proposed Architecture" in report and "Implementation plan" in report
    assert "shop:@rabbitmq" not in report  # masked secrets render as written
    hrefs = b.js("return Array.from(document.querySelectorAll('main a')).map(function (a) { return a.href; })")
    assert f"{b.base_url}/projects/demo/decisions/1/" in hrefs
    b.open("/")
    assert "Business requirements" not in b.text("main")
    clean(b)

    b.driver.set_window_size(420, 900)
    b.open(f"/sessions/{pk}/")
    assert b.js("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    b.screenshot(SCREENSHOTS / "golden-path-420.png")
    clean(b)
