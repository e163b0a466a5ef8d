"""The supporters pages and API, role × route: nothing personal to the public or to another
district, planners' forms CSRF-checked, the access log naming the real user, and the page in a
real browser (offline, desktop and tablet)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import api_fixtures as fx
import pytest
from api_fixtures import OWN, ROLES, body_text, csrf_of
from conftest import copy_store

from karte import synthetic_supporters
from karte.domain.access import SUPPRESSED
from karte.domain.supporters import Layer as L
from karte.services.supporters import today_jst
from karte.store import GeoPackageStore

PLANNERS = ("coordinator", "staff")
TODAY = today_jst().isoformat()
#: route -> expected status per role (anonymous, public, member, coordinator, staff)
GETS = {
    "/supporters": (200, 200, 200, 200, 200),
    "/supporters?district=S06": (200, 200, 200, 200, 200),
    "/supporters/snow": (303, 403, 403, 200, 200),
    "/supporters/snow?district=S05": (303, 403, 403, 200, 200),
    "/supporters/SP000001": (303, 403, 403, 200, 200),
    "/supporters/SP000001/statement.pdf?year=2025": (401, 403, 403, 200, 200),
    "/supporters/SP999999": (303, 403, 403, 404, 404),
    "/api/supporters/counts": (200, 200, 200, 200, 200),
    "/api/supporters/match?district=S05": (401, 403, 403, 200, 200),
}


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory):
    """The app over a copy of the demo with the topic's synthetic data."""
    folder = tmp_path_factory.mktemp("supporters_web")
    path = copy_store(demo[1] / "karte.gpkg", folder / "karte.gpkg")
    store = GeoPackageStore(path)
    synthetic_supporters.write_demo(store, seed=2026)
    return fx.make_api(store, folder / "app", basemap="none")


@pytest.fixture(scope="module")
def rows(web):
    """The personal rows, to look for in answers: ids and names per district."""
    sups, reqs = web.store.read(L.SUPPORTERS), web.store.read(L.REQUESTS)
    names: dict[str, set[str]] = {}
    for name, district in [*zip(sups["name"], sups["district_code"], strict=True),
                           *zip(reqs["requester_name"], reqs["district_code"], strict=True)]:
        names.setdefault(name, set()).add(district)
    return {"supporter_ids": dict(zip(sups["supporter_id"], sups["district_code"], strict=True)),
            "request_ids": dict(zip(reqs["request_id"], reqs["district_code"], strict=True)), "names": names}


def _leaks(text: str, rows: dict, *, allowed: set[str]) -> list[str]:
    """Ids and names of districts not in ``allowed`` (names only when they occur nowhere allowed)."""
    found = [i for i, d in {**rows["supporter_ids"], **rows["request_ids"]}.items()
             if d not in allowed and re.search(rf"\b{i}\b", text)]
    shown = [n for n, ds in rows["names"].items() if ds & allowed]
    # a name that is part of a name allowed here (山内 武 in 小山内 武) is no sign of a leak
    found += [n for n, ds in rows["names"].items()
              if not ds & allowed and n in text and not any(n in other for other in shown)]
    return found


@pytest.mark.parametrize("url", list(GETS))
@pytest.mark.parametrize("role", ROLES)
def test_role_by_route(web, rows, role, url):
    expected = GETS[url][ROLES.index(role)]
    r = web.browser(role).get(url, follow_redirects=False)
    assert r.status_code == expected, (role, url, r.text[:300])
    if expected == 303:
        assert r.headers["location"].startswith("/login?next=/supporters")
    if expected != 200:
        return
    text = body_text(r)
    if role in ("anonymous", "public"):
        assert _leaks(text, rows, allowed=set()) == [], (role, url)
    elif role == "member":
        assert _leaks(text, rows, allowed={OWN}) == [], (role, url)
    if url.endswith(".pdf?year=2025"):
        assert r.headers["content-type"] == "application/pdf" and "ボランティアポイント明細書" in text
    if role in PLANNERS and url == "/supporters?district=S06":
        assert any(d == "S06" and i in text for i, d in rows["request_ids"].items())


def test_a_district_page_links_to_its_supporters(web):
    r = web.browser("anonymous").get("/districts/S05/supporters", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/supporters?district=S05"
    assert web.browser("anonymous").get("/districts/S05%3Cx/supporters").status_code == 422


def test_the_public_counts_are_suppressed_and_hold_no_rows(web, rows):
    for role in ("anonymous", "public"):
        data = web.client(role).get("/api/supporters/counts").json()
        values = [v for r in data["rows"] for k, v in r.items()
                  if k not in ("district_code", "district_name")]
        assert SUPPRESSED in values and all(isinstance(v, int) or v == SUPPRESSED for v in values)
        assert data["suppressed"]
    staff = web.client("staff").get("/api/supporters/counts").json()
    assert not staff["suppressed"] and SUPPRESSED not in json.dumps(staff, ensure_ascii=False)


def test_the_match_api_names_nobody(web, rows):
    data = web.client("coordinator").get("/api/supporters/match?district=S05").json()
    assert data["counts"]["open"] == data["counts"]["met"] + data["counts"]["unmet"] > 0
    text = json.dumps(data, ensure_ascii=False)
    assert not [n for n in rows["names"] if n in text]
    assert {s["district_code"] for s in data["suggestions"]} <= {"S05"}


def test_page_views_are_logged_with_the_real_user(web):
    before = len(web.store.audit_log())
    assert web.browser("coordinator").get("/supporters?district=S05").status_code == 200
    assert web.browser("member").get("/supporters").status_code == 200
    assert web.browser("public").get("/supporters").status_code == 200
    log = web.store.audit_log().iloc[before:]
    mine = log[log["layer"].isin([str(x) for x in L])]
    coordinator = mine[mine["actor"] == "coordinator"]
    assert set(coordinator["level"]) == {"coordinator"}
    assert set(coordinator["route"]) == {"web:supporters_page"}
    assert {"supporters", "help_requests", "supporter_dispatches"} <= set(coordinator["layer"])
    member = mine[mine["actor"] == "member"]
    assert set(member["level"]) == {"district_member"} and set(member["district"].dropna()) == {OWN}
    assert not (mine["actor"] == "public").any()  # the public reads no personal row at all


def _form(client, url: str) -> str:
    return csrf_of(client.get(url).text)


def test_forms_need_the_csrf_token_and_a_planner(web, tmp_path):
    # a private app: these tests write
    store = GeoPackageStore(copy_store(Path(web.store.path), tmp_path / "karte.gpkg"))
    app = fx.make_api(store, tmp_path / "app", basemap="none")
    before = len(store.read(L.SNOWFALLS))
    staff = app.browser("staff")
    token = _form(staff, "/supporters/snow")
    r = staff.post("/supporters/snowfalls", data={"fell_on": TODAY, "csrf": "wrong"},
                   follow_redirects=False)
    assert r.status_code == 403
    for role in ("member", "public"):
        client = app.browser(role)
        own = _form(client, "/supporters")
        r = client.post("/supporters/snowfalls", data={"fell_on": TODAY, "csrf": own},
                        follow_redirects=False)
        assert r.status_code == 403, role
    assert len(store.read(L.SNOWFALLS)) == before
    r = staff.post("/supporters/snowfalls", data={"fell_on": TODAY, "depth_cm": "20", "csrf": token},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/supporters/snow?done=snowfall"
    got = store.read(L.SNOWFALLS)
    assert len(got) == before + 1 and got.iloc[-1]["recorded_by"] == "staff"


def test_register_dispatch_record_and_redeem_on_the_web(web, tmp_path):
    store = GeoPackageStore(copy_store(Path(web.store.path), tmp_path / "karte.gpkg"))
    app = fx.make_api(store, tmp_path / "app", basemap="none")
    csw = app.browser("coordinator")
    token = _form(csw, "/supporters?district=S05")
    r = csw.post("/supporters", data={"name": "新人 花子", "address": "青森市新町1丁目3-7",
                                      "activities": ["snow", "watching"], "weekdays": ["mon", "tue"],
                                      "start": "07:00", "end": "09:00", "season": "all", "reach_m": "800",
                                      "capacity": "2", "status": "registered", "csrf": token},
                 follow_redirects=False)
    assert r.status_code == 303, r.text
    new_id = r.headers["location"].split("/")[2].split("?")[0]
    row = store.read_row(L.SUPPORTERS, new_id, access=app.access("coordinator"))
    assert row["name"] == "新人 花子" and row["activities"] == "watching;snow"
    assert row["hours"] == "07:00-09:00"
    assert row["status"] == "registered" and row["updated_by"] == "coordinator" and row["district_code"]
    # a request, then its dispatch to the first suggestion of the district page
    r = csw.post("/supporters/requests", data={"requester_name": "依頼 一郎", "address": "青森市新町1丁目5",
                                               "activity": "watching", "recurrence": "weekly",
                                               "weekdays": ["mon"], "start": "07:30", "end": "08:30",
                                               "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    page = csw.get(f"/supporters?district={row['district_code']}").text
    form = re.search(r'name="request_id" value="(RQ\d+)">\s*<input type="hidden" name="supporter_id" '
                     r'value="(SP\d+)"', page)
    assert form, "a suggestion with its dispatch form"
    r = csw.post("/supporters/dispatches", data={"request_id": form.group(1), "supporter_id": form.group(2),
                                                 "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "done=dispatch" in r.headers["location"]
    dispatch = store.read(L.DISPATCHES).iloc[-1]
    assert dispatch["request_id"] == form.group(1) and dispatch["decided_by"] == "coordinator"
    activity = {"dispatch_id": dispatch["dispatch_id"], "done_on": TODAY, "hours": "1", "done": "1",
                "csrf": token}
    r = csw.post("/supporters/activities", data=activity, follow_redirects=False)
    assert r.status_code == 303
    entry = store.read(L.LEDGER).iloc[-1]
    assert entry["supporter_id"] == dispatch["supporter_id"] and entry["points"] > 0
    assert entry["recorded_by"] == "coordinator"
    # a conflict is a 409 page, not a 500
    r = csw.post("/supporters/dispatches", data={"request_id": form.group(1), "supporter_id": form.group(2),
                                                 "csrf": token}, follow_redirects=False)
    assert r.status_code == 409
    # the detail page: balance, statement, redeem
    detail = csw.get(f"/supporters/{dispatch['supporter_id']}")
    assert detail.status_code == 200 and "ポイント残高" in detail.text


# --- a real browser -----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_page_draws_its_map_offline_on_desktop_and_tablet(web, tmp_path):
    import uvicorn
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            for width, height in ((1280, 860), (768, 1024)):
                context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP")
                blocked: list[str] = []
                errors: list[str] = []

                def local(route, blocked=blocked):
                    if route.request.url.startswith(base):
                        route.continue_()
                    else:
                        blocked.append(route.request.url)
                        route.abort()

                context.route("**/*", local)
                page = context.new_page()
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(f"{base}/login")
                page.fill("input[name=username]", "coordinator")
                page.fill("input[name=password]", fx.PASSWORD)
                page.click("button[type=submit]")
                for url, box in (("/supporters?district=S05", "#supportersmap"),
                                 ("/supporters/snow?district=S05", "#snowmap")):
                    page.goto(base + url)
                    page.wait_for_load_state("networkidle")
                    markers = page.locator(f"{box} .leaflet-interactive").count()
                    assert markers > 5, (url, width, markers)
                    assert page.locator(f"{box} .leaflet-control-layers").count() == 1
                    name = url.split("?")[0].strip("/").replace("/", "_")
                    shot = tmp_path / f"supporters_{width}_{name}.png"
                    page.screenshot(path=str(shot))
                    Path("/tmp/shots").mkdir(exist_ok=True)
                    shutil.copy(shot, Path("/tmp/shots") / shot.name)
                box = page.locator("#snowmap").bounding_box()
                if width < 900:  # a tablet held upright: the map takes the width
                    assert box["width"] > width * 0.85
                assert errors == [] and blocked == []
                context.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
