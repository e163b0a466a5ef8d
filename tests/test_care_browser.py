"""見守り・セーフティネット in a real browser on a tablet: Debian Chromium through Playwright, offline.

A district member, on a tablet held upright (820 x 1180 CSS pixels, touch), opens their district's
page: the households of concern are on the map (added by ``care.js`` from the page's JSON, one
circle marker per located household), the layout has no sideways scrolling and its fields are
big enough to tap; they record a meeting (date, attendees, one household's watching role and next
review) and land on the meeting's page; the meeting is in the store as theirs. A household is
then recorded with its point tapped on the map. Screenshots go to /tmp/shots.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import api_fixtures as fx
import browser_fixtures as bx
import pytest
from test_care_support import gpkg_copy

from karte import snapshot
from karte.domain.access import Access, Level
from karte.domain.care import CareLayer
from karte.services import care

TABLET = {"width": 820, "height": 1180}
OWN = fx.OWN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    """(base URL, api) of a uvicorn over a copy of the demo with three households in S05."""
    folder = tmp_path_factory.mktemp("care-browser")
    store = gpkg_copy(demo, folder)
    member = Access("member", Level.DISTRICT_MEMBER, OWN)
    today = care.today_jst()
    people = [r for r in store.read_records("register", district=OWN) if r["consent"] == "consented"][:2]
    for i, person in enumerate(people):
        care.record_concern(store, member, OWN, {
            "household": f"世帯{i + 1}（{person['name']}さん）",
            "noticed_on": (today - dt.timedelta(days=9)).isoformat(),
            "noticed_by_role": "neighbourhood_staff", "urgency": ("high", "low")[i], "kinds": ["isolation"],
            "person_id": person["person_id"], "next_review": (today - dt.timedelta(days=1)).isoformat()},
            today=today)
    care.record_concern(store, member, OWN, {"household": "場所の分からない世帯",
                                             "noticed_on": today.isoformat(),
                                            "noticed_by_role": "other", "urgency": "medium",
                                            "kinds": ["other"]},
                        today=today)
    web = fx.make_api(store, folder, basemap="gsi_pale")
    with bx.serving(web.app) as base:
        yield base, web
    snapshot.clear()


@pytest.fixture(scope="module")
def browser():
    with bx.chromium() as b:
        yield b


@pytest.fixture
def tablet(browser, server):
    base, _ = server
    context = bx.local_context(browser, base, viewport=TABLET, has_touch=True, is_mobile=True,
                               device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.blocked, page.errors = context.blocked, errors
    yield page
    context.close()


def _shot(page, tmp_path: Path, name: str, *, full: bool = False) -> None:
    bx.shot(page, tmp_path, name, full=full)


def _login(page, base: str, role: str, target: str) -> None:
    bx.login(page, base, role, target)


def _markers(page) -> int:
    return page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count()


def test_a_district_member_records_a_meeting_on_a_tablet(tablet, server, tmp_path):
    base, web = server
    page = tablet
    _login(page, base, "member", f"/districts/{OWN}/care")
    page.wait_for_function("document.querySelectorAll('.leaflet-overlay-pane svg path').length >= 3")
    assert page.locator("#karte-care").count() == 1
    overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert "気になる世帯" in " ".join(overlays)
    located = sum(1 for c in care.read_care(web.store, web.access("member"), district=OWN).concerns
                  if c.get("x") is not None)
    households = page.locator(".leaflet-overlay-pane svg path.leaflet-interactive[fill='#6a1b9a']").count()
    assert households == located == 2  # both overdue, both on the map; the third has no point
    assert "確認日を過ぎた世帯" in page.locator(".chips").inner_text()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the page scrolls sideways on a tablet"
    map_box = page.locator(".mapbox").bounding_box()
    assert map_box["width"] > 760  # the map is full width above the lists
    _shot(page, tmp_path, "care_district_tablet")

    page.locator("#record-meeting").scroll_into_view_if_needed()
    page.fill("#held_on", care.today_jst().isoformat())
    page.fill("#place", "石江会館")
    page.fill("#attendees_neighbourhood_staff", "5")
    page.fill("#attendees_welfare_commissioner", "2")
    for field in page.locator("#meeting-form input[type=number], #meeting-form input[type=date]").all()[:6]:
        assert field.bounding_box()["height"] >= 44, "fields must be big enough to tap"
    box = page.locator("#meeting-form fieldset.household").first
    cid = box.get_attribute("data-household")
    box.locator("input[type=checkbox]").tap()
    assert "on" in (box.get_attribute("class") or "")
    assert box.locator("details").get_attribute("open") is not None  # the tick opened the details
    box.locator(f"[name='h-{cid}-watch_who']").fill("見守り 佐々木")
    box.locator(f"[name='h-{cid}-watch_freq']").select_option("weekly")
    box.locator(f"[name='h-{cid}-next_review']").fill((care.today_jst() + dt.timedelta(days=14)).isoformat())
    _shot(page, tmp_path, "care_meeting_form_tablet")
    page.locator("#meeting-form button[type=submit]").tap()
    page.wait_for_url("**/care/meeting?id=*")
    assert "会議を記録しました" in page.locator("p.notice.ok").first.inner_text()
    assert "見守り: 見守り 佐々木（週1回）" in page.content()
    _shot(page, tmp_path, "care_meeting_done_tablet")
    meetings = web.store.read_full(CareLayer.MEETINGS)
    assert list(meetings["updated_by"]) == ["member"] and list(meetings["participants"]) == [7]
    assert page.errors == []
    assert {urlsplit(u).hostname for u in page.blocked} <= {"cyberjapandata.gsi.go.jp"}


def test_a_household_is_placed_by_a_tap_on_the_map(tablet, server, tmp_path):
    base, web = server
    page = tablet
    _login(page, base, "member", f"/districts/{OWN}/care")
    page.wait_for_function("document.querySelectorAll('.leaflet-overlay-pane svg path').length >= 3")
    before = _markers(page)
    page.locator("#record-concern").scroll_into_view_if_needed()
    page.fill("#household", "地図で指定した世帯")
    page.locator("#concern-form input[name=kinds][value=hoarding]").check()
    page.locator("#pick").check()
    outline = page.locator(".leaflet-overlay-pane svg path").first.bounding_box()
    page.locator("#caremap").scroll_into_view_if_needed()
    outline = page.locator(".leaflet-overlay-pane svg path").first.bounding_box()
    page.mouse.click(outline["x"] + outline["width"] / 2, outline["y"] + outline["height"] / 2)
    assert page.input_value("#lat") and page.input_value("#lon")
    assert "位置を指定しました" in page.locator("#pick-note").inner_text()
    page.locator("#concern-form button[type=submit]").click()
    page.wait_for_url("**/care/case?id=*")
    assert "地図で指定した世帯" in page.locator("h1").inner_text()
    _shot(page, tmp_path, "care_case_tablet", full=True)
    page.goto(f"{base}/districts/{OWN}/care")
    page.wait_for_function("document.querySelectorAll('.leaflet-overlay-pane svg path').length"
                           f" >= {before + 1}")
    stored = [c for c in care.read_care(web.store, web.access("staff"), district=OWN).concerns
              if c["household"] == "地図で指定した世帯"]
    assert len(stored) == 1 and stored[0]["location_precision"] == "exact" and stored[0]["key_code"]
    assert page.errors == []
