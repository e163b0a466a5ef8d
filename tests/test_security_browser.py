"""The Content-Security-Policy in a real browser: every page loads without a violation, and the
scripts the pages need still run (the maps draw, the personal layers are added).

Headless Debian Chromium through Playwright (as ``tests/test_web_browser.py``), against a real
uvicorn on a free port over the demo store; every request not to that server is aborted. A
violation is caught twice: by a ``securitypolicyviolation`` listener the browser installs before
any page script runs, and by the console message Chromium writes for it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import api_fixtures as fx
import pytest
from api_fixtures import OWN

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sample || '')));
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    import uvicorn

    web = fx.make_api(fx.demo_store(demo), tmp_path_factory.mktemp("csp"), basemap="gsi_pale")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", web
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is not installed (/usr/bin/chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _context(browser, base):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ja-JP")
    context.add_init_script(LISTEN)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  else route.abort())
    return context


def _visit(page, url: str, console: list[str]) -> list[str]:
    """Load ``url`` fully; the violations it raised (listener and console)."""
    before = len(console)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # late scripts (the personal overlay) run too
    found = page.evaluate("window.__csp || []")
    return [*found, *console[before:]]


def _login(page, base: str, role: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", role)
    page.fill("#password", fx.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def _menu(page) -> list[str]:
    hrefs = page.eval_on_selector_all("header.site nav a", "els => els.map(e => e.getAttribute('href'))")
    return sorted({h for h in hrefs if h and h.startswith("/") and not h.startswith("/api")})


@pytest.mark.parametrize("role", ["anonymous", "member", "coordinator", "staff"])
def test_no_page_raises_a_csp_violation(browser, server, role):
    base, _ = server
    context = _context(browser, base)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if role != "anonymous":
        _login(page, base, role)
    urls = ["/", "/?measure=gap_rate", "/?measure=ageing", f"/districts/{OWN}", "/districts/S01",
            "/login", "/api/docs", "/districts/S99", "/no-such-page"]
    page.goto(base + "/")
    urls += _menu(page)
    if role in ("coordinator", "staff"):
        urls.append("/outreach")
    violations = {}
    for url in dict.fromkeys(urls):
        found = _visit(page, base + url, console)
        if found:
            violations[url] = found
    assert not violations, violations
    assert not errors, errors
    # the nonce'd scripts ran: the district map drew its layers
    page.goto(f"{base}/districts/{OWN}")
    page.wait_for_function("document.querySelectorAll('.leaflet-overlay-pane svg path').length > 3",
                           timeout=15_000)
    if role in ("member", "coordinator", "staff"):  # karte-personal.js added the personal points
        page.wait_for_function("document.querySelectorAll('.leaflet-overlay-pane svg path').length > 20",
                               timeout=15_000)
    context.close()


def test_the_policy_blocks_a_script_without_the_nonce(browser, server):
    """The check above is not vacuous: a script the page did not vouch for is refused, and the
    violation is seen by both detectors."""
    base, _ = server
    context = _context(browser, base)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/login")
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran === true") is False
    found = page.evaluate("window.__csp")
    assert any(re.match(r"script-src", v) for v in found), found
    assert console, "Chromium reports the violation on the console"
    context.close()
