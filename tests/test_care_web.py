"""見守り・セーフティネット on the web: every new route and output for every role, on both stores;
the forms (CSRF, problems shown with what was typed kept, conflicts told); a meeting recorded
through the web form in ``karte meetings --json``, in its fiscal year's counts and, by a confirmed
supporter, in the district page's evacuation gaps; the outreach page's open concerns and last
visit per ranked place; and no unconsented person's id below city staff (issue 16 item 9).

Role x route matrix: no personal row (household names, attendees' names, register names) reaches
the public or another district's members through any route of this topic (the routes are taken
from the app, so a new one cannot escape), and every read of a personal page or download is in the
access log with the real user and the route.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN, ROLES
from fastapi.testclient import TestClient
from test_care_support import (
    STAFF,
    consented,
    cooperators,
    empty_care_tables,
    gpkg_copy,
    meeting_form,
    postgis_demo,
    unconsented,
)
from typer.testing import CliRunner

from karte import snapshot
from karte.cli import app as cli_app
from karte.domain.access import SUPPRESSED, Access, Level
from karte.domain.care import CareLayer
from karte.domain.layers import Layer, split_list
from karte.services import care, outreach

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

#: Words only authorised viewers of each district may see (seeded below).
SECRET = {OWN: ("角の山田さん宅", "出席 石江花子", "見守り役 佐々木"),
          OTHER: ("油川の工藤さん宅", "出席 油川次郎", "見守り役 成田")}
#: Roles that may see the rows of each district.
SEES = {(role, code): role in ("coordinator", "staff") or (role == "member" and code == OWN)
        for role in ROLES for code in (OWN, OTHER)}


def absolute_urls(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>)]+", text))


def _today() -> dt.date:
    return care.today_jst()


def _seed(store) -> dict:
    """A case and a meeting in each district (the member's own and another), as the users would."""
    ids = {}
    day = (_today() - dt.timedelta(days=5)).isoformat()
    for code, (household, attendee, watcher) in SECRET.items():
        who = (Access("member", Level.DISTRICT_MEMBER, OWN) if code == OWN else Access("staff",
                                                                                       Level.CITY_STAFF))
        case = care.record_concern(store, who, code, {
            "household": household, "noticed_on": day, "noticed_by_role": "welfare_commissioner",
            "urgency": "high",
            "kinds": ["isolation"]}, today=_today())
        result = care.record_meeting(store, who, code, meeting_form(
            {case["concern_id"]: {"watch_who": watcher}}, held_on=day, attendee_names=attendee),
            today=_today())
        ids[code] = {"case": case["concern_id"], "meeting": result.meeting["meeting_id"]}
    return ids


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def web(request, demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"care-web-{request.param}")
    if request.param == "gpkg":
        store = gpkg_copy(demo, folder)
    else:
        store = postgis_demo(demo, request.getfixturevalue("pg_admin_url"),
                             request.getfixturevalue("pg_app_url"))
    api = fx.make_api(store, folder, basemap="none")
    api.ids = _seed(store)
    yield api
    if request.param == "postgis":
        store.close()
        empty_care_tables(request.getfixturevalue("pg_admin_url"))
    snapshot.clear()


def _care_routes(app) -> list[tuple[str, str, set[str]]]:
    from fastapi import routing

    out = []
    for c in routing.iter_route_contexts(app.router.routes) if hasattr(routing,
                                                                       "iter_route_contexts") else []:
        endpoint = getattr(c.route, "endpoint", None)
        if endpoint is not None and endpoint.__module__ == "api.routes.care":
            out.append((c.path, c.name, set(c.methods or ())))
    if not out:
        for r in app.routes:
            endpoint = getattr(r, "endpoint", None)
            if endpoint is not None and endpoint.__module__ == "api.routes.care":
                out.append((r.path, r.name, set(r.methods or ())))
    return out


def _urls(web) -> list[tuple[str, str, str | None]]:
    """(route name, URL, district it shows or None) for every GET route of this topic."""
    out = []
    for path, name, methods in _care_routes(web.app):
        if "GET" not in methods:
            continue
        if "{code}" in path:
            for code in (OWN, OTHER):
                url = path.replace("{code}", code)
                if name == "care_case_page":
                    url += f"?id={web.ids[code]['case']}"
                elif name == "care_meeting_page":
                    url += f"?id={web.ids[code]['meeting']}"
                out.append((name, url, code))
        else:
            out.append((name, path, None))
            if name in ("care_cases_api", "care_meetings_api", "care_meetings_csv", "care_concerns_csv"):
                out += [(name, f"{path}?district={code}", code) for code in (OWN, OTHER)]
    return out


#: route -> (anonymous, public user) status; every other role: 200 when it may see the district.
PUBLIC_ROUTES = {"care_summary", "care_summary_csv"}
API_ROUTES = {"care_cases_api", "care_meetings_api", "care_meetings_csv", "care_concerns_csv"}


def test_every_get_route_every_role_shows_only_what_the_role_may_see(web):
    urls = _urls(web)
    names = {name for name, _, _ in urls}
    assert {"care_page", "district_care_page", "care_case_page", "care_meeting_page", "care_sheet_pdf",
            "care_summary", "care_summary_csv"} | API_ROUTES <= names
    checked = 0
    for role in ROLES:
        client = web.browser(role)
        for name, url, code in urls:
            log_before = len(web.store.audit_log())
            r = client.get(url, follow_redirects=False, headers={"accept": "text/html"})
            assert r.status_code < 500, (role, url, r.text[:300])
            text = fx.body_text(r) if r.status_code == 200 else r.text
            may = {c for c in (OWN, OTHER) if SEES[(role, c)]}
            if name in PUBLIC_ROUTES:
                assert r.status_code == 200, (role, url)
            elif role == "anonymous":
                assert r.status_code in (303, 401), (role, url)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login?next=")
            elif role == "public":
                assert r.status_code == 403, (role, url)
            elif name == "care_page" and role == "member":
                assert r.status_code == 303 and r.headers["location"] == f"/districts/{OWN}/care"
            elif code is not None and not SEES[(role, code)]:
                assert r.status_code in (403, 404), (role, url)
            else:
                assert r.status_code == 200, (role, url, r.text[:300])
            for district, words in SECRET.items():
                if district in may and r.status_code == 200:
                    continue
                for word in words:
                    assert word not in text, (role, url, word)
            if r.status_code == 200 and name not in PUBLIC_ROUTES:
                checked += 1
                log = web.store.audit_log().iloc[log_before:]
                mine = log[log["actor"] == role]
                assert len(mine) > 0 and set(mine["route"]) == {f"web:{name}"}, (role, url)
                assert set(mine["level"]) == {web.access(role).level.value}
                if role == "member":
                    assert set(mine["district"].dropna()) <= {OWN}
    assert checked >= 20


def test_the_shown_pages_hold_what_their_viewers_may_see(web):
    member = web.browser("member")
    page = member.get(f"/districts/{OWN}/care").text
    for word in SECRET[OWN][:1]:
        assert word in page
    sent = json.loads(re.search(r'<script type="application/json" id="karte-care">(.*?)</script>', page, re.S)
                      .group(1))
    assert sent["layers"][0]["name"] == "気になる世帯"
    assert sent["layers"][0]["geojson"]["features"] or sent["unlocated"]
    for feature in sent["layers"][0]["geojson"]["features"]:
        assert set(feature["properties"]) == {"k", "popup", "links"}
        assert all(href.startswith(f"/districts/{OWN}/care/case?id=") for _,
                   href in feature["properties"]["links"])
    assert absolute_urls(page) == set()  # no basemap here: nothing from outside at all
    meeting = member.get(f"/districts/{OWN}/care/meeting?id={web.ids[OWN]['meeting']}").text
    assert SECRET[OWN][1] in meeting and SECRET[OWN][2] in meeting  # names for authorised users
    summary = web.client("anonymous").get("/api/care/summary.json").json()
    by = {d["code"]: d for d in summary["districts"]}
    assert by[OWN]["open"] == SUPPRESSED and by[OTHER]["open"] == SUPPRESSED
    assert by[OWN]["meetings"] == 1 and summary["city"]["open"] == SUPPRESSED
    staff = web.client("staff").get("/api/care/summary.json").json()
    assert {d["code"]: d for d in staff["districts"]}[OWN]["open"] == 1
    csv = web.client("member").get(f"/api/care/concerns.csv?district={OWN}")
    assert csv.status_code == 200 and csv.text.startswith("\ufeff番号,気づいた日,地区,世帯")
    assert web.client("member").get(f"/api/care/concerns.csv?district={OTHER}").status_code == 403
    assert [c["district_code"] for c in web.client("member").get("/api/care/cases").json()] == [OWN]
    pdf = web.browser("staff").get(f"/districts/{OTHER}/care/sheet.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and SECRET[OTHER][0] in fx.body_text(pdf)


def test_every_form_needs_its_csrf_token_and_the_right_to_write_there(web):
    posts = [(path, name) for path, name, methods in _care_routes(web.app) if "POST" in methods]
    assert {n for _, n in posts} == {"care_add_concern", "care_add_meeting", "care_add_action",
                                     "care_add_referral",
                                     "care_referral_status", "care_close_case", "care_reopen_case",
                                     "care_apply_register"}
    before = {layer: _rows(web.store, layer) for layer in CareLayer}
    anonymous = TestClient(web.app, raise_server_exceptions=False)
    member = web.browser("member")
    token = fx.csrf_of(member.get(f"/districts/{OWN}/care").text)
    public = web.browser("public")
    public_token = fx.csrf_of(public.get("/").text) if 'name="csrf"' in public.get("/").text else "x"
    form = {"household": "x", "noticed_on": _today().isoformat(), "noticed_by_role": "other",
            "urgency": "low",
            "kinds": "other", "concern_id": web.ids[OTHER]["case"], "acted_on": _today().isoformat(),
            "kind": "visit",
            "held_on": _today().isoformat(), "decision_id": "MD000001", "approve": "1"}
    for path, name in posts:
        for code in (OWN, OTHER):
            url = path.replace("{code}", code)
            r = anonymous.post(url, data=form, follow_redirects=False)
            assert r.status_code == 403, (name, "no token")
            r = member.post(url, data={**form, "csrf": "forged"}, follow_redirects=False)
            assert r.status_code == 403, (name, "forged token")
            r = public.post(url, data={**form, "csrf": public_token}, follow_redirects=False)
            assert r.status_code in (401, 403), (name, "public")
            if code == OTHER or "{code}" not in path:
                r = member.post(url, data={**form, "csrf": token}, follow_redirects=False)
                assert r.status_code == 403, (name, "member elsewhere")
    assert {layer: _rows(web.store, layer) for layer in CareLayer} == before


def _rows(store, layer) -> int:
    return len(store.read_records(layer)) if layer in store.layers() else 0


def test_a_form_with_problems_comes_back_with_them_and_what_was_typed(web):
    member = web.browser("member")
    token = fx.csrf_of(member.get(f"/districts/{OWN}/care").text)
    cid = web.ids[OWN]["case"]
    r = member.post(f"/districts/{OWN}/care/meetings", data={
        "csrf": token, "held_on": "2026-02-30", "place": "仮の会場名", "attendees_csw": "abc",
        "household": cid, care.household_field(cid, "watch_who"): "入力した見守り役",
        care.household_field(cid, "other_what"): "草むしり"})
    assert r.status_code == 400
    assert "まだ保存していません" in r.text and "存在しない日付です" in r.text
    assert "整数" in r.text and "内容とする人の両方" in r.text
    assert 'value="仮の会場名"' in r.text and 'value="入力した見守り役"' in r.text
    case = member.get(f"/districts/{OWN}/care/case?id={cid}").text
    version = re.search(r'name="version" value="(\d+)"', case).group(1)
    stale = str(int(version) - 1)
    r = member.post(f"/districts/{OWN}/care/close", data={"csrf": token, "concern_id": cid, "version": stale,
                                                          "close_reason": "solved",
                                                          "closed_on": _today().isoformat()})
    assert r.status_code == 409 and "他の利用者が先に" in r.text
    assert "closed" not in {c["status"] for c in care.read_care(web.store, web.access("staff")).concerns}


def test_a_meeting_through_the_web_form_reaches_the_command_line_the_counts_and_the_gaps(web):
    store = web.store
    person = consented(store, supported=False)[-1]
    helper = next(c for c in cooperators(store) if "evacuation" in split_list(c.get("help_kinds")))
    coordinator = web.browser("coordinator")
    gaps_before = _gap(coordinator.get(f"/api/districts/{OWN}").json(), "no_supporter")
    token = fx.csrf_of(coordinator.get(f"/districts/{OWN}/care").text)
    r = coordinator.post(f"/districts/{OWN}/care/concerns", data={
        "csrf": token, "household": "支援者のいない方の世帯", "noticed_on": _today().isoformat(),
        "noticed_by_role": "csw", "urgency": "high", "kinds": ["evacuation"],
        "person_id": person["person_id"]},
        follow_redirects=False)
    assert r.status_code == 303
    cid = re.search(r"id=(CN\d+)", r.headers["location"]).group(1)
    counts_before = care.fiscal_year_counts(store, care.fiscal_year(_today()), municipality="02201")
    held = (_today() - dt.timedelta(days=1)).isoformat()
    page = coordinator.get(f"/districts/{OWN}/care").text
    seen = re.search(rf'name="h-{cid}-seen" value="([^"]*)"', page).group(1)
    r = coordinator.post(f"/districts/{OWN}/care/meetings", data={
        "csrf": token, "held_on": held, "place": "石江会館", "attendees_neighbourhood_staff": "5",
        "attendees_csw": "1", "household": [cid], f"h-{cid}-discussed": "1", f"h-{cid}-seen": seen,
        f"h-{cid}-evac_supporter": helper["cooperator_id"], f"h-{cid}-evac_action": "confirmed",
        f"h-{cid}-next_review": (_today() + dt.timedelta(days=30)).isoformat()}, follow_redirects=False)
    assert r.status_code == 303 and "/care/meeting?id=" in r.headers["location"]
    meeting_id = r.headers["location"].split("id=")[1]
    landed = coordinator.get(r.headers["location"]).text
    assert "名簿に反映しました" in landed and "石江会館" in landed

    result = CliRunner().invoke(cli_app, ["meetings", "--json", "--district", OWN, "--store",
                                          _location(store)])
    assert result.exit_code == 0, result.output
    listed = {m["meeting_id"]: m for m in json.loads(result.output)}
    assert listed[meeting_id]["participants"] == 6 and listed[meeting_id]["held_on"] == held
    counts = care.fiscal_year_counts(store, care.fiscal_year(_today()), municipality="02201")
    assert counts["meetings_held"] == counts_before["meetings_held"] + 1
    assert counts["participants"] == counts_before["participants"] + 6
    assert counts["households_discussed"] == counts_before["households_discussed"] + 1

    assert helper["cooperator_id"] in split_list(
        store.read_row("register", person["person_id"], access=STAFF)["supporter_ids"])
    assert _gap(coordinator.get(f"/api/districts/{OWN}").json(), "no_supporter") == gaps_before - 1
    district_page = coordinator.get(f"/districts/{OWN}").text
    assert person["name"] in district_page
    log = store.audit_log()
    mine = log[(log["actor"] == "coordinator") & (log["route"] == "web:care_add_meeting")]
    assert {("update", "register"), ("append", "care_meetings"), ("append", "care_decisions")} <= set(
        zip(mine["action"], mine["layer"], strict=True))


def _gap(karte: dict, key: str) -> int:
    return next(g["count"] for g in karte["gaps"] if g["key"] == key)


def _location(store) -> str:
    return getattr(store, "url", None) or str(store.path)


def test_a_members_evacuation_decision_is_applied_by_a_coordinator_on_the_overview(web):
    store = web.store
    person = consented(store, supported=False)[0]
    helper = cooperators(store)[1]
    member = web.browser("member")
    token = fx.csrf_of(member.get(f"/districts/{OWN}/care").text)
    cid = web.ids[OWN]["case"]
    r = member.post(f"/districts/{OWN}/care/meetings", data={
        "csrf": token, "held_on": _today().isoformat(), "household": cid, f"h-{cid}-discussed": "1",
        f"h-{cid}-evac_person": person["person_id"], f"h-{cid}-evac_supporter": helper["cooperator_id"]},
        follow_redirects=False)
    assert r.status_code == 303
    assert "コーディネーターの確認" in member.get(r.headers["location"]).text
    assert helper["cooperator_id"] not in split_list(store.read_row("register", person["person_id"],
                                                                    access=STAFF)["supporter_ids"])
    coordinator = web.browser("coordinator")
    overview = coordinator.get("/care").text
    assert person["name"] in overview and "名簿に反映" in overview
    decision = re.findall(r'name="decision_id" value="(MD\d+)"', overview)[-1]
    r = coordinator.post("/care/register", data={"csrf": fx.csrf_of(overview), "decision_id": decision,
                                                 "approve": "1"}, follow_redirects=False)
    assert r.status_code == 303
    assert helper["cooperator_id"] in split_list(store.read_row("register", person["person_id"],
                                                                access=STAFF)["supporter_ids"])


def test_the_outreach_page_shows_each_places_open_concerns_and_last_visit(web):
    store = web.store
    coordinator = web.access("coordinator")
    ranking = outreach.outreach_ranking(store, coordinator)
    top = ranking[ranking["district_code"] == OWN].iloc[0]
    point = top.geometry.representative_point()
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(6678, 4326, always_xy=True).transform(point.x, point.y)
    staff = Access("staff", Level.CITY_STAFF)
    case = care.record_concern(store, staff, OWN, {
        "household": "順位の高い町の世帯", "noticed_on": _today().isoformat(), "noticed_by_role": "csw",
        "urgency": "medium", "kinds": ["watching"], "lat": str(lat), "lon": str(lon)}, today=_today())
    assert case["key_code"] == top["key_code"]
    visit = (_today() - dt.timedelta(days=2)).isoformat()
    care.record_action(store, staff, OWN, {"concern_id": case["concern_id"], "acted_on": visit,
                                           "kind": "visit"},
                       today=_today())
    html = web.browser("coordinator").get("/outreach", params={"district": OWN}).text
    row = re.search(rf"<td class=\"n\">{int(top['rank'])}</td><td>{re.escape(str(top['name']))}.*?</tr>",
                    html, re.S)
    assert row is not None
    assert f"/districts/{OWN}/care#cases\">1</a>" in row.group(0) and visit in row.group(0)
    assert "気になる世帯" in html and "最終訪問" in html


def test_no_output_below_city_staff_carries_an_unconsented_persons_id(web):
    """Issue 16 item 9 on the outreach page: a decision city staff recorded on a person who did
    not consent is not shown, even as an id, to coordinators."""
    store = web.store
    hidden = unconsented(store)[0]
    store.append_rows(Layer.DECISIONS, [{
        "person_id": hidden["person_id"], "cooperator_id": cooperators(store)[0]["cooperator_id"],
        "district_code": OWN, "decision": "confirmed", "distance_m": 100.0, "decided_by": "staff",
        "decided_at": "2026-11-30T00:00:00+00:00"}], access=Access("staff", Level.CITY_STAFF))
    assert hidden["person_id"] in web.browser("staff").get("/outreach", params={"district": OWN}).text
    page = web.browser("coordinator").get("/outreach", params={"district": OWN}).text
    assert hidden["person_id"] not in page
    assert hidden["person_id"] not in set(outreach.decisions(store, web.access("coordinator"))["person_id"])
    assert hidden["person_id"] in set(outreach.decisions(store, web.access("staff"))["person_id"])
