"""End to end in headless Chromium: the real product (daphne, a real Celery worker, Redis, the
test database), signed in through the login form, the session page updated only by its
WebSocket (htmx ws extension, OOB fragments), Mermaid rendering, keyboard use and labels."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from sessions_app import services
from sessions_app.decisions.models import Decision
from sessions_app.models import Contribution, DesignSession, ValidationPoint
from sessions_app.validation import validation_respond
from teams_app.models import TeamTemplate
from tests.browser.chromium import SCREENSHOTS, Browser, dump

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TEAM = "New Service Integration Team"
REQUIREMENT = "Add a subscriptions service that creates recurring orders through orders"
DESIGN_GATE_TITLE = "Design Before Development: confirm the design"


def session_row(pk: int) -> DesignSession:
    return DesignSession.objects.get(pk=pk)


def session_id_from(b: Browser) -> int:
    path = b.path
    assert path.startswith("/sessions/"), path
    return int(path.split("/")[2])


def current_step(b: Browser) -> str:
    return b.text(".stepper li[aria-current=step]")


def gate_item(b: Browser, label: str) -> str:
    return next((t for t in b.texts("#gate-checklist li") if label in t), "")


def start_session_via_service(project, user) -> DesignSession:
    template = TeamTemplate.objects.get(slug="new-service-integration")
    return services.session_start(
        project=project, template=template, requirement=REQUIREMENT, user=user, prd=project.prds.get()
    )


def wait_quiet(pk: int, status: str = DesignSession.Status.AWAITING_USER, timeout: float = 45.0) -> DesignSession:
    """Wait until the session waits for a person and its event log stopped growing."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        row = session_row(pk)
        if row.status == status and last == row.last_seq:
            return row
        last = row.last_seq if row.status == status else None
        time.sleep(0.5)
    raise AssertionError(f"session {pk} did not settle in {status}: {session_row(pk).status}")


def test_architect_watches_a_session_unfold_live(demo, member, browser, start_worker):
    """Issue 4 "Done means": sign in, see the Mermaid cluster diagram, start a New Service
    Integration session and watch Pattern Discovery and Integration Design arrive live."""
    member("ada", "architect")
    page = browser("architect")
    page.login("ada")

    page.driver.find_element(By.LINK_TEXT, demo.name).click()  # from the dashboard
    page.wait(lambda: page.path == demo.get_absolute_url(), what="the project page")
    page.wait(lambda: page.js("return !!document.querySelector('.mermaid-rendered svg')"), what="the Mermaid SVG")
    assert page.js("return document.querySelectorAll('.mermaid-rendered svg g').length") > 5
    errors = [t for t in page.texts(".diagram-error") if t.strip()]
    assert not errors, errors

    page.driver.find_element(By.LINK_TEXT, "Start a design session").click()
    page.wait(lambda: page.path.endswith("/sessions/new/"), what="the session form")
    Select(page.driver.find_element(By.ID, "id_template")).select_by_visible_text(TEAM)
    page.driver.find_element(By.ID, "id_requirement").send_keys(REQUIREMENT)
    assert Select(page.driver.find_element(By.ID, "id_prd")).first_selected_option.text.startswith("PRD-101")
    page.driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    page.wait(lambda: page.path.startswith("/sessions/"), what="the session page")
    pk = session_id_from(page)
    page.wait(lambda: page.recorder()["wsOpens"] >= 1, what="the WebSocket open")
    initial_seq = page.recorder()["initialSeq"]
    assert session_row(pk).status == DesignSession.Status.RUNNING
    waiting = page.texts(".contrib-specialist")
    assert len(waiting) == 6 and not any("rule-based analysis" in t for t in waiting), waiting  # no worker yet
    assert page.texts(".contrib-specialist .cstatus") == ["Waiting"] * 6  # queued: no worker has them
    page.js("document.querySelector('.contrib-specialist').scrollIntoView()")
    page.screenshot(SCREENSHOTS / "session-waiting.png")
    page.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 420, "height": 900, "deviceScaleFactor": 1, "mobile": True})
    page.js("document.querySelector('.contrib-specialist').scrollIntoView()")
    page.screenshot(SCREENSHOTS / "session-waiting-420.png")
    page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # A worker's first part of a call's text (empty until its text comes) turns that card to working.
    first = page.js("return document.querySelector('.contrib-specialist .stream').id")
    page.js("document.body.dispatchEvent(new CustomEvent('htmx:wsBeforeMessage', {cancelable: true, detail: {message:"
            f" '<div hx-swap-oob=\"beforeend:#{first}\" data-at=\"0\"></div>'}}}}))")
    assert page.texts(".contrib-specialist .cstatus") == ["Working"] + ["Waiting"] * 5
    assert page.js("return document.querySelectorAll('.contrib.queued').length") == 5

    start_worker()  # from here on, everything reaches the page over the socket

    page.wait(lambda: len([t for t in page.texts(".contrib-specialist") if "rule-based analysis" in t]) >= 6,
              what="six specialist contributions")
    page.wait(lambda: "6 of 6 specialists" in page.text(".round:last-of-type .progress"), what="6 of 6 on the latest round")
    page.wait(lambda: page.js("return document.querySelectorAll('.round').length") >= 3, what="the design round")
    page.wait_text("#timeline", "Maestro synthesis")
    page.wait(lambda: gate_item(page, "Integration points are mapped").startswith("☑"), what="☑ integration points")
    page.wait(lambda: current_step(page) == "3 Integration Design", what="phase 3 current")
    page.wait(lambda: page.js("return document.querySelectorAll('#key-questions .question').length") >= 1,
              what="key questions")
    row = wait_quiet(pk)
    page.wait(lambda: page.live_seq() == row.last_seq, what=f"live-seq {row.last_seq}")

    # All of it arrived live: same document (no reload), over more than ten events after the first
    # render, in several socket messages (events that arrive together share a frame).
    recorder = page.recorder()
    assert recorder["initialSeq"] == initial_seq and recorder["wsMessages"] >= 3, dump(recorder)
    assert initial_seq < row.last_seq - 10
    progress = page.texts(".progress")
    assert sum("6 of 6 specialists" in t for t in progress) >= 2, progress  # analysis and design rounds
    done = Contribution.objects.filter(session_id=pk, author="specialist", status="done").count()
    assert len(page.texts(".contrib-specialist")) == done
    assert page.duplicate_ids() == []
    assert page.stale_fragments() == []
    # Nothing is painted over the live parts' text (the consensus bars sit behind their labels).
    assert page.covered_text(".stepper li, #gate-checklist li, .progress, #key-questions .options li") == []
    assert "Awaiting" in page.text("#session-header")

    page.js("window.scrollTo(0, 0)")
    page.screenshot(SCREENSHOTS / "session.png")
    page.screenshot(SCREENSHOTS / "session-full.png", full_page=True)
    assert page.console_errors() == []


def test_product_owner_approves_the_design_live(demo, member, browser, start_worker):
    """Issue 5 "Done means": a product owner on the session page sees the design gate open
    live, approves it with a comment, and both viewers advance to Implementation Planning."""
    ada = member("ada", "architect")
    member("pete", "product_owner")
    pk = start_session_via_service(demo, ada).pk
    architect, owner = browser("architect"), browser("product-owner")
    for b, username in ((architect, "ada"), (owner, "pete")):
        b.login(username)
        b.open(f"/sessions/{pk}/")
        b.wait(lambda b=b: b.recorder()["wsOpens"] >= 1, what="the WebSocket open")
    loaded = {b.name: b.recorder()["loadedAt"] for b in (architect, owner)}
    assert DESIGN_GATE_TITLE not in owner.text("#user-panel")
    assert current_step(owner) == "2 Pattern Discovery"

    worker = start_worker()
    owner.wait_text("#user-panel", DESIGN_GATE_TITLE)
    point = ValidationPoint.objects.get(session_id=pk, gate="design_gate", state="open")
    # Implementation Planning would pass in well under a second with the rules provider: without
    # a worker the session stays there after the approval, so both pages can be seen in phase 4.
    worker.stop()
    section = owner.driver.find_element(By.ID, f"point-{point.pk}")
    owner.wait(lambda: [e.text for e in section.find_elements(By.CSS_SELECTOR, "button[name=verdict]")]
               == ["Approve", "Request changes", "Reject"], what="the three verdict buttons")
    assert "Waiting for a product owner" in architect.wait_text("#user-panel", DESIGN_GATE_TITLE)
    assert not architect.driver.find_elements(By.CSS_SELECTOR, f"#point-{point.pk} button[name=verdict]")
    assert owner.unlabelled_fields() == []
    assert owner.duplicate_ids() == []

    # Meanwhile the product owner's dashboard lists it (second tab; the session tab stays open).
    session_tab = owner.driver.current_window_handle
    owner.driver.switch_to.new_window("tab")
    owner.open("/")
    assert DESIGN_GATE_TITLE in owner.text("[aria-labelledby=waiting-h]")
    owner.driver.close()
    owner.driver.switch_to.window(session_tab)

    # The point's architecture (a code block of its text) keeps its lines: it scrolls, it does not wrap.
    architecture = section.find_element(By.CSS_SELECTOR, ".md pre")
    assert "Proposed Architecture" in architecture.text
    assert owner.js("return getComputedStyle(arguments[0]).whiteSpace", architecture) == "pre"

    # Asking for changes without saying which is refused, on the panel, and changes nothing.
    section.find_element(By.CSS_SELECTOR, "button[value=request_changes]").click()
    refusal = owner.wait_text("#user-panel .errors[role=alert]", "Say what should change")
    owner.wait(lambda: owner.driver.switch_to.active_element.text == refusal, what="focus on the refusal")
    owner.screenshot(SCREENSHOTS / "validation-refused.png")
    assert ValidationPoint.objects.get(pk=point.pk).state == "open" and not point.responses.exists()

    section = owner.driver.find_element(By.ID, f"point-{point.pk}")
    section.find_element(By.CSS_SELECTOR, "textarea[name=comment]").send_keys("Reuse the orders flow; approved.")
    section.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
    for b in (owner, architect):
        b.wait(lambda b=b: current_step(b) == "4 Implementation Planning", what="phase 4 current")
        b.wait(lambda b=b: gate_item(b, "User requirements confirmed").startswith("☑"), what="☑ user requirements")
        b.wait(lambda b=b: not b.driver.find_elements(By.ID, f"point-{point.pk}"), what="the point leaves the panel")
        assert b.recorder()["loadedAt"] == loaded[b.name], f"{b.name} reloaded"
    response = point.responses.get()
    assert (response.user.username, response.verdict, response.comment) == ("pete", "approve", "Reuse the orders flow; approved.")
    assert ValidationPoint.objects.get(pk=point.pk).state == "approved"

    row = wait_quiet(pk, DesignSession.Status.RUNNING)  # the planning round waits for a worker
    for b in (owner, architect):
        b.wait(lambda b=b: b.live_seq() == row.last_seq, what=f"live-seq {row.last_seq}")
        assert b.duplicate_ids() == []
        assert b.stale_fragments() == []
        assert b.console_errors(allow=("status of 422",)) == []  # the refused request above

    owner.open("/")
    waiting = owner.text("[aria-labelledby=waiting-h]")
    assert "Waiting for you" in waiting and DESIGN_GATE_TITLE not in waiting, waiting

    # The approval accepted the session's decisions; the log shows who accepted them.
    decision = Decision.objects.filter(session_id=pk, status="accepted").order_by("number").first()
    assert decision is not None
    owner.open(f"/projects/{demo.slug}/decisions/{decision.number}/")
    history = owner.text("main")
    assert decision.title in history and "Accepted" in history and "pete" in history, history[:2000]
    assert owner.unlabelled_fields() == [] and owner.duplicate_ids() == []
    assert owner.console_errors(allow=("status of 422",)) == []


# While offline: Chromium reports each failed connection attempt, and htmx logs the socket's
# error event ("[object Event]") for each of them. Nothing else may appear.
OFFLINE_NOISE = ("net::ERR_INTERNET_DISCONNECTED", '"[object Event]"')


def test_the_page_reconnects_and_catches_up_without_duplicates(demo, member, browser, start_worker):
    """A lost connection shows "reconnecting…"; back online, the page resumes from its last
    sequence number and shows what happened meanwhile exactly once."""
    ada = member("ada", "architect")
    pete = member("pete", "product_owner")
    pk = start_session_via_service(demo, ada).pk
    page = browser("architect")
    page.login("ada")
    page.open(f"/sessions/{pk}/")
    loaded = page.wait(lambda: page.recorder()["wsOpens"] >= 1 and page.recorder(), what="the WebSocket open")["loadedAt"]
    start_worker()
    row = wait_quiet(pk)  # the design gate
    page.wait(lambda: page.live_seq() == row.last_seq, what=f"live-seq {row.last_seq}")
    assert page.text("#live-status") == ""

    page.set_offline(True)
    page.drop_socket()
    page.wait_text("#live-status", "reconnecting…", timeout=15)
    seen = page.live_seq()
    # The session moves on while the page is offline: approved (a planning round starts on
    # the worker) and a message posted into the new round.
    point = ValidationPoint.objects.get(session_id=pk, gate="design_gate", state="open")
    validation_respond(point=point, user=pete, verdict="approve", comment="")
    note = "Posted while the page was offline"
    services.message_post(session=session_row(pk), text=note, user=ada)
    time.sleep(2)
    assert page.live_seq() == seen and "reconnecting…" in page.text("#live-status")
    assert session_row(pk).last_seq > seen

    page.set_offline(False)
    row = wait_quiet(pk)  # Integration Validation waits
    page.wait(lambda: page.live_seq() == row.last_seq, timeout=45, what=f"live-seq {row.last_seq} after reconnecting")
    page.wait(lambda: page.text("#live-status") == "", what="the notice cleared")
    assert len([t for t in page.texts(".contrib-user") if note in t]) == 1, page.texts(".contrib-user")
    assert page.duplicate_ids() == []
    assert page.stale_fragments() == []
    assert current_step(page) == "5 Integration Validation"
    done = Contribution.objects.filter(session_id=pk, author="specialist", status="done").count()
    assert len(page.texts(".contrib-specialist")) == done
    recorder = page.recorder()
    assert recorder["loadedAt"] == loaded and recorder["wsOpens"] >= 2, dump(recorder)
    assert page.console_errors(allow=OFFLINE_NOISE) == []


def press(b: Browser, *keys: str) -> None:
    ActionChains(b.driver).send_keys(*keys).perform()


def tab_until(b: Browser, script: str, limit: int = 40) -> None:
    """Press Tab until ``script`` (about ``document.activeElement``) is true."""
    for _ in range(limit):
        if b.js("var el = document.activeElement; return " + script):
            return
        press(b, Keys.TAB)
    raise AssertionError(f"Tab never reached: {script}")


def test_forms_work_with_the_keyboard_and_every_field_has_a_label(demo, member, browser, start_worker):
    """Sign in and start a session with Tab, typing, arrow keys and Enter only; every input,
    select and textarea on the pages on the way has a label, and no element id repeats."""
    member("ada", "architect")
    page = browser("keyboard")
    page.open("/accounts/login/")
    assert page.unlabelled_fields() == []
    tab_until(page, "el.id === 'id_username'")
    press(page, "ada", Keys.TAB, "pw-Secret-1", Keys.ENTER)
    page.wait(lambda: page.path == "/", what="the dashboard after signing in")
    assert page.unlabelled_fields() == []

    for path in (demo.get_absolute_url(), f"/projects/{demo.slug}/sessions/", f"/projects/{demo.slug}/inventory/"):
        page.open(path)
        assert page.unlabelled_fields() == [], path
        assert page.duplicate_ids() == [], path

    page.open(f"/projects/{demo.slug}/sessions/new/")
    assert page.unlabelled_fields() == []
    tab_until(page, "el.id === 'id_template'")
    press(page, Keys.HOME)
    for _ in range(10):
        if page.js("var s = document.getElementById('id_template'); return s.options[s.selectedIndex].text") == TEAM:
            break
        press(page, Keys.ARROW_DOWN)
    press(page, Keys.TAB, REQUIREMENT)
    assert page.js("return document.activeElement.id") == "id_requirement"
    tab_until(page, "el.tagName === 'BUTTON' && el.type === 'submit' && el.closest('main')")
    press(page, Keys.ENTER)
    page.wait(lambda: page.path.startswith("/sessions/"), what="the session page")
    session = session_row(session_id_from(page))
    assert (session.template.slug, session.requirement, session.prd.reference) == (
        "new-service-integration", REQUIREMENT, "PRD-101")
    page.wait(lambda: page.recorder()["wsOpens"] >= 1, what="the WebSocket open")
    assert page.unlabelled_fields() == []
    assert page.duplicate_ids() == []
    assert page.console_errors() == []
