"""Disaster mode (災害時モード, 災害対策基本法 第49条の11第3項), on both stores.

* While a district is in disaster mode its district members see its unconsented register entries
  too, on every page and file, and every read is logged with the mode (``+disaster`` in the access
  log's route); outside the mode nothing changes. Coordinators, other districts and the public
  are never widened. The mode ends by hand or at its end time; switching it on and off is in the
  access log.
* The role × route matrix of ``tests/test_api_matrix.py``, with the mode off and on: no route and
  no format shows a row the role may not see (what it may see in disaster mode included), and
  every HTML page a logged-in user gets carries the banner while the mode is on, and none when
  it is off.
(``api.deps.current_access`` sets the viewer's disaster modes and the banner for every route.)
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from types import SimpleNamespace

import api_fixtures as fx
import pytest
import test_api_matrix as matrix
from fastapi.testclient import TestClient
from test_drills import OTHER, OWN, gpkg_copy, pg_copy, users

from karte.domain.access import SHAREABLE, Access, Level
from karte.domain.drills import MODES
from karte.domain.errors import AccessDenied
from karte.services import disaster, drills, kartes
from karte.services.personal import read_records
from karte.snapshot import current

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

#: Pages without the banner: the login form (nobody is known yet) and the API reference (not a
#: karte page: no menu, no data).
NO_BANNER = {"/login", "/api/docs"}


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, demo, tmp_path):
    if request.param == "gpkg":
        yield gpkg_copy(demo, tmp_path / "store")
        return
    pg = pg_copy(request, demo)
    yield pg
    pg.close()


def register_ids(store, access: Access, district: str) -> set[str]:
    return {r["person_id"] for r in read_records(store, "register", access, district=district)}


# --- who sees what -------------------------------------------------------------------------------------

def test_unconsented_entries_reach_the_district_member_only_while_the_mode_is_on(store):
    u = users()
    register = store.read("register")
    own = register[register["district_code"] == OWN]
    everyone = set(own["person_id"])
    consented = set(own.loc[own["consent"].isin(SHAREABLE), "person_id"])
    assert everyone - consented, "the demo has unconsented people in the district"
    other_consented = register_ids(store, u["other"], OTHER)
    coordinator_sees = register_ids(store, u["coordinator"], OWN)
    assert register_ids(store, u["member"], OWN) == consented
    log_before = len(store.audit_log())

    rows = disaster.start(store, u["staff"], [OWN], hours=6, reason="大雨特別警報")
    assert [(r["district_code"], r["started_by"], r["scope"]) for r in rows] == [(OWN, "staff", "district")]
    assert disaster.start(store, u["staff"], [OWN]) == []  # on already: nothing written twice
    assert register_ids(store, u["member"], OWN) == everyone
    karte = kartes.karte_view(store, OWN, u["member"])
    assert {p["person_id"] for p in karte["personal"]["register"]} == everyone
    assert register_ids(store, u["other"], OTHER) == other_consented  # another district: as before
    assert register_ids(store, u["coordinator"], OWN) == coordinator_sees  # coordinators: as before
    assert register_ids(store, u["public"], OWN) == set()
    log = store.audit_log().iloc[log_before:]
    switched = log[log["layer"] == MODES]
    assert list(zip(switched["actor"], switched["action"], switched["district"], strict=True)) == [
        ("staff", "append", OWN)]
    reads = log[(log["layer"] == "register") & (log["action"] == "read")]
    assert len(reads) and reads["route"].str.endswith("+disaster").all()  # every view, logged with the mode
    assert set(reads.loc[reads["actor"] == "m5", "rows"]) == {len(everyone)}
    if "database_rls" in store.capabilities:  # the database itself lets the member through now
        plain = store.read("register", district=OWN, access=Access("m5", Level.DISTRICT_MEMBER, OWN))
        assert set(plain["person_id"]) == everyone

    assert disaster.stop(store, u["staff"], [OWN]) == [OWN]
    assert register_ids(store, u["member"], OWN) == consented
    log = store.audit_log().iloc[log_before:]
    assert ("staff", "update") in set(zip(log.loc[log["layer"] == MODES, "actor"],
                                          log.loc[log["layer"] == MODES, "action"], strict=True))
    after = log.iloc[-1]
    assert after["layer"] == "register" and not after["route"].endswith("+disaster")


def test_the_mode_ends_by_itself_at_its_end_time(store):
    u = users()
    consented = register_ids(store, u["member"], OWN)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    disaster.start(store, u["staff"], [OWN], hours=1, now=past)  # on from 3 h ago until 2 h ago
    assert disaster.effective_access(store, u["member"]).disaster == frozenset()
    assert register_ids(store, u["member"], OWN) == consented
    if "database_rls" in store.capabilities:
        plain = store.read("register", district=OWN, access=Access("m5", Level.DISTRICT_MEMBER, OWN))
        assert set(plain["person_id"]) == consented
    (period,) = disaster.modes(store, u["staff"])
    assert not period["active"] and period["ends_ja"]
    # a whole-city start switches every district, each of which ends on its own
    rows = disaster.start(store, u["staff"], None, hours=2)
    assert {r["scope"] for r in rows} == {"city"} and len(rows) >= 40
    assert disaster.stop(store, u["staff"], [OTHER]) == [OTHER]
    on = disaster.effective_access(store, u["member"]).disaster
    assert OWN in on and OTHER not in on
    assert disaster.banner(store, disaster.effective_access(store, u["member"]))["mine"]


def test_the_banner_says_where_since_when_who_and_that_consent_is_lifted(demo, tmp_path, monkeypatch):
    store = gpkg_copy(demo, tmp_path / "store")
    u = users()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    disaster.start(store, u["staff"], [OWN], hours=6, reason="大雨特別警報", now=at)
    since, until = (disaster.jst_text(m.isoformat()) for m in (at, at + dt.timedelta(hours=6)))
    assert since.startswith(f"{at.astimezone(disaster.JST).year}年") and since[-5:] == \
        at.astimezone(disaster.JST).strftime("%H:%M")
    name = current(store).district_name(OWN)
    member = disaster.banner(store, disaster.effective_access(store, u["member"]))
    assert member["mine"] and member["districts"] == [OWN]
    for words in (f"{name}（{OWN}）", f"{since}から", "（staff が開始）", f"{until}まで", "同意のない方",
                  "第49条の11第3項", "あなたの地区も対象"):
        assert words in member["text"], (words, member["text"])
    csw = disaster.banner(store, disaster.effective_access(store, u["coordinator"]))
    assert not csw["mine"] and "あなたの地区" not in csw["text"] and f"{since}から" in csw["text"]
    assert disaster.banner(store, disaster.effective_access(store, u["other"]))["districts"] == [OWN]
    assert disaster.banner(store, u["public"]) is None
    assert disaster.banner(store, u["member"]) is None  # outside the mode (no districts): no banner
    # on a page: under the menu, for every logged-in user; the public gets none
    web = fx.make_api(store, tmp_path / "web")
    for role in ("member", "coordinator", "staff"):
        html = web.client(role).get(f"/districts/{OTHER}" if role != "member" else f"/districts/{OWN}").text
        banner = re.search(r'<div id="karte-disaster-banner"[^>]*role="alert">(.*?)</div>', html, re.S)
        assert banner and f"{since}から" in banner.group(1) and "staff" in banner.group(1), role
        assert ("/drills#disaster" in banner.group(1)) == (role == "staff")  # who can end it gets the link
    assert 'id="karte-disaster-banner"' not in web.client("anonymous").get("/").text
    disaster.stop(store, u["staff"])
    assert 'id="karte-disaster-banner"' not in web.client("member").get(f"/districts/{OWN}").text


def test_only_city_staff_switch_the_mode(store):
    for who in ("coordinator", "member", "public"):
        with pytest.raises(AccessDenied):
            disaster.start(store, users()[who], [OWN])
        with pytest.raises(AccessDenied):
            disaster.stop(store, users()[who])


# --- the role x route matrix, the mode off and on ------------------------------------------------------

@pytest.fixture(params=["off", "on"])
def mode(request):
    return request.param


@pytest.fixture
def web(store, tmp_path, monkeypatch, mode):
    """The app over the store with a drill of both districts (marks, a lesson) and a plan in
    each, the mode switched on for OWN (``mode`` on) or not."""
    api = fx.make_api(store, tmp_path / "web")
    u = users()
    now = dt.datetime.now(dt.UTC)
    drill = drills.start_drill(store, u["coordinator"], [OWN, OTHER], name="行列の訓練",
                               started_at=now - dt.timedelta(minutes=20))
    api.drill_id = drill["drill_id"]
    api.people = {}
    for code in (OWN, OTHER):
        roll = drills.roll(store, u["coordinator"], drill, code)
        drills.record_marks(store, u["coordinator"], drill["drill_id"], [
            {"id": str(uuid.uuid4()), "person_id": p["person_id"], "district": code, "status": "needs_help",
             "marked_at": (now - dt.timedelta(minutes=5)).isoformat()} for p in roll[:3]])
        drills.add_lesson(store, u["coordinator"], drill["drill_id"], code, f"{code} の教訓")
        person = roll[0]
        drills.save_plan(store, u["coordinator"], code, person["person_id"],
                         drills._defaults(person) | {"emergency_phone": "017-000-0000"})
        api.people[code] = person["person_id"]
    if mode == "on":
        disaster.start(store, u["staff"], [OWN], hours=3, reason="訓練ではない")
    return api


def _disaster_access(web, role: str) -> Access:
    return disaster.effective_access(web.store, web.access(role))


def test_the_matrix_with_the_mode_off_and_on(web, mode):
    """Every GET route, every role: no personal row the role may not see (in disaster mode, as the
    mode widens it), no small count to the public, and the banner on every page of a logged-in
    user exactly while the mode is on."""
    client = TestClient(web.app, raise_server_exceptions=False)
    headers = {role: web.headers(role) for role in reversed(fx.ROLES)}  # staff first
    data = _data(web)
    widened = SimpleNamespace(access=lambda role: _disaster_access(web, role))  # what each role may see
    forbidden = {role: matrix._forbidden(widened, role, data) for role in fx.ROLES}
    member_hidden = forbidden["member"]["ids"]
    register = web.store.read("register")
    unconsented_own = set(register.loc[(register["district_code"] == OWN)
                                       & ~register["consent"].isin(SHAREABLE), "person_id"])
    assert unconsented_own
    if mode == "on":
        assert not unconsented_own & member_hidden  # the mode lets the member see them
    else:
        assert unconsented_own <= member_hidden
    failures, checked, banners = [], 0, {True: 0, False: 0}
    for url in _urls(web, client):
        staff = client.get(url, headers=headers["staff"])
        assert staff.status_code < 500, (url, staff.text[:200])
        for role in fx.ROLES:
            r = staff if role == "staff" else client.get(url, headers=headers[role])
            assert r.status_code < 500, (role, url, r.text[:200])
            if r.status_code >= 300:
                continue
            checked += 1
            failures += [f"{role} {url}: {leak}" for leak in matrix._leaks(fx.body_text(r), forbidden[role])]
            if role in ("anonymous", "public") and staff.status_code == 200:
                pub, ref = matrix._parsed(r), matrix._parsed(staff)
                if isinstance(pub, list) and pub and isinstance(pub[0], dict) and "csv" in url:
                    pub, ref = matrix._csv_ints(pub), matrix._csv_ints(ref)
                if pub is not None and not (isinstance(pub, dict) and "openapi" in pub):  # an API document
                    failures += [f"{role} {url}: small count at {p}" for p in matrix._small_counts(pub, ref)]
            html = r.headers.get("content-type", "").startswith("text/html")
            if html and role in ("member", "coordinator", "staff") and url not in NO_BANNER:
                shown = 'id="karte-disaster-banner"' in r.text
                banners[shown] += 1
                if shown != (mode == "on"):
                    failures.append(f"{role} {url}: banner {'shown' if shown else 'missing'}, mode {mode}")
    assert checked > 250
    assert not failures, "\n".join(failures[:40])
    assert banners[mode == "on"] > 10 and banners[mode != "on"] == 0


def test_the_member_page_sends_what_the_mode_allows(web, mode):
    """The district page's ``karte-personal`` JSON: exactly the located rows the member may see,
    the unconsented ones of their district included while the mode is on, and the view is in the
    access log with the mode."""
    register = web.store.read("register")
    html = web.browser("member").get(f"/districts/{OWN}").text
    sent = fx.personal_json(html)
    access = _disaster_access(web, "member")
    seen = access.filter_rows("register", register[register["district_code"] == OWN])
    seen = seen[seen.geometry.notna() & ~seen.geometry.is_empty]
    layer = next(layer for layer in sent["layers"] if "要支援者" in layer["name"])
    assert len(layer["geojson"]["features"]) == len(seen)
    unconsented = int((~seen["consent"].isin(SHAREABLE)).sum())
    assert (unconsented > 0) == (mode == "on")
    last = web.store.audit_log()
    mine = last[(last["actor"] == "member") & (last["layer"] == "register")].iloc[-1]
    assert mine["route"].startswith("web:district_page")
    assert mine["route"].endswith("+disaster") == (mode == "on")
    assert ('id="karte-disaster-banner"' in html) == (mode == "on")


def _urls(web, client) -> list[str]:
    """Every GET URL of the matrix (routes whose path parameters it knows; a route it does not
    know is the shared matrix's to refuse), and this topic's pages and files with a real drill
    and person of both districts."""
    from starlette.routing import Mount

    urls = []
    fill = {"code": matrix.ROUTE_CODES, "layer": [v.value for v in matrix.WebLayer],
            "table": [v.value for v in matrix.Table], "collection_id": list(matrix.COLLECTIONS)}
    for path, name, methods, route in matrix._routes(web.app):
        if isinstance(route, Mount) or "GET" not in methods or name == "openapi":
            continue
        params = re.findall(r"{(\w+)}", path)
        if any(p not in fill for p in params):
            continue
        found = [path]
        for p in params:
            found = [u.replace("{" + p + "}", v) for u in found for v in fill[p]]
        if name == "sheet_pdf":
            found = [f"{u}?edition={e.value}" for u in found for e in matrix.Edition]
        urls += found
    for code in (OWN, OTHER):
        drill, person = web.drill_id, web.people[code]
        urls += [f"/districts/{code}/drills/mark?drill={drill}",
                 f"/districts/{code}/drills/dashboard?drill={drill}",
                 f"/api/districts/{code}/drills/status?drill={drill}",
                 f"/districts/{code}/evacuation-plan?person={person}",
                 f"/districts/{code}/evacuation-plans.pdf",
                 f"/districts/{code}/evacuation-plans.pdf?person={person}"]
    urls += [f"/drills/report.pdf?drill={web.drill_id}", f"/drills/report.csv?drill={web.drill_id}"]
    return urls + matrix._static_urls(web.app)


def _data(web):
    store = web.store
    frames = [store.read(layer) for layer in ("services", "shelters", "emergency_sites", "small_areas",
                                              "districts")]
    public = "\n".join(str(v) for frame in frames for col in frame.columns if col != "geometry"
                       for v in frame[col].dropna().astype(str))
    return store.read("register"), store.read("cooperators"), matrix._nows(public)
