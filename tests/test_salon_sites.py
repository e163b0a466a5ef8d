"""Issue 15 item 8: the top candidate venues for a new salon, with the walking distance of the
season in force, appear on the coordinator's outreach page of a district (they were only in the
notebook)."""

from __future__ import annotations

import re

import api_fixtures as fx
import pytest
from test_care_support import gpkg_copy

from gis.params import AnalysisParams
from karte import snapshot
from karte.services import outreach

pytestmark = pytest.mark.slow

DISTRICT = "S19"


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("salon-sites")
    api = fx.make_api(gpkg_copy(demo, folder), folder, basemap="none")
    yield api
    snapshot.clear()


def test_the_districts_outreach_page_proposes_venues_for_a_new_salon(web):
    page = web.browser("coordinator").get(f"/outreach?district={DISTRICT}")
    assert page.status_code == 200
    html = page.text
    assert "新しいサロンの候補地" in html
    found = outreach.salon_sites(web.store, web.access("coordinator"), district=DISTRICT)
    assert found["sites"], "S19 has elderly outside every salon's reach and venues near them"
    gains = [s["gain"] for s in found["sites"]]
    # each venue adds people, the first the most (the set is ordered greedily), and they add up
    assert all(g > 0 for g in gains) and gains == sorted(gains, reverse=True)
    assert found["sites"][-1]["cumulative"] == pytest.approx(sum(gains), abs=len(gains))
    assert found["before"] < found["after"] <= 1
    for site in found["sites"]:
        assert site["name"] in html
    # the page states the season's walking distance it used
    assert f"サロンまで {found['walk_m']:,.0f} m" in html
    assert re.search(r"今 [\d.]+% → \d+か所を加えると [\d.]+%", html)


def test_the_venues_follow_the_season(web, monkeypatch):
    coordinator = web.access("coordinator")
    monkeypatch.setenv("KARTE_WINTER", "off")
    summer = outreach.salon_sites(web.store, coordinator, district=DISTRICT)
    monkeypatch.setenv("KARTE_WINTER", "on")
    winter = outreach.salon_sites(web.store, coordinator, district=DISTRICT)
    assert summer["walk_m"] == AnalysisParams().salon_walk_m
    assert winter["walk_m"] == AnalysisParams(winter=True).salon_walk_m < summer["walk_m"]
    assert "冬期" in winter["season"] and "通常期" in summer["season"]


def test_the_city_view_and_other_levels_get_no_venues(web):
    assert "新しいサロンの候補地" not in web.browser("coordinator").get("/outreach").text
    assert web.browser("member").get(f"/outreach?district={DISTRICT}").status_code in (303, 403)
