"""Real-browser helpers shared by the browser tests: a uvicorn serving an app on a free localhost
port, headless Debian Chromium through Playwright, a context that may reach only that server,
the login form, screenshots.

Only the local server is reachable: every other request is aborted and recorded (basemap tiles
may be asked for and fail, as on a machine without internet).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import api_fixtures as fx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
#: Viewport sizes the pages are looked at: a desktop, a tablet held upright, a 320 px phone.
DESKTOP = {"width": 1280, "height": 860}
TABLET = {"width": 768, "height": 1024}
NARROW = {"width": 320, "height": 640}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a loaded 2-core machine: the app's imports and snapshot
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[object]:
    """Headless Debian Chromium (a Playwright ``Browser``), with ``extra_args`` after :data:`ARGS`."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is not installed (/usr/bin/chromium); scripts/setup.sh installs it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *extra_args],
                                    timeout=120_000)
        try:
            yield browser
        finally:
            browser.close()


def local_context(browser, base: str, *, viewport: dict | None = None, **options):
    """A fresh context (no cookies, Japanese locale) that can reach only ``base``; the aborted
    URLs are in ``context.blocked``."""
    context = browser.new_context(viewport=viewport or DESKTOP, locale="ja-JP", **options)
    blocked: list[str] = []

    def only_local(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    context.blocked = blocked
    return context


def login(page, base: str, role: str, target: str = "/") -> None:
    """Log in through the form as the :mod:`api_fixtures` user ``role``; lands on ``target``."""
    page.goto(f"{base}/login?next={target}")
    page.fill("#username", role)
    page.fill("#password", fx.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}")


def shot(page, folder: Path, name: str, *, full: bool = False) -> Path:
    """A screenshot in ``folder`` and a copy in /tmp/shots (to look at)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path
