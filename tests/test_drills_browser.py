"""A drill in a real browser on a phone-sized page: marks made with the network cut and restored
(Playwright's ``context.set_offline``) and a reply lost on the way back; every mark arrives once and
the dashboard's counts are the ones the marks give.

A real uvicorn serves the app over a private copy of the demo (the test writes); Debian Chromium,
headless, reaches only that server. Screenshots go to the test's tmp folder and to /tmp/shots.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import api_fixtures as fx
import browser_fixtures as bx
import pytest
from test_drills import OWN, gpkg_copy, users

from karte.domain.drills import MARKS, MarkStatus
from karte.services import disaster, drills

pytestmark = pytest.mark.slow
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("drill-browser")
    store = gpkg_copy(demo, folder / "store")
    web = fx.make_api(store, folder / "web", basemap="none")
    with bx.serving(web.app) as base:
        yield base, web


@pytest.fixture(scope="module")
def browser():
    with bx.chromium() as b:
        yield b


def _context(browser, base: str, **options):
    return bx.local_context(browser, base, **options)


def _login(page, base: str, role: str, target: str) -> None:
    page.goto(f"{base}/login?next={target}")
    page.fill("#username", role)
    page.fill("#password", fx.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target.split('?')[0]}*")


def _shot(page, folder, name: str):
    return bx.shot(page, folder, name, full=True)


def _queue(page) -> int:
    return page.evaluate("window.karteDrillQueue()")


def _until(page, expression: str, *, timeout: float = 15.0) -> None:
    """Wait until ``expression`` is true in the page, asked from here: the page's
    Content-Security-Policy forbids the eval that Playwright's ``wait_for_function`` needs."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.1)


def _tap(page, person: str, status: str) -> None:
    page.locator(f"#p-{person} .choices button[data-status={status}]").click()


def test_marks_made_offline_arrive_once_and_the_dashboard_counts_them(browser, server, tmp_path):
    base, web = server
    store = web.store
    drill = drills.start_drill(store, users()["coordinator"], [OWN], name="ブラウザの訓練",
                               started_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    roll = drills.roll(store, users()["member"], drill, OWN)
    people = [p["person_id"] for p in roll[:8]]
    context = _context(browser, base, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = f"/districts/{OWN}/drills/mark?drill={drill['drill_id']}"
    _login(page, base, "member", url)
    assert page.locator(".person").count() == len(roll)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the marking page scrolls sideways on a phone"
    button = page.locator(f"#p-{people[0]} .choices button").first.bounding_box()
    assert button["height"] >= 44  # a finger, not a mouse pointer

    taps: list[tuple[str, str]] = []

    def tap(person: str, status: str) -> None:
        _tap(page, person, status)
        taps.append((person, status))

    # online: sent at once
    tap(people[0], "safe")
    tap(people[1], "evacuated")
    _until(page, "window.karteDrillQueue() === 0", timeout=10)
    assert len(store.read(MARKS)) == 2

    # the network drops: the marks wait on the phone, the page says so
    context.set_offline(True)
    tap(people[2], "absent")
    tap(people[3], "needs_help")
    tap(people[4], "safe")
    tap(people[2], "safe")        # back later: found at home this time
    tap(people[5], "unconfirmed")
    _until(page, "document.getElementById('netstate').classList.contains('offline')")
    assert _queue(page) == 5 and "オフライン" in page.locator("#netstate").inner_text()
    assert page.locator(f"#p-{people[2]} .state.pending").count() == 1
    assert page.locator(f"#p-{people[2]} .state").inner_text().startswith("無事を確認")
    _shot(page, tmp_path, "drill_mark_offline_phone")
    time.sleep(1.5)
    assert len(store.read(MARKS)) == 2  # nothing reached the server

    # the network returns, but the first reply is lost on the way back: the phone sends again
    lost = {"n": 0}

    def lose_first_reply(route):
        if lost["n"] == 0:
            lost["n"] += 1
            route.fetch()   # the server gets and stores the marks ...
            route.abort()   # ... the phone never hears back
        else:
            route.continue_()

    page.route("**/api/drills/marks", lose_first_reply)
    context.set_offline(False)
    _until(page, "window.karteDrillQueue() === 0", timeout=30)
    assert lost["n"] == 1
    tap(people[6], "evacuated")  # and one more, online again
    _until(page, "window.karteDrillQueue() === 0", timeout=10)
    assert errors == [] and context.blocked == []
    assert "すべての記録を送信しました" in page.locator("#netstate").inner_text()

    stored = store.read(MARKS)
    assert len(stored) == len(taps) == 8  # every tap once: none lost, none twice
    assert stored["client_id"].is_unique and set(stored["marked_by"]) == {"member"}
    last = {}
    for person, status in taps:
        last[person] = status
    expected = Counter(last.values())
    confirmed = sum(n for s, n in expected.items() if MarkStatus(s).confirmed)

    # the dashboard shows what the marks say
    dash = context.new_page()
    dash.goto(f"{base}/districts/{OWN}/drills/dashboard?drill={drill['drill_id']}")
    _until(dash, "document.querySelectorAll('.leaflet-overlay-pane svg path').length > 3", timeout=15)
    counts = {li.get_attribute("data-key"): int(li.locator(".n").inner_text())
              for li in dash.locator("#counts li").all()}
    unmarked = len(roll) - len(last)
    assert {k: v for k, v in counts.items() if k != "unconfirmed"} == {
        s.value: expected.get(s.value, 0) for s in MarkStatus if s != MarkStatus.UNCONFIRMED}
    assert counts["unconfirmed"] == expected.get("unconfirmed", 0) + unmarked
    assert int(dash.locator("#confirmed").inner_text()) == confirmed
    assert int(dash.locator("#nr-count").inner_text()) == len(roll) - confirmed
    markers = dash.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count()
    located = sum(1 for p in roll if p.get("x") is not None)
    assert markers == located + 1  # one circle per located person, and the district outline
    _shot(dash, tmp_path, "drill_dashboard_phone")

    # a mark made now reaches the dashboard at its next poll
    tap(people[7], "safe")
    _until(page, "window.karteDrillQueue() === 0", timeout=10)
    dash.evaluate("window.karteDashboardPoll()")
    _until(dash, f"document.getElementById('confirmed').textContent === '{confirmed + 1}'", timeout=10)
    assert errors == []
    context.close()


def test_the_pages_on_a_desktop_and_a_tablet(browser, server, tmp_path):
    base, web = server
    drill = drills.start_drill(web.store, users()["coordinator"], [OWN], name="画面の確認")
    person = drills.roll(web.store, users()["coordinator"], drill, OWN)[0]["person_id"]
    for name, viewport in (("desktop", bx.DESKTOP), ("tablet", bx.TABLET)):
        context = _context(browser, base, viewport=viewport)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        _login(page, base, "coordinator", f"/districts/{OWN}/drills/dashboard?drill={drill['drill_id']}")
        _until(page, "document.querySelectorAll('.leaflet-overlay-pane svg path').length > 3", timeout=15)
        grid = page.locator(".drill-grid > div").all()
        beside = grid[0].bounding_box()["x"] < grid[1].bounding_box()["x"]
        assert beside == (name == "desktop")  # the map beside the list on a desktop, above it on a tablet
        _shot(page, tmp_path, f"drill_dashboard_{name}")
        pages = {"drill_district": f"/districts/{OWN}/drills", "drills": "/drills",
                 "drill_mark": f"/districts/{OWN}/drills/mark?drill={drill['drill_id']}",
                 "evacplan": f"/districts/{OWN}/evacuation-plan?person={person}"}
        for shot, url in pages.items():
            page.goto(f"{base}{url}")
            if shot == "drill_district":
                assert "優先して作る方" in page.content()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], (url, name, width)  # nothing runs off the side
            _shot(page, tmp_path, f"{shot}_{name}")
        assert errors == [] and context.blocked == []
        context.close()


def test_the_disaster_banner_on_a_tablet(browser, server, tmp_path):
    """The banner as a district member of the district sees it (on this topic's pages: every
    other page once ``api.deps`` sets it, see docs/drills.md)."""
    base, web = server
    disaster.start(web.store, users()["staff"], [OWN], hours=2, reason="大雨特別警報")
    try:
        context = _context(browser, base, viewport=bx.TABLET)
        page = context.new_page()
        _login(page, base, "member", f"/districts/{OWN}/drills")
        banner = page.locator("#karte-disaster-banner")
        assert banner.is_visible() and "あなたの地区も対象" in banner.inner_text()
        box = banner.bounding_box()
        assert box["y"] < 200 and box["width"] > 600  # at the top, across the page
        _shot(page, tmp_path, "disaster_banner_tablet")
        context.close()
    finally:
        disaster.stop(web.store, users()["staff"])
