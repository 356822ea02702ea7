"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) through Selenium, and the
product served by daphne, for the browser tests.

Selenium never looks for or downloads a browser or a driver here: both paths are explicit
(``Service(CHROMEDRIVER)`` skips Selenium Manager, ``binary_location`` names the browser).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path

from tests.support.processes import ROOT, Daphne, answers, wait_for

CHROMIUM = Path(os.environ.get("MAESTRO_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MAESTRO_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,900",
]
PASSWORD = "pw-Secret-1"
SCREENSHOTS = ROOT / "var" / "screenshots"


class Server(Daphne):
    """daphne serving ``config.asgi`` (HTTP, its own static files and the session WebSocket);
    ready when the sign-in page answers."""

    def __init__(self) -> None:
        # REDIS_URL comes from the test settings.
        super().__init__({"MAESTRO_SERVE_STATIC": "1", "DEBUG": "0"}, ready=answers("/accounts/login/", status=200))
        self.base_url = self.url


# -- the browser -------------------------------------------------------------------------------

# Installed before any page script runs: a marker that a reload would erase, the first
# ``live-seq`` the server rendered, and a count of WebSocket messages htmx applied.
RECORDER = """
window.__maestro = {loadedAt: Date.now(), wsMessages: 0, wsOpens: 0, initialSeq: null, csp: []};
document.addEventListener("securitypolicyviolation", function (e) {
  window.__maestro.csp.push([e.violatedDirective, e.sourceFile, e.lineNumber, e.columnNumber, e.blockedURI].join(" "));
});
document.addEventListener("DOMContentLoaded", function () {
  var marker = document.getElementById("live-seq");
  if (marker) window.__maestro.initialSeq = parseInt(marker.dataset.seq || "0", 10);
  document.body.addEventListener("htmx:wsAfterMessage", function () { window.__maestro.wsMessages += 1; });
  document.body.addEventListener("htmx:wsOpen", function (e) {
    window.__maestro.wsOpens += 1;
    window.__maestro.socket = e.detail.socketWrapper;  // the ws extension's public interface
  });
});
"""

# Every input, select and textarea a person fills in must have a label: a <label> (wrapping or
# for=), aria-label or aria-labelledby.
UNLABELLED_JS = """
return Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(function (el) {
    var type = (el.getAttribute("type") || "").toLowerCase();
    if (["hidden", "submit", "button", "reset", "image"].indexOf(type) >= 0) return false;
    if (el.labels && el.labels.length) return false;
    if ((el.getAttribute("aria-label") || "").trim()) return false;
    var by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\\s+/).some(function (id) { var l = document.getElementById(id); return l && l.textContent.trim(); })) return false;
    return true;
  })
  .map(function (el) { return el.outerHTML.slice(0, 160); });
"""

COVERED_TEXT_JS = """
var covered = [];
document.querySelectorAll(arguments[0]).forEach(function (el) {
  el.scrollIntoView({block: "center"});
  var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (var node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    var range = document.createRange();
    range.selectNodeContents(node);
    var rect = range.getClientRects()[0];
    if (!rect) continue;
    var hit = document.elementFromPoint(rect.left + rect.width / 2, rect.top + rect.height / 2);
    if (!hit || !hit.contains(node)) {
      covered.push(node.textContent.trim() + " (under " + (hit ? hit.outerHTML.slice(0, 80) : "nothing") + ")");
    }
  }
});
window.scrollTo(0, 0);
return covered;
"""


class Browser:
    """One signed-in person: its own Chromium process and profile (cookies are not shared)."""

    def __init__(self, base_url: str, name: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url
        self.name = name
        self.profile = tempfile.mkdtemp(prefix=f"maestro-chromium-{name}-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(str(CHROMEDRIVER), log_output=str(ROOT / "var" / f"chromedriver-{name}-{os.getpid()}.log"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        self._log: list[dict] = []

    # navigation and forms
    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def login(self, username: str, password: str = PASSWORD) -> None:
        from selenium.webdriver.common.by import By

        self.open("/accounts/login/")
        self.driver.find_element(By.ID, "id_username").send_keys(username)
        self.driver.find_element(By.ID, "id_password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        self.wait(lambda: not self.path.startswith("/accounts/login/"), what=f"{username} signed in")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, predicate, timeout: float = 45.0, what: str = "condition"):
        try:
            return wait_for(predicate, timeout=timeout, interval=0.1, what=what)
        except AssertionError as exc:
            raise AssertionError(f"[{self.name}] {exc}; page: {self.path}\n{self.text('main')[:1500]}") from None

    def text(self, css: str) -> str:
        return self.js("var e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css) or ""

    def texts(self, css: str) -> list[str]:
        return self.js("return Array.from(document.querySelectorAll(arguments[0])).map(function (e) { return e.innerText; });", css)

    def wait_text(self, css: str, expected: str, timeout: float = 45.0) -> str:
        return self.wait(lambda: expected in self.text(css) and self.text(css), timeout, what=f"{expected!r} in {css}")

    # live state
    def live_seq(self) -> int:
        return int(self.js("return document.getElementById('live-seq').dataset.seq"))

    def recorder(self) -> dict:
        return self.js("var r = Object.assign({}, window.__maestro); delete r.socket; return r;")

    def duplicate_ids(self) -> list[str]:
        return self.js(
            "var seen = {}, dup = [];"
            "document.querySelectorAll('[id]').forEach(function (e) { if (seen[e.id]) dup.push(e.id); seen[e.id] = 1; });"
            "return dup;"
        )

    def stale_fragments(self) -> list[str]:
        """Out-of-band wrappers left in the page (every hx-swap-oob element is consumed when swapped)
        and anything but cards inside a round's card list."""
        return self.js(
            "return Array.from(document.querySelectorAll('[hx-swap-oob], [data-hx-swap-oob], .cards > :not(article)'))"
            ".map(function (e) { return e.outerHTML.slice(0, 160); });"
        )

    def covered_text(self, css: str) -> list[str]:
        """Texts inside ``css`` elements that something else is painted over (hit-tested at their centre)."""
        return self.js(COVERED_TEXT_JS, css)

    def unlabelled_fields(self) -> list[str]:
        return self.js(UNLABELLED_JS)

    # the console
    def _drain(self) -> None:
        self._log.extend(self.driver.get_log("browser"))

    def console_errors(self, allow: tuple[str, ...] = ()) -> list[str]:
        """Console errors and uncaught exceptions so far, minus messages containing an allowed text."""
        self._drain()
        return [
            e["message"] for e in self._log
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allow)
        ]

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """The viewport as a person sees it, or the whole page (up to 8000 px) with ``full_page``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        params: dict = {"format": "png"}
        if full_page:
            height = int(self.js("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"))
            width = int(self.js("return document.documentElement.clientWidth"))
            params |= {"captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1}}
        path.write_bytes(base64.b64decode(self.driver.execute_cdp_cmd("Page.captureScreenshot", params)["data"]))
        return path

    def set_offline(self, offline: bool) -> None:
        """Emulated network loss for new connections (Chromium leaves open WebSockets alone)."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

    def drop_socket(self) -> None:
        """Close the page's WebSocket from the page through the ws extension's socket wrapper; it
        opens a new one at once, which fails while offline (1006), and then retries with backoff."""
        self.js("window.__maestro.socket.reconnect()")

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
