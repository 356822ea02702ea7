"""The design in a real browser: a new proposal version reaches the open session page over its
WebSocket (the proposal panel and the validation card), and the compare page shows the current
cluster against the proposed one, both rendered by Mermaid. Screenshots at 1280 and 420 px."""

from __future__ import annotations

import pytest
from django.db import transaction
from selenium.webdriver.common.by import By

from sessions_app.engine.checklist import DESIGN_GATE
from sessions_app.engine.points import validation_open
from tests.browser.chromium import SCREENSHOTS, Browser
from tests.sessions_app.design_factories import PROPOSAL_V1, PROPOSAL_V2, design_round, design_session, proposal_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def viewport(b: Browser, width: int, height: int = 900) -> None:
    b.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    )


def overflowing(b: Browser) -> int:
    """How far the page is wider than the viewport (a horizontal scrollbar for the whole page)."""
    return b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_a_new_proposal_version_appears_live_and_compare_shows_current_against_proposed(demo, member, browser):
    member("ada", "architect")
    member("pete", "product_owner")
    session = design_session(demo, plan=True)
    rnd = design_round(session)
    proposal_add(session, PROPOSAL_V1, reason="Integration Design merged the specialists' changes", round=rnd)
    with transaction.atomic():
        point = validation_open(session, gate=DESIGN_GATE, kind="approval", title="Design Before Development: confirm the design",
                                body="Confirm the proposal before anyone builds it.", questions=[])

    page = browser("product-owner")
    page.login("pete")
    page.open(f"/sessions/{session.pk}/")
    loaded = page.wait(lambda: page.recorder()["wsOpens"] >= 1 and page.recorder(), what="the WebSocket open")["loadedAt"]
    assert "v1" in page.text("#design-proposal h2")
    assert "inventory.reserved" not in page.text("#design-proposal")
    assert "Payments and PCI" in page.text("#design-brief")
    assert "Isolate the PCI network" in page.text("#design-plan")
    assert "Proposed Architecture:" in page.text(f"#point-{point.pk}")

    # The engine records a new version in one transaction with its event; the page is not reloaded.
    proposal_add(session, PROPOSAL_V2, reason="reserve stock while the payment runs", round=rnd,
                 author_kind="specialist", author_name="Data Flow Analyst")
    page.wait(lambda: "v2" in page.text("#design-proposal h2"), what="proposal v2 in the panel")
    panel = page.text("#design-proposal")
    assert "Version 2 by Data Flow Analyst in round 3" in panel and "inventory.reserved" in panel
    assert "Changed since v1" in panel
    added = page.texts("#design-proposal .diff-insert")
    assert any("inventory.reserved" in t for t in added), added
    page.wait(lambda: "Proposal v2" in page.text(f"#point-{point.pk}"), what="the validation card on v2")
    assert page.js(f"return document.querySelector('#point-{point.pk} input[name=proposal_seen]').value") == "2"
    assert page.recorder()["loadedAt"] == loaded, "the page reloaded"
    assert page.duplicate_ids() == []
    assert page.stale_fragments() == []
    assert page.unlabelled_fields() == []

    # Screenshots with the panels filled, wide and narrow; nothing makes the page scroll sideways.
    for width in (1280, 420):
        viewport(page, width)
        page.js("window.scrollTo(0, 0)")
        wide = page.js("""return Array.from(document.querySelectorAll('body *')).filter(function (e) {
            return e.getBoundingClientRect().right > document.documentElement.clientWidth + 1; })
            .slice(0, 12).map(function (e) { return e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right); });""")
        assert overflowing(page) <= 0, f"the session page is wider than {width} px: {wide}"
        page.screenshot(SCREENSHOTS / f"design-session-{width}.png")
        page.screenshot(SCREENSHOTS / f"design-session-{width}-full.png", full_page=True)
        for panel in ("design-brief", "design-proposal", "design-plan"):
            page.js(f"document.getElementById('{panel}').scrollIntoView()")
            page.screenshot(SCREENSHOTS / f"{panel}-{width}.png")
    viewport(page, 1280)

    # Keyboard: the compare link is reachable and opens the compare page.
    link = page.driver.find_element(By.LINK_TEXT, "Compare with current cluster")
    link.send_keys("\n")
    page.wait(lambda: "/compare/" in page.path, what="the compare page")
    page.wait(lambda: page.js("return document.querySelectorAll('.mermaid-rendered svg').length") == 2,
              what="both diagrams rendered")
    headings = page.texts(".compare-side h3")
    assert headings[0].startswith("Current cluster v") and headings[1] == "v2", headings
    assert [t for t in page.texts(".diagram-error") if t.strip()] == []
    assert "Proposal v2 against the current cluster" in page.text(".compare-proposal")
    assert "add edge orders → inventory AMQP async" in page.text(".compare-proposal")
    # The proposed side has the new payments → inventory event edge; the current side has not.
    current, proposed = page.driver.find_elements(By.CSS_SELECTOR, ".compare-side")
    assert "payments" in proposed.text
    assert page.js("return document.querySelectorAll('.compare-b .mermaid-rendered svg .edgePath, .compare-b .mermaid-rendered svg path.flowchart-link').length") > \
        page.js("return document.querySelectorAll('.compare-a .mermaid-rendered svg .edgePath, .compare-a .mermaid-rendered svg path.flowchart-link').length")
    page.screenshot(SCREENSHOTS / "design-compare-1280.png", full_page=True)
    assert page.console_errors() == []
