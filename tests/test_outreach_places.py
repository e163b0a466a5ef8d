"""Issue 15 items 2 and 3 on the web: the outreach ranking by rate and by count with consistent
headings; a ranked place opened by a coordinator (people, map, visits) and a visit recorded through
its form on both stores (the row the coordinator's, in the access log, shown on the place and as
the ranking's last visit); who may not; and an empty suggestion list that says why and what would
help.
"""

from __future__ import annotations

import datetime as dt
import re

import api_fixtures as fx
import pandas as pd
import pytest
from api_fixtures import OWN
from test_care_support import gpkg_copy, postgis_demo

from karte import snapshot
from karte.domain.access import Access, Level
from karte.domain.outreach import VISITS
from karte.services import care, outreach

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

HEADING = re.compile(r"<h2>訪問の優先順位（(.+?)の順、上位(\d+)／(\d+)町丁・字）</h2>")
CITY_ROW = re.compile(r'<tr><td class="n">(\d+)</td><td>([^<]+)<br>')
DISTRICT_ROW = re.compile(r'<tr><td class="n">(\d+)</td><td class="n">(\d+)</td><td>([^<]+)<br>')


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def web(request, demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"outreach-{request.param}")
    if request.param == "gpkg":
        store = gpkg_copy(demo, folder)
    else:
        store = postgis_demo(demo, request.getfixturevalue("pg_admin_url"),
                             request.getfixturevalue("pg_app_url"))
    api = fx.make_api(store, folder, basemap="none")
    api.kind = request.param
    yield api
    if request.param == "postgis":
        store.close()
    snapshot.clear()


@pytest.fixture(scope="module")
def gpkg_web(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("outreach-gpkg-only")
    api = fx.make_api(gpkg_copy(demo, folder), folder, basemap="none")
    yield api
    snapshot.clear()


def _top_place(web, district: str = OWN) -> pd.Series:
    ranking = outreach.outreach_ranking(web.store, web.access("coordinator"))
    return ranking[(ranking["district_code"] == district) & ranking["rank"].notna()].iloc[0]


# --- the ranking page -----------------------------------------------------------------------------

@pytest.mark.parametrize("by", ["rate", "count"])
def test_city_heading_rows_and_ranks_agree(gpkg_web, by):
    store, coordinator = gpkg_web.store, gpkg_web.access("coordinator")
    html = gpkg_web.browser("coordinator").get("/outreach", params={"by": by}).text
    order, shown, total = HEADING.search(html).groups()
    shown, total = int(shown), int(total)
    ranking = outreach.outreach_ranking(store, coordinator, by=by)
    ranked = ranking[ranking["rank"].notna()]
    assert order == outreach.ORDER_JA[by]
    assert shown <= total == len(ranked)
    rows = CITY_ROW.findall(html)
    assert len(rows) == shown == min(outreach.RANKED_ROWS, total)
    # the list is the ranking's order; no rank beyond the number of places ranked
    assert [(int(r), n) for r, n in rows] == list(zip(ranked["rank"].astype(int).head(shown),
                                                     ranked["name"].head(shown), strict=True))
    assert int(ranked["rank"].max()) <= total
    # places with nothing to visit for are neither counted nor ranked
    assert ranking.loc[ranking["rank"].isna(), "score"].eq(0).all()


def test_district_heading_never_shows_more_rows_than_places(gpkg_web):
    store, coordinator = gpkg_web.store, gpkg_web.access("coordinator")
    ranking = outreach.outreach_ranking(store, coordinator)
    for code in sorted(ranking["district_code"].dropna().unique())[:6]:
        html = gpkg_web.browser("coordinator").get("/outreach", params={"district": code}).text
        _, shown, total = HEADING.search(html).groups()
        mine = ranking[(ranking["district_code"] == code) & ranking["rank"].notna()]
        rows = DISTRICT_ROW.findall(html)
        assert int(shown) == len(rows) <= int(total) == len(mine), code
        # numbered 1… within the district, beside the city's rank
        assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)
        assert (int(rows[0][0]) if rows else 1) == 1
        assert [int(r[1]) for r in rows] == mine["rank"].astype(int).head(len(rows)).tolist()


def test_rate_and_count_orders_differ_and_both_figures_are_shown(gpkg_web):
    store, coordinator = gpkg_web.store, gpkg_web.access("coordinator")
    by_rate = outreach.outreach_ranking(store, coordinator, by="rate")
    by_count = outreach.outreach_ranking(store, coordinator, by="count")
    assert by_rate["key_code"].head(10).tolist() != by_count["key_code"].head(10).tolist()
    # the count order is the old one: people, the largest place first
    assert by_count["uncovered_elderly"].iloc[0] >= by_rate["uncovered_elderly"].iloc[0]
    browser = gpkg_web.browser("coordinator")
    for by, ranking in (("rate", by_rate), ("count", by_count)):
        html = browser.get("/outreach", params={"by": by}).text
        first = ranking.iloc[0]
        assert CITY_ROW.findall(html)[0] == ("1", first["name"])
        row = re.search(rf"<td>{re.escape(first['name'])}<br>.*?</tr>", html, re.S).group(0)
        assert f"{first['score_rate']:.1f}" in row and f"{first['score_count']:.1f}" in row
        assert f"{int(first['rank_rate'])}位" in row and f"{int(first['rank_count'])}位" in row
    # the chooser is a form applied with a button (no navigation on change)
    html = browser.get("/outreach").text
    chooser = re.search(r'<form method="get" action="/outreach">.*?</form>', html, re.S).group(0)
    assert 'name="by"' in chooser and '<button type="submit"' in chooser and "onchange" not in chooser
    assert browser.get("/outreach", params={"by": "size"}).status_code == 422


# --- a place and its visits -----------------------------------------------------------------------

def test_a_coordinator_opens_a_place_and_records_a_visit(web):
    store = web.store
    top = _top_place(web)
    key = top["key_code"]
    browser = web.browser("coordinator")
    page = browser.get(f"/outreach/places/{key}")
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert top["name"] in html and "訪問を記録する" in html and "まだ訪問の記録はありません" in html
    # the people there the coordinator may see, with their gaps
    coordinator = web.access("coordinator")
    people = [p for p in store.read_records("register", district=OWN)
              if p.get("key_code") == key and p["consent"] in ("consented", "ordinance")]
    hidden = [p for p in store.read_records("register", district=OWN)
              if p.get("key_code") == key and p["consent"] not in ("consented", "ordinance")]
    for p in people:
        assert p["name"] in html
    for p in hidden:  # (same names exist: only names no visible person has)
        if p["name"] not in {q["name"] for q in people}:
            assert p["name"] not in html
    assert f"要支援者（{len(people)}人）" in html
    assert 'id="placemap"' in html and "leaflet" in html.lower()

    day = (care.today_jst() - dt.timedelta(days=3)).isoformat()
    before = len(store.audit_log())
    r = browser.post(f"/outreach/places/{key}/visits", data={
        "csrf": fx.csrf_of(html), "visited_on": day, "result": "absent", "next_step": "来週また訪ねる"},
        follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    assert r.headers["location"] == f"/outreach/places/{key}?done=visit"

    rows = outreach.visits(store, coordinator, key_code=key)
    assert len(rows) == 1
    row = rows[0]
    assert (row["key_code"], row["district_code"], row["visited_on"], row["result"], row["next_step"]) == (
        key, OWN, day, "absent", "来週また訪ねる")
    assert row["recorded_by"] == "coordinator" and row["visit_id"] == "OV000001"
    assert not ({"name", "person_id", "household"} & set(row))  # no names on the row
    log = store.audit_log().iloc[before:]
    writes = log[log["action"] != "read"]
    assert writes[["actor", "level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["coordinator", "coordinator", "web:outreach_visit", "append", VISITS, OWN, 1]]

    shown = browser.get(r.headers["location"]).text
    assert "訪問を記録しました" in shown and "不在だった" in shown and "来週また訪ねる" in shown
    assert day in shown
    # the ranking's last visit is this place's visit
    ranking_page = browser.get("/outreach", params={"district": OWN}).text
    place_row = re.search(rf"<td>{re.escape(top['name'])}<br>.*?</tr>", ranking_page, re.S).group(0)
    assert "訪問 R" in place_row and day in place_row
    assert f'href="/outreach/places/{key}"' in place_row


def test_a_visit_form_with_problems_is_refused_whole_and_says_which_field(web):
    store = web.store
    key = _top_place(web)["key_code"]
    browser = web.browser("coordinator")
    token = fx.csrf_of(browser.get(f"/outreach/places/{key}").text)
    count = len(outreach.visits(store, web.access("coordinator"), key_code=key))
    future = (care.today_jst() + dt.timedelta(days=2)).isoformat()
    r = browser.post(f"/outreach/places/{key}/visits", data={
        "csrf": token, "visited_on": future, "result": "somewhere", "next_step": "残す文字"})
    assert r.status_code == 400
    assert "訪問日" in r.text and "結果" in r.text and "まだ保存していません" in r.text
    assert 'value="残す文字"' in r.text  # what was typed is kept
    # no CSRF token: refused before anything
    r = browser.post(f"/outreach/places/{key}/visits", data={"visited_on": care.today_jst().isoformat(),
                                                             "result": "met"})
    assert r.status_code == 403
    assert len(outreach.visits(store, web.access("coordinator"), key_code=key)) == count
    assert web.browser("coordinator").get("/outreach/places/NOPE000").status_code == 404


@pytest.mark.parametrize("role", ["member", "public"])
def test_others_may_not_open_a_place_or_record_a_visit(web, role):
    key = _top_place(web)["key_code"]
    browser = web.browser(role)
    assert browser.get(f"/outreach/places/{key}").status_code == 403
    token = fx.csrf_of(browser.get("/").text) if 'name="csrf"' in browser.get("/").text else "x"
    r = browser.post(f"/outreach/places/{key}/visits", data={
        "csrf": token, "visited_on": care.today_jst().isoformat(), "result": "met"},
        follow_redirects=False)
    assert r.status_code == 403
    with pytest.raises(Exception, match="コーディネーター"):
        outreach.record_visit(web.store, web.access(role), key, {"visited_on": ["2026-01-01"],
                                                                 "result": ["met"]})


def test_anonymous_visitors_are_sent_to_the_login(web):
    key = _top_place(web)["key_code"]
    r = web.browser("anonymous").get(f"/outreach/places/{key}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


# --- why no suggestion ----------------------------------------------------------------------------

def test_an_empty_suggestion_list_says_why_and_what_would_help(demo, tmp_path):
    """Every cooperator at capacity (capacity = what they carry now): no suggestion anywhere, and
    the page says so, why (at capacity), and what would help."""
    store = gpkg_copy(demo, tmp_path)
    staff = Access("staff", Level.CITY_STAFF)
    coops = store.read("cooperators", access=staff)
    snap = snapshot.current(store)
    load = snap.supporter_load["load"]
    coops["capacity"] = coops["cooperator_id"].astype(str).map(load).fillna(0).astype(int)
    store.write({"cooperators": coops}, access=staff)
    snapshot.clear()
    api = fx.make_api(store, tmp_path / "web", basemap="none")
    coordinator = api.access("coordinator")
    assert outreach.suggestions(store, coordinator, district=OWN).empty
    reason = outreach.empty_reason(store, coordinator, district=OWN)
    text = " ".join(reason["why"] + reason["help"])
    assert "受け持ちがいっぱい" in text and "受け持ちの上限を見直す" in text
    html = api.browser("coordinator").get("/outreach", params={"district": OWN}).text
    box = re.search(r'id="no-suggestions".*?</div>', html, re.S).group(0)
    assert "未決定の候補はありません" in box and "受け持ちがいっぱい" in box and "できること" in box
    assert "受け持ちの上限を見直す" in box
    # a district's people and cooperators only as counts and place names, never a person's name
    for person in store.read_records("register", district=OWN):
        assert person["name"] not in box


def test_empty_reason_names_neighbours_with_room_and_places_to_recruit(demo, tmp_path):
    """Only OWN's cooperators are full: the help names a neighbouring district whose willing
    cooperators have room, and the places where the people without a candidate live."""
    store = gpkg_copy(demo, tmp_path)
    staff = Access("staff", Level.CITY_STAFF)
    coops = store.read("cooperators", access=staff)
    load = snapshot.current(store).supporter_load["load"]
    mine = coops["district_code"] == OWN
    coops.loc[mine, "capacity"] = coops.loc[mine, "cooperator_id"].astype(str).map(load).fillna(0).astype(int)
    store.write({"cooperators": coops}, access=staff)
    snapshot.clear()
    reason = outreach.empty_reason(store, Access("coordinator", Level.COORDINATOR), district=OWN)
    helps = "\n".join(reason["help"])
    neighbours = snapshot.current(store).districts
    shape = neighbours.loc[neighbours["district_code"] == OWN].geometry.union_all().buffer(1.0)
    touching = set(neighbours.loc[neighbours.intersects(shape), "district_code"]) - {OWN}
    assert "隣の地区の避難支援者に頼む" in helps
    assert any(f"（{code}）" in helps for code in touching)
    assert "避難支援者を募る" in helps
