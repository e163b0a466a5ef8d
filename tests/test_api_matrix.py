"""Role x route matrix, on the GeoPackage and on the PostGIS store: no route and no format shows a
personal row, or an unsuppressed small count, to a role that must not see it.

The routes are the app's own (``app.routes``), so a new route cannot escape: a GET route whose
path parameters the matrix cannot fill fails the test until it is taught them, every file the
app serves under ``/static`` (Leaflet, ``karte-personal.js``) is fetched too, and every non-GET
route is checked to refuse an anonymous request without a CSRF token or credentials.

Personal rows are detected by what identifies them: register ids (``P000123``) and cooperator
phone numbers anywhere in the whole city, and the names and addresses of the two districts the
URLs are about, in any answer (JSON escapes written back as letters, PDF text from pdftotext).
What a role may see is :meth:`karte.domain.access.Access.filter_rows` of the whole layers (the
rules of :mod:`karte.domain.access`); everything else is forbidden. Small counts: for the public
roles each JSON, GeoJSON and CSV answer is compared with city staff's answer to the same URL, and
any count of people from 1 to 2 that the public gets unchanged is a failure.

The district page sends the viewer's personal layers as JSON (``karte-personal``): exactly the
located rows the role may see of that district, and nothing at all to the public or to a member
of another district. A district member reaches no other district's rows, read or written, by any
route.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN, ROLES
from fastapi.testclient import TestClient
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.routes.districts import Edition, Table, WebLayer
from api.routes.ogc import COLLECTIONS
from karte.domain.layers import Layer
from karte.render.district_map import LAYER_NAMES
from karte.services.layers import PERSONAL, layer_view

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow  # over the session's demo build

ROUTE_CODES = (OWN, OTHER)
#: Integer fields that are not counts of people (places, areas, settings, paging).
NOT_PEOPLE = {"small_areas", "concealed_areas", "salons", "cells", "fiscal_year", "max_small",
              "numberMatched", "numberReturned", "status", "radius_m", "area_km2", "code", "meetings",
              "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength"}  # OpenAPI schema bounds
NOT_PEOPLE_PATHS = {("emergency_sites", "count")}
ID_RE = re.compile(r"(?<![A-Z])P\d{6}")  # not the P of a supporter number (SP000001)
PHONE_RE = re.compile(r"\d{2,4}-\d{3,4}-\d{4}")
#: Roles that see the personal rows of a district (``Access.may_see_district_rows``).
SEES = {(role, code): role in ("coordinator", "staff") or (role == "member" and code == OWN)
        for role in ROLES for code in ROUTE_CODES}


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def web(request, demo, tmp_path_factory) -> fx.Api:
    """The app over a private copy of the demo: a GeoPackage, or the demo imported into PostGIS."""
    folder = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "gpkg":
        yield fx.make_api(fx.copy_demo(demo, folder), folder)
        return
    from pg_fixtures import reset

    from karte.store.cli import import_store
    from karte.store.postgis import PostGISStore

    reset(request.getfixturevalue("pg_admin_url"))
    store = PostGISStore(request.getfixturevalue("pg_app_url"))
    import_store(demo[1] / "karte.gpkg", store)
    yield fx.make_api(store, folder)
    store.close()


@pytest.fixture(scope="module")
def client(web):
    with TestClient(web.app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def headers(web):
    return {role: web.headers(role) for role in ROLES}


@pytest.fixture(scope="module")
def data(web):
    store = web.store
    register = store.read("register")
    cooperators = store.read("cooperators")
    frames = [store.read(layer) for layer in ("services", "shelters", "emergency_sites", "small_areas",
                                              "districts")]
    public_text = "\n".join(str(v) for frame in frames for col in frame.columns if col != "geometry"
                            for v in frame[col].dropna().astype(str))
    return register, cooperators, _nows(public_text)


def _nows(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _forbidden(web: fx.Api, role: str, data) -> dict:
    """What ``role`` must not see: register ids and cooperator phones of the whole city, names
    and addresses of the two districts' rows (minus what it may see and what is public)."""
    register, cooperators, public = data
    access = web.access(role)
    seen_reg = access.filter_rows("register", register)
    seen_coop = access.filter_rows("cooperators", cooperators)
    ids = set(register["person_id"]) - set(seen_reg["person_id"])
    allowed_phones = set(seen_coop["phone"].astype(str))
    phones = {p for p in set(cooperators["phone"].astype(str)) - allowed_phones if p not in public}
    allowed_text = "\n".join(_nows(str(v)) for frame, cols in ((seen_reg, ("name", "kana", "address")),
                                                               (seen_coop, ("name",)))
                             for c in cols for v in frame[c])
    all_names = list(register["name"]) + list(cooperators["name"])
    unique = {n for n in all_names if all_names.count(n) == 1} if len(all_names) < 20000 else set()
    words = set()
    for frame, seen, key in ((register, seen_reg, "person_id"), (cooperators, seen_coop, "cooperator_id")):
        hidden = frame[frame["district_code"].isin(ROUTE_CODES) & ~frame[key].isin(seen[key])]
        for row in hidden.itertuples():
            if row.name in unique:
                words.add(_nows(row.name))
            if key == "person_id":
                words.add(_nows(str(row.address)).replace("青森県青森市", ""))
    words = {w for w in words if len(w) >= 3 and w not in allowed_text and w not in public}
    return {"ids": ids, "phones": phones, "words": words}


def _routes(app) -> list[tuple[str, str, set[str], object]]:
    """(path, name, methods, route) of every route of the app, included routers flattened
    (FastAPI 0.16x keeps included routers as objects; ``iter_route_contexts`` walks them)."""
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        return [(c.path, c.name, set(c.methods or ()), c.route) for c in
                routing.iter_route_contexts(app.router.routes)]
    return [(r.path, r.name, set(getattr(r, "methods", None) or ()), r) for r in app.routes]


def _static_urls(app) -> list[str]:
    """Every file the app serves from a mounted static folder (``/static/karte-personal.js`` …)."""
    out = []
    for path, _, _, route in _routes(app):
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            folder = route.app.directory
            out += [f"{path}/{f.relative_to(folder).as_posix()}"
                    for f in sorted(Path(folder).rglob("*")) if f.is_file()]
    return out


def _urls(app, client) -> list[tuple[str, str]]:
    """(route name, URL) for every GET route of the app, its path parameters filled in, and every
    static file."""
    feature_ids = {}
    for cid in COLLECTIONS:
        fc = client.get(f"/ogc/collections/{cid}/items?limit=1").json()
        feature_ids[cid] = fc["features"][0]["id"] if fc.get("features") else "none"
    fill = {"code": ROUTE_CODES, "layer": [v.value for v in WebLayer], "table": [v.value for v in Table],
            "collection_id": list(COLLECTIONS), "copy_id": ["K000001"],
            "supporter_id": ["SP000001"], "municipality": ["02201"],
            # a small area (町丁・字) of each district: the outreach place pages
            "key_code": [str(app.state.store.read("small_areas", district=c)["key_code"].iloc[0])
                         for c in ROUTE_CODES]}
    out = []
    for path, name, methods, route in _routes(app):
        if isinstance(route, Mount):
            assert isinstance(route.app, StaticFiles), f"mount {path}: teach the matrix its URLs"
            continue
        if "GET" not in methods or name == "openapi":
            continue
        params = re.findall(r"{(\w+)}", path)
        unknown = [p for p in params if p not in fill and p != "feature_id"]
        assert not unknown, f"route {path}: teach the matrix values for {unknown}"
        urls = [path]
        for p in params:
            if p == "feature_id":
                continue
            urls = [u.replace("{" + p + "}", v) for u in urls for v in fill[p]]
        if "feature_id" in params:
            urls = [u.replace("{feature_id}", feature_ids[u.split("/collections/")[1].split("/")[0]])
                    for u in urls]
        if name == "sheet_pdf":
            urls = [f"{u}?edition={e.value}" for u in urls for e in Edition]
        out += [(name, u) for u in urls]
    return out + [("static", u) for u in _static_urls(app)]


def _leaks(text: str, forbidden: dict) -> list[str]:
    found = [f"register id {i}" for i in set(ID_RE.findall(text)) & forbidden["ids"]]
    found += [f"cooperator phone {p}" for p in set(PHONE_RE.findall(text)) & forbidden["phones"]]
    flat = _nows(text)
    found += [f"name/address {w}" for w in forbidden["words"] if w in flat]
    return found


def _small_counts(public, staff, path=()) -> list[str]:
    """Paths where the public answer shows the same count of people 1..2 as city staff's."""
    out = []
    if isinstance(public, dict) and isinstance(staff, dict):
        for k, v in public.items():
            if k in staff:
                out += _small_counts(v, staff[k], (*path, k))
    elif isinstance(public, list) and isinstance(staff, list) and len(public) == len(staff):
        for i, (a, b) in enumerate(zip(public, staff, strict=True)):
            out += _small_counts(a, b, (*path, i))
    elif (isinstance(public, int) and not isinstance(public, bool) and public == staff
          and 1 <= public <= 2):
        key = next((p for p in reversed(path) if isinstance(p, str)), "")
        keys = tuple(p for p in path if isinstance(p, str))
        if key not in NOT_PEOPLE and keys[-2:] not in NOT_PEOPLE_PATHS:
            out.append("/".join(map(str, path)))
    return out


def _parsed(response):
    kind = response.headers.get("content-type", "")
    if "json" in kind:
        return response.json()
    if kind.startswith("text/csv"):
        return [dict(r) for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))]
    return None


def _csv_ints(rows):
    return [{k: (int(v) if v.isdigit() else v) for k, v in r.items()} for r in rows]


def test_every_get_route_every_role_no_personal_leak_no_small_count(web, client, headers, data):
    urls = _urls(client.app, client)
    names = {name for name, _ in urls}
    assert {"karte", "district_layer", "city_layer", "karte_csv", "sheet_pdf", "ogc_items",
            "ogc_item", "district_page", "city_page", "outreach_page", "static"} <= names
    assert {"/static/karte-personal.js", "/static/leaflet/leaflet.js"} <= {u for _, u in urls}
    forbidden = {role: _forbidden(web, role, data) for role in ROLES}
    assert forbidden["anonymous"]["ids"] and forbidden["anonymous"]["words"]  # the check has teeth
    failures, checked = [], 0
    for name, url in urls:
        staff = client.get(url, headers=headers["staff"])
        assert staff.status_code < 500, (url, staff.text[:200])
        for role in ROLES:
            r = staff if role == "staff" else client.get(url, headers=headers[role])
            assert r.status_code < 500, (role, url, r.text[:200])
            if name == "static":
                assert r.status_code == 200, (role, url)  # the map assets are public
            if r.status_code >= 300:
                continue
            checked += 1
            failures += [f"{role} {url}: {leak}" for leak in _leaks(fx.body_text(r), forbidden[role])]
            if role in ("anonymous", "public") and staff.status_code == 200:
                pub, ref = _parsed(r), _parsed(staff)
                if isinstance(pub, list) and pub and isinstance(pub[0], dict) and "csv" in url:
                    pub, ref = _csv_ints(pub), _csv_ints(ref)
                if pub is not None:
                    failures += [f"{role} {url}: small count at {p}" for p in _small_counts(pub, ref)]
    assert checked > 250
    assert not failures, "\n".join(failures[:40])


def test_the_leak_detector_finds_a_planted_row(web, client, headers, data):
    """The detector itself: city staff's register layer of the other district, read as if by the
    district member, must be reported; and so must the staff's district page (names only in its
    embedded JSON, escaped as \\uXXXX)."""
    r = client.get(f"/api/districts/{OTHER}/layers/register.geojson", headers=headers["staff"])
    assert r.status_code == 200
    assert _leaks(fx.body_text(r), _forbidden(web, "member", data))
    page = web.browser("staff").get(f"/districts/{OTHER}")
    assert _leaks(fx.body_text(page), _forbidden(web, "member", data))
    embedded = fx.PERSONAL_JSON.search(page.text).group(1)  # Jinja's tojson escapes Japanese
    assert _leaks(fx.unescape(embedded), _forbidden(web, "member", data))
    staff = client.get(f"/api/districts/{OWN}", headers=headers["staff"]).json()
    assert _small_counts(staff, staff), "the demo karte has small counts"


@pytest.mark.parametrize("role", ["anonymous", "public"])
def test_services_give_the_public_no_personal_rows(web, role):
    for layer in sorted(PERSONAL):
        assert len(layer_view(web.store, layer, web.access(role))) == 0


def test_every_other_method_refuses_anonymous_requests_without_csrf(client):
    others = [(path, methods) for path, _, methods, route in _routes(client.app)
              if not isinstance(route, Mount) and methods - {"GET", "HEAD"}]
    assert others, "the app has POST routes (login, token, outreach decisions)"
    for route_path, methods in others:
        for method in sorted(methods - {"GET", "HEAD"}):
            path = re.sub(r"{\w+}", OWN, route_path)
            r = client.request(method, path, data={}, follow_redirects=False)
            assert r.status_code in (303, 400, 401, 403, 405, 422), (method, path, r.status_code)
            if r.status_code == 303:
                assert "/login" in r.headers["location"], (method, path)


def _located(frame):
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty]


@pytest.mark.parametrize("code", ROUTE_CODES)
@pytest.mark.parametrize("role", ROLES)
def test_district_page_sends_personal_json_only_to_who_may_see_the_district(web, data, role, code):
    """The page's ``karte-personal`` element: none for the public and for another district's
    member; else exactly the located rows this role may see, as plain-text lines, no ids."""
    register, cooperators, _ = data
    html = web.browser(role).get(f"/districts/{code}").text
    sent = fx.personal_json(html)
    if not SEES[(role, code)]:
        assert sent is None and "karte-personal" not in html, (role, code)
        return
    assert sent is not None, (role, code)
    assert "/static/karte-personal.js" in html and "karteAddPersonal(" in html
    layers = {layer["name"]: layer for layer in sent["layers"]}
    assert set(layers) == {LAYER_NAMES["register"], LAYER_NAMES["cooperators"]}
    access = web.access(role)
    for name, frame, rows in ((LAYER_NAMES["register"], register, "register"),
                              (LAYER_NAMES["cooperators"], cooperators, "cooperators")):
        seen = _located(access.filter_rows(rows, frame[frame["district_code"] == code]))
        features = layers[name]["geojson"]["features"]
        assert len(features) == len(seen) > 0, (role, code, name)
        assert sorted(f["properties"]["popup"][0] for f in features) == sorted(seen["name"])
        for f in features:
            assert set(f["properties"]) == {"k", "popup"}  # no id, no consent, no phone field
            lines = [layers[name]["tips"][f["properties"]["k"]], *f["properties"]["popup"]]
            assert all(isinstance(t, str) and "<" not in t and "&lt;" not in t for t in lines)


def test_a_member_reaches_no_other_districts_rows_through_any_route(web, headers):
    """Read: every route that serves personal rows refuses the other district or leaves them out;
    write: a decision on the other district's open suggestion is refused and nothing is stored.
    No access-log row names the other district for the member."""
    from karte.services import outreach

    store = web.store
    log_before = len(store.audit_log())
    member = TestClient(web.app, raise_server_exceptions=False, headers=headers["member"])
    assert "personal" not in member.get(f"/api/districts/{OTHER}").json()
    for layer in sorted(PERSONAL):
        assert member.get(f"/api/districts/{OTHER}/layers/{layer}.geojson").status_code == 403
        assert member.get(f"/api/districts/{OTHER}/tables/{layer}.csv").status_code == 403
        city = member.get(f"/api/layers/{layer}.geojson")
        assert city.status_code == 200
        assert {f["properties"]["district_code"] for f in city.json()["features"]} == {OWN}
    for edition in ("confidential", "drill"):
        assert member.get(f"/districts/{OTHER}/sheet.pdf?edition={edition}").status_code == 403
    browser = web.browser("member")
    assert fx.personal_json(browser.get(f"/districts/{OTHER}").text) is None
    assert browser.get("/outreach", params={"district": OTHER},
                       headers={"accept": "text/html"}).status_code == 403

    # an open suggestion of another district (the coordinator's view: what could be decided)
    found = outreach.suggestions(store, web.access("coordinator"))
    pair = found[found["district_code"] != OWN].iloc[0]
    decided = _decisions(store)
    token = fx.csrf_of(browser.get(f"/districts/{OWN}").text)
    r = browser.post("/outreach/decisions", data={
        "person_id": pair["person_id"], "cooperator_id": pair["cooperator_id"], "decision": "confirmed",
        "district": pair["district_code"], "csrf": token}, headers={"accept": "text/html"},
        follow_redirects=False)
    assert r.status_code == 403
    assert _decisions(store) == decided

    log = store.audit_log().iloc[log_before:]
    mine = log[log["actor"] == "member"]
    assert len(mine) > 0  # the city layers were read (own district only) and logged
    assert not set(mine["district"].dropna()) - {OWN}
    assert set(mine["action"]) == {"read"}


def _decisions(store) -> int:
    return len(store.read(Layer.DECISIONS)) if Layer.DECISIONS in store.layers() else 0
