"""Role x route matrix: no route and no format shows a personal row, or an unsuppressed small
count, to a role that must not see it.

The routes are the app's own (``app.routes``), so a new route cannot escape: a GET route whose
path parameters the matrix cannot fill fails the test until it is taught them, and every non-GET
route is checked to refuse an anonymous request without a CSRF token or credentials.

Personal rows are detected by what identifies them: register ids (``P000123``) and cooperator
phone numbers anywhere in the whole city, and the names and addresses of the two districts the
URLs are about. What a role may see is :meth:`karte.domain.access.Access.filter_rows` of the whole
layers (the rules of :mod:`karte.domain.access`); everything else is forbidden. Small counts: for the
public roles each JSON, GeoJSON and CSV answer is compared with city staff's answer to the same
URL, and any count of people from 1 to 2 that the public gets unchanged is a failure.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount
from test_api_support import OTHER, OWN, ROLES, bearer, make_app

from api.routes.districts import Edition, Table, WebLayer
from api.routes.ogc import COLLECTIONS
from karte import views
from karte.domain.access import PUBLIC, Access, Level

ROUTE_CODES = (OWN, OTHER)
#: Integer fields that are not counts of people (places, areas, settings, paging).
NOT_PEOPLE = {"small_areas", "concealed_areas", "salons", "cells", "fiscal_year", "max_small",
              "numberMatched", "numberReturned", "status", "radius_m", "area_km2", "code"}
NOT_PEOPLE_PATHS = {("emergency_sites", "count")}
ID_RE = re.compile(r"P\d{6}")
PHONE_RE = re.compile(r"\d{2,4}-\d{3,4}-\d{4}")

pytestmark = pytest.mark.slow  # over the session's demo build


@pytest.fixture(scope="module")
def client(demo, tmp_path_factory):
    app = make_app(demo, tmp_path_factory.mktemp("matrix"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def headers(client):
    return {role: bearer(client, role) for role in ROLES}


@pytest.fixture(scope="module")
def data(client):
    store = client.app.state.store
    register = store.read("register")
    cooperators = store.read("cooperators")
    frames = [store.read(layer) for layer in ("services", "shelters", "emergency_sites", "small_areas",
                                              "districts")]
    public_text = "\n".join(str(v) for frame in frames for col in frame.columns if col != "geometry"
                            for v in frame[col].dropna().astype(str))
    return register, cooperators, _nows(public_text)


def _access(role: str) -> Access:
    spec = ROLES[role]
    if spec is None:
        return PUBLIC
    return Access(user=spec[0], level=Level(spec[1]), district=spec[2])


def _nows(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _forbidden(role: str, data) -> dict:
    """What ``role`` must not see: register ids and cooperator phones of the whole city, names
    and addresses of the two districts' rows (minus what it may see and what is public)."""
    register, cooperators, public = data
    access = _access(role)
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


def _routes(app) -> list[tuple[str, str, set[str]]]:
    """(path, name, methods) of every route of the app, included routers flattened (FastAPI
    0.16x keeps included routers as objects; ``iter_route_contexts`` walks them)."""
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        items = [(c.path, c.name, set(c.methods or ()), c.route) for c in
                 routing.iter_route_contexts(app.router.routes)]
    else:  # older FastAPI: a flat list
        items = [(r.path, r.name, set(getattr(r, "methods", None) or ()), r) for r in app.routes]
    return [(path, name, methods) for path, name, methods, route in items
            if not isinstance(route, Mount) and name != "static"]


def _urls(app, client) -> list[tuple[str, str]]:
    """(route name, URL) for every GET route of the app, its path parameters filled in."""
    feature_ids = {}
    for cid in COLLECTIONS:
        fc = client.get(f"/ogc/collections/{cid}/items?limit=1").json()
        feature_ids[cid] = fc["features"][0]["id"] if fc.get("features") else "none"
    fill = {"code": ROUTE_CODES, "layer": [v.value for v in WebLayer], "table": [v.value for v in Table],
            "collection_id": list(COLLECTIONS)}
    out = []
    for path, name, methods in _routes(app):
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
            urls = [u.replace("{feature_id}", feature_ids[u.split("/")[3]]) for u in urls]
        if name == "sheet_pdf":
            urls = [f"{u}?edition={e.value}" for u in urls for e in Edition]
        out += [(name, u) for u in urls]
    return out


def _text(response) -> str:
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/pdf"):
        done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=response.content,
                              capture_output=True, check=True)
        return done.stdout.decode("utf-8", "replace")
    return response.content.decode("utf-8-sig", "replace")


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


def test_every_get_route_every_role_no_personal_leak_no_small_count(client, headers, data):
    urls = _urls(client.app, client)
    names = {name for name, _ in urls}
    assert {"karte", "district_layer", "city_layer", "karte_csv", "sheet_pdf", "ogc_items",
            "ogc_item"} <= names
    forbidden = {role: _forbidden(role, data) for role in ROLES}
    assert forbidden["anonymous"]["ids"] and forbidden["anonymous"]["words"]  # the check has teeth
    failures, checked = [], 0
    for _, url in urls:
        staff = client.get(url, headers=headers["city_staff"])
        assert staff.status_code < 500, (url, staff.text[:200])
        for role in ROLES:
            r = staff if role == "city_staff" else client.get(url, headers=headers[role])
            assert r.status_code < 500, (role, url, r.text[:200])
            if r.status_code >= 300:
                continue
            checked += 1
            failures += [f"{role} {url}: {leak}" for leak in _leaks(_text(r), forbidden[role])]
            if role in ("anonymous", "public") and staff.status_code == 200:
                pub, ref = _parsed(r), _parsed(staff)
                if isinstance(pub, list) and pub and isinstance(pub[0], dict) and "csv" in url:
                    pub, ref = _csv_ints(pub), _csv_ints(ref)
                if pub is not None:
                    failures += [f"{role} {url}: small count at {p}" for p in _small_counts(pub, ref)]
    assert checked > 200
    assert not failures, "\n".join(failures[:40])


def test_the_leak_detector_finds_a_planted_row(client, headers, data):
    """The detector itself: city staff's register layer of the other district, read as if by the
    district member, must be reported."""
    r = client.get(f"/api/districts/{OTHER}/layers/register.geojson", headers=headers["city_staff"])
    assert r.status_code == 200
    assert _leaks(_text(r), _forbidden("district_member", data))
    staff = client.get(f"/api/districts/{OWN}", headers=headers["city_staff"]).json()
    assert _small_counts(staff, staff), "the demo karte has small counts"


@pytest.mark.parametrize("role", ["anonymous", "public"])
def test_views_give_the_public_no_personal_rows(client, role):
    store = client.app.state.store
    for layer in sorted(views.PERSONAL):
        assert len(views.layer_view(store, layer, _access(role))) == 0


def test_every_other_method_refuses_anonymous_requests_without_csrf(client):
    others = [(path, methods) for path, _, methods in _routes(client.app) if methods - {"GET", "HEAD"}]
    assert others, "the app has POST routes (login, token)"
    for route_path, methods in others:
        for method in sorted(methods - {"GET", "HEAD"}):
            path = re.sub(r"{\w+}", OWN, route_path)
            r = client.request(method, path, data={}, follow_redirects=False)
            assert r.status_code in (303, 400, 401, 403, 405, 422), (method, path, r.status_code)
            if r.status_code == 303:
                assert "/login" in r.headers["location"], (method, path)
