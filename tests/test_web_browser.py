"""The pages in a real browser: headless Debian Chromium through Playwright, offline.

A real uvicorn serves the app on a free localhost port over the demo store. The browser may reach
only that server: every other request is aborted and recorded (only basemap tiles may be asked
for, and they fail, as on a machine without internet; the maps must draw anyway). Screenshots go
to the test's tmp folder and to /tmp/shots.

The district map is drawn once per build without personal data; an authorised viewer's
support-needers and cooperators come as JSON in the page and ``karte-personal.js`` adds them to
the map and its layer control: the test counts their circle markers.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import api_fixtures as fx
import browser_fixtures as bx
import pytest
from api_fixtures import OWN

from karte.render.district_map import LAYER_NAMES

TILE_HOST = "cyberjapandata.gsi.go.jp"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    """(base URL, :class:`api_fixtures.Api`) of a uvicorn serving the demo with the GSI basemap
    configured; its users are those of :mod:`api_fixtures`."""
    folder = tmp_path_factory.mktemp("browser")  # a copy: logging in writes a session into the store
    web = fx.make_api(fx.copy_demo(demo, folder / "store"), folder, basemap="gsi_pale")
    with bx.serving(web.app) as base:
        yield base, web


@pytest.fixture(scope="module")
def browser():
    with bx.chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    """A fresh context (no cookies) that can reach only the local server."""
    base, _ = server
    context = bx.local_context(browser, base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.blocked, page.errors = context.blocked, errors
    yield page
    context.close()


def _shot(page, tmp_path: Path, name: str) -> Path:
    return bx.shot(page, tmp_path, name)


def _paths(page) -> int:
    return page.locator(".leaflet-overlay-pane svg path").count()


def _wait_drawn(page, at_least: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.leaflet-overlay-pane svg path').length >= {at_least}",
        timeout=15_000)


def _login(page, base: str, role: str, target: str) -> None:
    bx.login(page, base, role, target)


def _overlays(page) -> list[str]:
    return [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]


def _only_tiles_blocked(page) -> None:
    hosts = {urlsplit(u).hostname for u in page.blocked}
    assert hosts <= {TILE_HOST}, f"the page asked for other hosts: {sorted(hosts)}"


def test_city_page_draws_districts_and_opens_one(page, server, demo, tmp_path):
    base, _ = server
    n = len(demo[0].kartes)
    page.goto(f"{base}/", wait_until="load")
    _wait_drawn(page, n)
    assert page.locator(".leaflet-marker-pane .karte-label").count() == n  # district names
    salons_and_districts = _paths(page)
    assert salons_and_districts > n
    assert "全体図" in page.title() and page.locator("select#measure").count() == 1
    assert page.locator(".karte-legend-title").inner_text().startswith("サロン徒歩圏カバー率")
    assert page.errors == []
    _shot(page, tmp_path, "city")
    _only_tiles_blocked(page)
    assert any(TILE_HOST in u for u in page.blocked), "the GSI basemap was not even asked for"

    # the layer control hides the salons
    page.get_by_role("checkbox", name="サロン", exact=True).uncheck()
    assert _paths(page) < salons_and_districts

    # another measure, then a click on a district opens its page
    page.select_option("select#measure", "gap_rate")
    page.wait_for_timeout(200)
    assert "measure=" not in page.url  # choosing is not yet going (no change of context on input)
    page.get_by_role("button", name="表示").click()
    page.wait_for_url("**/?measure=gap_rate")
    _wait_drawn(page, n)
    assert "避難支援の空白：支援者が決まっていない" in page.locator(".karte-legend").inner_text()
    first = page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").first
    box = first.bounding_box()
    assert box is not None
    # on the path itself: the centre of its box may fall outside a concave district, on a label
    first.dispatch_event("click")
    page.wait_for_url("**/districts/*", timeout=30_000)
    assert "地区カルテ" in page.locator("h1").inner_text()


def test_district_page_layers_toggle_public(page, server, tmp_path):
    base, _ = server
    page.goto(f"{base}/districts/{OWN}", wait_until="load")
    _wait_drawn(page, 3)
    names = _overlays(page)
    assert "地区の境界" in names and "サロン" in names
    assert not any("要支援者" in t or "共助協力者" in t for t in names)  # not for the public
    # no personal data in the page, and the script that would add it is not even loaded
    assert page.locator("#karte-personal").count() == 0
    assert page.locator("script[src='/static/karte-personal.js']").count() == 0
    before = _paths(page)
    page.get_by_role("checkbox", name="地区の境界", exact=True).uncheck()
    assert _paths(page) == before - 1
    assert page.locator("table").count() >= 4 and "基礎情報" in page.content()
    assert page.errors == []
    _only_tiles_blocked(page)
    _shot(page, tmp_path, "district_public")

    # a tablet held upright: the map above the tables, full width, still drawn
    page.set_viewport_size({"width": 768, "height": 1024})
    page.reload(wait_until="load")
    _wait_drawn(page, 3)
    map_box = page.locator(".mapbox").bounding_box()
    side_box = page.locator(".side").bounding_box()
    assert map_box["width"] > 700 and side_box["y"] >= map_box["y"] + map_box["height"]
    _shot(page, tmp_path, "district_tablet")


def test_district_page_for_a_coordinator_shows_support_needers_and_cooperators(page, server, tmp_path):
    """The page adds the register and the cooperators the coordinator may see: one circle marker
    per located row, each layer in the layer control; the public map plus these is the page."""
    from karte.services.layers import layer_view

    base, web = server
    page.goto(f"{base}/districts/{OWN}", wait_until="load")  # the public page, for comparison
    _wait_drawn(page, 3)
    public_paths = _paths(page)
    located = {}
    for layer in ("register", "cooperators"):
        rows = layer_view(web.store, layer, web.access("coordinator"), district=OWN)
        located[layer] = int((rows.geometry.notna() & ~rows.geometry.is_empty).sum())
        assert located[layer] > 0

    _login(page, base, "coordinator", f"/districts/{OWN}")
    _wait_drawn(page, public_paths + located["register"] + located["cooperators"])
    assert page.locator("#karte-personal").count() == 1
    names = _overlays(page)
    assert LAYER_NAMES["register"] in names and LAYER_NAMES["cooperators"] in names
    before = _paths(page)
    assert before == public_paths + located["register"] + located["cooperators"]
    assert "共助協力者" in page.locator(".karte-legend").inner_text()  # the legend grew too
    _shot(page, tmp_path, "district_coordinator")
    for layer in ("register", "cooperators"):
        box = page.get_by_role("checkbox", name=LAYER_NAMES[layer], exact=True)
        assert box.count() == 1 and box.is_checked()
        box.uncheck()
        assert _paths(page) == before - located[layer], layer
        box.check()
        assert _paths(page) == before, layer
    # a support-needer's popup: plain text lines, the name first
    marker = page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").last
    marker.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    assert popup.locator("b").count() == 1 and popup.locator("script, img, a").count() == 0
    assert page.errors == []
    _only_tiles_blocked(page)


def test_outreach_page_for_a_coordinator(page, server, tmp_path):
    base, _ = server
    page.goto(f"{base}/outreach")
    assert "/login" in page.url  # anonymous: to the login page first
    page.fill("#username", "coordinator")
    page.fill("#password", fx.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/outreach")
    _wait_drawn(page, 20)
    assert page.locator(".karte-rank-badge").count() == 20
    assert page.locator("text=訪問の優先順位").count() == 1
    assert page.errors == []
    _only_tiles_blocked(page)
    _shot(page, tmp_path, "outreach")


# the map's own bounds (map.karteFit) on screen, and the boxes of the open layer control and legend,
# all relative to the map's container
_FIT_AND_CONTROLS = """() => {
  const map = window.karteMaps[0], box = map.getContainer().getBoundingClientRect();
  const a = map.latLngToContainerPoint(map.karteFit.getNorthWest());
  const b = map.latLngToContainerPoint(map.karteFit.getSouthEast());
  const rel = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return [r.left - box.left, r.top - box.top, r.right - box.left, r.bottom - box.top]; };
  return {fit: [a.x, a.y, b.x, b.y], size: [box.width, box.height],
          controls: [rel(map.getContainer().querySelector(".leaflet-control-layers-expanded")),
                     rel(map.getContainer().parentNode.querySelector("details.karte-legend[open]"))]};
}"""


@pytest.mark.parametrize("code", ["S01", "S19"])  # the longest district; one the layer box covered
def test_district_map_fits_the_district_clear_of_legend_and_layers(page, server, code):
    base, _ = server
    for width, height in ((1366, 900), (820, 1180)):  # desktop, tablet
        seen = _fitted(page, f"{base}/districts/{code}", width, height)
        assert all(control is not None for control in seen["controls"]), (width, seen)  # both open
        _assert_clear(seen, (width, code))
    assert page.errors == []


def test_city_map_fits_the_city_clear_of_legend_and_layers(page, server):
    """The city is fitted beside the open legend and layer control on a desktop and a tablet; on a
    narrower map they would leave too little room (the legend is a wide colour ramp): they start
    folded, as on a phone, and the city keeps its whole map; 凡例 opens the legend."""
    base, _ = server
    for width, height, both_open in ((1366, 900, True), (1280, 720, True), (820, 1180, True),
                                     (640, 900, False)):
        seen = _fitted(page, f"{base}/", width, height)
        assert [c is not None for c in seen["controls"]] == [both_open] * 2, (width, seen)
        _assert_clear(seen, width)
    page.locator("details.karte-legend summary").click()  # 凡例 opens it on the tablet
    assert page.locator("details.karte-legend[open]").count() == 1
    assert page.errors == []


def _fitted(page, url: str, width: int, height: int) -> dict:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url, wait_until="load")
    _wait_drawn(page, 3)
    page.wait_for_timeout(300)  # the second fit runs once the controls are laid out
    return page.evaluate(_FIT_AND_CONTROLS)


def _assert_clear(seen: dict, where) -> None:
    """The fitted bounds are all on screen, not shrunk to a stamp, and apart from every open control."""
    x0, y0, x1, y1 = seen["fit"]
    w, h = seen["size"]
    assert min(x0, y0) >= -1 and x1 <= w + 1 and y1 <= h + 1, (where, seen)  # all of it shown
    assert x1 - x0 > w / 4 or y1 - y0 > h / 4, (where, seen)  # and not shrunk to a stamp
    for control in seen["controls"]:
        if control is None:
            continue
        cx0, cy0, cx1, cy1 = control
        assert cx1 <= x0 or x1 <= cx0 or cy1 <= y0 or y1 <= cy0, (where, seen)
