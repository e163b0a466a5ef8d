"""The hand-out ledger's pages and API (issue 20): the role x route matrix over every route of
``api/routes/copies.py``, the print form that records a copy before its PDF, events by scanning or
typing a copy number, paper drill marks, CSRF, and counts only for the public."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN, ROLES
from fastapi.testclient import TestClient
from test_copies import empty_ledger

from karte.domain.access import Access, Level
from karte.domain.copies import Event, State
from karte.services import copies
from karte.services.sheets import district_sheet_pdf

pytestmark = pytest.mark.slow  # over the session's demo build

COPY_TEXT = re.compile(r"複製番号 (K\d{6})")


class FakeDrills:
    """Stands in for the drill records of issue 19: drill DR1 runs in S05."""

    def __init__(self):
        self.written = []

    def open_drills(self, store, access, district):
        drill = {"drill_id": "DR1", "name": "安否確認訓練（S05）", "started_at": "2026-12-01T00:00:00+00:00"}
        return [drill] if district == OWN else []

    def record_paper_marks(self, store, access, drill_id, marks):
        self.written.append((drill_id, access.user, list(marks)))
        return len(marks)


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory):
    """The app over a private copy of the demo, with copies of S05 (drill) and S06 (confidential)
    printed by the coordinator and a sealed list made by city staff."""
    folder = tmp_path_factory.mktemp("copies-web")
    api = fx.make_api(empty_ledger(fx.copy_demo(demo, folder)), folder, basemap="none")
    csw = Access("coordinator", Level.COORDINATOR, route="test")
    district_sheet_pdf(api.store, OWN, edition="drill", access=csw)
    district_sheet_pdf(api.store, OTHER, edition="confidential", access=csw)
    copies.sealed_list(api.store, Access("staff", Level.CITY_STAFF, route="test"), "E0220100157121")
    return api


@pytest.fixture(scope="module")
def ids(web):
    ledger = copies.ledger(web.store, web.access("staff"))
    return {("drill" if v.kind.value == "drill" else v.kind.value, v.row["district_code"]): v.copy_id
            for v in ledger}


def _client(web, role):
    """A browser-like client (session cookie, CSRF token) of ``role``; anonymous has neither."""
    return web.browser(role) if role != "anonymous" else TestClient(web.app, raise_server_exceptions=False)


def _token(client) -> str:
    """The session's CSRF token, from a page every logged-in role opens (the login page otherwise)."""
    r = client.get("/", headers={"accept": "text/html"})
    found = re.search(r'name="csrf" value="([^"]+)"', r.text)
    return found.group(1) if found else ""


# --- the matrix ---------------------------------------------------------------------------------

#: route name -> (method, URL template, {role: status}); {drill}, {other} are copy ids. An anonymous
#: POST has no session and so no CSRF token: a form without its required token is a 422, one
#: read by hand (the marks) a 403; the second return of one copy (staff after the coordinator) 409.
LOGIN = 303
MATRIX = {
    "copies_page": ("GET", "/copies", dict(anonymous=LOGIN, public=403, member=403, coordinator=200,
                                           staff=200)),
    "copies_new": ("GET", f"/copies/new?district={OWN}&edition=confidential",
                   dict(anonymous=LOGIN, public=403, member=200, coordinator=200, staff=200)),
    "copies_scan": ("GET", "/copies/scan", dict(anonymous=LOGIN, public=403, member=200, coordinator=200,
                                                staff=200)),
    "copies_go": ("GET", "/copies/go?id={drill}", dict(anonymous=LOGIN, public=403, member=303,
                                                     coordinator=303, staff=303)),
    "copies_report": ("GET", f"/copies/report.pdf?district={OWN}&year={{year}}",
                      dict(anonymous=401, public=403, member=403, coordinator=200, staff=200)),
    "copies_sealed_form": ("GET", "/copies/sealed", dict(anonymous=LOGIN, public=403, member=403,
                                                         coordinator=403, staff=200)),
    "copy_page": ("GET", "/copies/{drill}", dict(anonymous=LOGIN, public=403, member=403, coordinator=200,
                                                 staff=200)),
    "copies_marks": ("GET", "/copies/{drill}/marks", dict(anonymous=LOGIN, public=403, member=200,
                                                         coordinator=200, staff=200)),
    "copies_api": ("GET", "/api/copies", dict(anonymous=401, public=403, member=403, coordinator=200,
                                              staff=200)),
    "copies_counts": ("GET", "/api/copies/counts", dict(anonymous=200, public=200, member=200,
                                                      coordinator=200, staff=200)),
    "copies_print": ("POST", "/copies/new", dict(anonymous=422, public=403, member=200, coordinator=200,
                                                 staff=200)),
    "copies_event": ("POST", "/copies/{other}/events", dict(anonymous=422, public=403, member=403,
                                                            coordinator=303, staff=409)),
    "copies_sealed": ("POST", "/copies/sealed", dict(anonymous=422, public=403, member=403, coordinator=403,
                                                     staff=200)),
    "copies_marks_enter": ("POST", "/copies/{drill}/marks", dict(anonymous=403, public=403, member=303,
                                                                coordinator=303, staff=303)),
}
#: The form each POST of the matrix sends (with the session's CSRF token).
FORMS = {
    "copies_print": {"district": OWN, "edition": "drill", "holder_name": "S05町会", "holder_kind": "council"},
    "copies_event": {"event": "returned", "person": "町会長"},
    "copies_sealed": {"shelter_id": "E0220100157121"},
    "copies_marks_enter": {"drill_id": "DR1", "tick_confirmed": "{person}"},
}


def test_the_matrix_covers_every_route_of_the_ledger(web):
    from fastapi.routing import iter_route_contexts

    from api.routes import copies as routes

    names = {c.name for c in iter_route_contexts(routes.router.routes)}
    assert names == set(MATRIX)
    app_names = {c.name for c in iter_route_contexts(web.app.router.routes)}
    assert set(MATRIX) <= app_names  # registered in the app


@pytest.mark.parametrize("name", list(MATRIX))
def test_role_by_route(web, ids, name, monkeypatch):
    drills = FakeDrills()
    monkeypatch.setattr(web.app.state, "drill_records", drills, raising=False)
    method, template, expected = MATRIX[name]
    person = copies.copy_view(web.store, web.access("staff"), ids[("drill", OWN)]).person_ids[0]
    url = template.format(drill=ids[("drill", OWN)], other=ids[("confidential", OTHER)],
                          year=copies.fiscal_year_of(copies.today_jst()))
    for role in ROLES:
        client = _client(web, role)
        if method == "GET":
            r = client.get(url, follow_redirects=False, headers={"accept": "text/html"})
        else:
            form = {k: v.format(person=person) for k, v in FORMS[name].items()}
            r = client.post(url, data={**form, "csrf": _token(client)}, follow_redirects=False,
                            headers={"accept": "text/html"})
        assert r.status_code == expected[role], (name, role, r.status_code, r.text[:300])
        if r.status_code == LOGIN and expected[role] == LOGIN and role == "anonymous":
            assert r.headers["location"].startswith("/login?next=")
        if r.status_code == 200 and r.headers["content-type"].startswith("text/html"):
            assert "<title>" in r.text and ("名簿" in r.text or "複製" in r.text)
            assert r.headers["cache-control"] == "private, no-store"
        if name == "copies_event" and role == "coordinator":  # the one return recorded
            assert copies.copy_view(web.store, web.access("staff"), ids[("confidential", OTHER)]).state \
                is State.RETURNED


def test_every_post_refuses_a_forged_or_missing_token(web, ids):
    coordinator = _client(web, "coordinator")
    before = len(copies.ledger(web.store, web.access("staff")))
    for name, (method, template, _) in MATRIX.items():
        if method != "POST":
            continue
        url = template.format(drill=ids[("drill", OWN)], other=ids[("confidential", OTHER)])
        for token in ("forged", ""):
            r = coordinator.post(url, data={**FORMS[name], "csrf": token}, follow_redirects=False)
            assert r.status_code in (403, 422), (name, token, r.status_code)
    assert len(copies.ledger(web.store, web.access("staff"))) == before


def test_a_member_reaches_no_other_districts_copies(web, ids):
    member = _client(web, "member")
    assert member.get(f"/copies/{ids[('confidential', OTHER)]}/marks").status_code == 404
    assert member.get(f"/copies/new?district={OTHER}&edition=drill").status_code == 403
    r = member.post("/copies/new", data={"district": OTHER, "edition": "drill", "csrf": _token(member)})
    assert r.status_code == 403


# --- the print form -----------------------------------------------------------------------------

def test_the_print_form_records_the_copy_and_sends_its_pdf(web):
    member = _client(web, "member")
    page = member.get(f"/copies/new?district={OWN}&edition=confidential")
    assert page.status_code == 200
    html = page.text
    for text in ("提供先", "目的", "根拠", "返却期限", "第49条の13", "名簿の版"):
        assert text in html, text
    assert 'value="consent" checked' in html  # the listed people's consent, preselected
    due = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = member.post("/copies/new", data={
        "csrf": fx.csrf_of(html), "district": OWN, "edition": "confidential", "paper": "A4",
        "holder_kind": "cooperator", "holder_name": "民生委員 木村 花子", "purpose": "normal",
        "basis": ["consent", "ordinance"], "due_back": due, "note": "12月の会議で配布"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    name = re.search(r'filename="([^"]+)"', r.headers["content-disposition"]).group(1)
    copy_id = re.fullmatch(rf"{OWN}-confidential-(K\d{{6}})\.pdf", name).group(1)
    pages = subprocess.run(["pdftotext", "-layout", "-", "-"], input=r.content, capture_output=True,
                           check=True).stdout.decode().split("\f")[:-1]
    assert pages and all(COPY_TEXT.findall(p) == [copy_id] for p in pages)
    view = copies.copy_view(web.store, web.access("staff"), copy_id)
    assert (view.holder, view.holder_kind, view.row["purpose"], view.row["basis"], view.due_back,
            view.row["note"], view.row["made_by"], view.row["made_via"]) == (
        "民生委員 木村 花子", "cooperator", "normal", "consent;ordinance", due, "12月の会議で配布", "member",
        "web:copies_print")
    # what does not fit the law is refused, in Japanese, and nothing is recorded
    before = len(copies.ledger(web.store, web.access("staff")))
    r = member.post("/copies/new", data={"csrf": fx.csrf_of(html), "district": OWN, "edition": "drill",
                                         "purpose": "normal", "basis": "disaster"})
    assert r.status_code == 400 and "災害時の提供" in r.json()["message"]
    assert len(copies.ledger(web.store, web.access("staff"))) == before


def test_the_public_sees_counts_only(web):
    public = _client(web, "anonymous").get("/api/copies/counts").json()
    staff = web.client("staff").get("/api/copies/counts").json()
    assert {r["district_code"] for r in public} == {r["district_code"] for r in staff}
    for pub, ref in zip(public, staff, strict=True):
        assert set(pub) == {"municipality_code", "district_code", "made", "outstanding", "overdue",
                            "superseded"}
        for key in ("made", "outstanding", "overdue", "superseded"):
            assert pub[key] == ("秘匿" if 1 <= ref[key] <= 2 else ref[key])
    assert any(v == "秘匿" for r in public for v in r.values())
    api = web.client("coordinator").get("/api/copies").json()
    assert api and all("person_ids" not in c for c in api)
    assert not re.search(r"P\d{6}", str(api))


# --- scanning, events, marks ------------------------------------------------------------------

def test_a_typed_or_scanned_number_opens_the_copy_and_records_what_happens(web, ids):
    coordinator = _client(web, "coordinator")
    sealed = ids[("sealed", next(d for k, d in ids if k == "sealed"))]
    r = coordinator.get(f"/copies/go?id= {sealed.lower()} ", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/copies/{sealed}"
    assert coordinator.get("/copies/go?id=hello", follow_redirects=False).headers["location"] == \
        "/copies/scan?error=bad_id"
    page = coordinator.get(f"/copies/{sealed}").text
    assert "開封を記録する" in page and "封印名簿" in page
    r = coordinator.post(f"/copies/{sealed}/events", data={
        "csrf": fx.csrf_of(page), "event": "opened", "person": "避難所長", "note": "大雨特別警報",
        "at": dt.datetime.now(copies.JST).strftime("%Y-%m-%dT%H:%M")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/copies/{sealed}?done=opened"
    page = coordinator.get(r.headers["location"]).text
    assert "開封を記録しました" in page and "開封済み" in page and "大雨特別警報" in page
    assert "開封を記録する" not in page  # opened once
    assert copies.copy_view(web.store, web.access("staff"), sealed).state is State.OPENED


def test_paper_drill_marks_are_entered_from_the_copy(web, ids, monkeypatch):
    drill = ids[("drill", OWN)]
    member = _client(web, "member")
    page = member.get(f"/copies/{drill}/marks")
    assert "まだつながっていない" in page.text and "disabled" in page.text
    r = member.post(f"/copies/{drill}/marks", data={"csrf": fx.csrf_of(page.text), "drill_id": "DR1"})
    assert r.status_code == 503
    drills = FakeDrills()
    monkeypatch.setattr(web.app.state, "drill_records", drills, raising=False)
    page = member.get(f"/copies/{drill}/marks").text
    people = re.findall(r'name="tick_confirmed" value="(P\d{6})"', page)
    ok = web.store.read("register", district=OWN)
    assert sorted(people) == sorted(ok[ok["consent"].isin(["consented", "ordinance"])]["person_id"])
    when = dt.datetime.now(copies.JST).strftime("%Y-%m-%dT%H:%M")
    r = member.post(f"/copies/{drill}/marks", data={
        "csrf": fx.csrf_of(page), "drill_id": "DR1", "marked_at": when,
        "tick_confirmed": people[:3], "tick_arrived": people[:1]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/copies/{drill}/marks?entered=4"
    [(drill_id, user, marks)] = drills.written
    assert (drill_id, user) == ("DR1", "member")
    assert sorted((m.person_id, m.tick) for m in marks) == sorted(
        [(p, "confirmed") for p in people[:3]] + [(people[0], "arrived")])
    assert {m.marked_at[:16] for m in marks} == {
        dt.datetime.strptime(when, "%Y-%m-%dT%H:%M").replace(tzinfo=copies.JST).astimezone(dt.UTC)
        .isoformat()[:16]}
    assert "4 件を訓練の記録に入力しました" in member.get(r.headers["location"]).text
    events = copies.copy_view(web.store, web.access("staff"), drill).events
    assert events[-1]["event"] == Event.MARKED
    r = member.post(f"/copies/{drill}/marks", data={"csrf": fx.csrf_of(page), "drill_id": "DR1",
                                                    "tick_confirmed": "<script>"})
    assert r.status_code == 422 and len(drills.written) == 1


def test_the_ledger_page_filters_and_flags(web, ids):
    coordinator = _client(web, "coordinator")
    html = coordinator.get("/copies?show=all").text
    for copy_id in ids.values():
        assert copy_id in html
    out = coordinator.get(f"/copies?district={OWN}&show=out").text
    assert ids[("drill", OWN)] in out and ids[("confidential", OTHER)] not in out
    assert coordinator.get("/copies?district=S99").status_code == 404
    assert coordinator.get("/copies?show=everything").status_code == 422
    year = copies.fiscal_year_of(copies.today_jst())
    report = coordinator.get(f"/copies/report.pdf?district={OWN}&year={year}")
    assert report.status_code == 200 and report.content.startswith(b"%PDF")
    assert report.headers["cache-control"] == "private, no-store"
