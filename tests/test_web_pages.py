"""The Japanese HTML pages through FastAPI's TestClient over a copy of the demo store.

What they must show (status, Japanese text, the map's layers), what they must not (register and
cooperator names in public pages, personal layers for users who may not see them, any URL of a
CDN), the outreach page's access and its CSRF-checked decisions, and the page-size budget.
"""

from __future__ import annotations

import re
import shutil

import pytest

from karte.domain.access import SUPPRESSED, Access, Level

pytestmark = pytest.mark.slow
#: PostGIS fixtures (the decisions layer is kept by both stores).
pytest_plugins = ["pg_fixtures"]

PASSWORDS = {"coord": "coordinator-pass-1", "member": "member-pass-12345", "staff": "staff-pass-123456"}
#: The only absolute URLs a page may hold: the GSI tile template and its attribution link.
ALLOWED_URLS = {"https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png",
                "https://maps.gsi.go.jp/development/ichiran.html"}
#: Page-size budget (bytes, uncompressed HTML with the map's data inline).
BUDGET = 300_000


@pytest.fixture(scope="module")
def site(demo, tmp_path_factory):
    """(app, store) over a private copy of the demo store (the outreach tests write to it)."""
    from api.app import create_app
    from api.deps import WebSettings
    from karte.store import GeoPackageStore
    from karte.users import UserFile

    folder = tmp_path_factory.mktemp("pages")
    shutil.copy(demo[1] / "karte.gpkg", folder / "karte.gpkg")
    users = UserFile(folder / "users.json")
    users.add("coord", PASSWORDS["coord"], level="coordinator")
    users.add("member", PASSWORDS["member"], level="district_member", district="S05")
    users.add("staff", PASSWORDS["staff"], level="city_staff")
    settings = WebSettings(workspace=folder, users_file=folder / "users.json", basemap="gsi_pale")
    store = GeoPackageStore(folder / "karte.gpkg")
    return create_app(settings, store=store, warm=False), store


@pytest.fixture(scope="module")
def names(site):
    """Every name in the register and the cooperator roster (none may reach a public page)."""
    _, store = site
    return {str(n) for layer in ("register", "cooperators") for n in store.read(layer)["name"]}


def client(app, user: str | None = None):
    from fastapi.testclient import TestClient

    c = TestClient(app)
    if user is not None:
        page = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = c.post("/login", data={"username": user, "password": PASSWORDS[user], "csrf": token,
                                   "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
    return c


def _listed(register, html: str):
    """For each register row: is it in the page's register table (its name beside its address)?"""
    import numpy as np

    return np.array([f"<td>{r.name}</td><td>{str(r.address).removeprefix('青森県青森市')}</td>" in html
                     for r in register.itertuples()], dtype=bool)


def absolute_urls(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>)\\]+", text))


def csrf_of(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


# --- the city page --------------------------------------------------------------------------------

@pytest.mark.parametrize("measure, label", [("coverage", "サロン徒歩圏カバー率"),
                                            ("gap_rate", "避難支援に空白がある"),
                                            ("ageing", "高齢化率")])
def test_city_page_each_measure(site, names, measure, label):
    app, _ = site
    r = client(app).get("/", params={"measure": measure})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "青森市 地区カルテ 全体図" in html and label in html
    assert f'<option value="{measure}" selected>' in html
    assert html.count('href="/districts/S') >= 40  # every district linked from the table
    assert '"/districts/{code}"' not in html and "window.location.href" in html  # click-through
    assert absolute_urls(html) <= ALLOWED_URLS
    assert "/static/leaflet/leaflet.js" in html
    assert not [n for n in names if n in html]
    assert len(r.content) < BUDGET


def test_city_page_suppressed_rates_are_shown_as_such(site):
    from karte import views
    from karte.domain.access import PUBLIC

    app, store = site
    table = views.districts_table(store, PUBLIC)
    hidden = table[table["at_risk"] == SUPPRESSED]
    html = client(app).get("/", params={"measure": "gap_rate"}).text
    for row in hidden.itertuples():
        cell = re.search(rf'{re.escape(row.district_name)}</a></td>\s*<td class="n">([^<]*)</td>', html)
        assert cell and cell.group(1) == SUPPRESSED


def test_bad_measure_is_a_clear_4xx(site):
    app, _ = site
    r = client(app).get("/", params={"measure": "nonsense"}, headers={"accept": "text/html"})
    assert r.status_code == 422
    assert "Traceback" not in r.text


def test_no_basemap_means_no_url_at_all(demo, tmp_path):
    """``KARTE_BASEMAP=none``: the maps draw on a plain background and name no server at all."""
    from api.app import create_app
    from api.deps import WebSettings
    from karte.store import GeoPackageStore

    settings = WebSettings(workspace=tmp_path, users_file=tmp_path / "users.json", basemap="none")
    app = create_app(settings, store=GeoPackageStore(demo[1] / "karte.gpkg"), warm=False)
    c = client(app)
    for path in ("/", "/districts/S05"):
        html = c.get(path).text
        assert absolute_urls(html) == set(), path
        assert "地理院タイル" not in html and "L.tileLayer" not in html


def test_leaflet_is_served_by_the_app(site):
    app, _ = site
    c = client(app)
    assert c.get("/static/leaflet/leaflet.js").status_code == 200
    assert c.get("/static/leaflet/leaflet.css").status_code == 200


# --- the district page ----------------------------------------------------------------------------

def test_district_page_public(site, names):
    from karte import views
    from karte.domain.access import PUBLIC

    app, store = site
    r = client(app).get("/districts/S05")
    assert r.status_code == 200
    html = r.text
    for text in ("地区カルテ", "基礎情報（市全体との比較）", "避難支援の空白", "共助協力者", "共助サービス",
                 "指定避難所", "地区の境界", "サロンの徒歩圏", "徒歩圏外の高齢者がいる区域",
                 "/districts/S05/sheet.pdf?edition=public", "/api/districts/S05/tables/base.csv"):
        assert text in html, text
    for hidden in ("要支援者（空白の種類で色分け）", "edition=confidential", "tables/register.csv",
                   "協力者名簿"):
        assert hidden not in html, hidden
    assert not [n for n in names if n in html]
    assert absolute_urls(html) <= ALLOWED_URLS
    assert len(r.content) < BUDGET
    karte = views.karte_view(store, "S05", PUBLIC)
    if any(g["count"] == SUPPRESSED for g in karte["gaps"]):
        assert SUPPRESSED in html


def test_every_public_district_page_hides_small_counts(site, names):
    """Wherever the public karte suppresses a gap count, the page shows 秘匿 in that row."""
    from karte import views
    from karte.domain.access import PUBLIC

    app, store = site
    c = client(app)
    checked = 0
    for code in views.district_codes(store):
        gaps = views.karte_view(store, code, PUBLIC)["gaps"]
        small = [g for g in gaps if g["count"] == SUPPRESSED]
        if not small:
            continue
        html = c.get(f"/districts/{code}").text
        assert not [n for n in names if n in html]
        for g in small:
            row = re.search(rf"<td>{re.escape(g['label'])}</td><td class=\"n\">([^<]*)</td>"
                            r"<td class=\"n\">([^<]*)</td>", html)
            assert row, g["label"]
            assert row.group(1) == SUPPRESSED and row.group(2) == "—"
        checked += 1
    assert checked > 0, "the demo should have districts with small gap counts"


def test_district_page_for_a_coordinator_lists_consented_people_only(site):
    app, store = site
    before = len(store.audit_log())
    html = client(app, "coord").get("/districts/S05").text
    register = store.read("register", district="S05")
    shareable = register["consent"].isin(["consented", "ordinance"])
    assert "要支援者（空白の種類で色分け）" in html and "共助協力者" in html
    listed = _listed(register, html)  # (synthetic names repeat: a person is a name and address)
    assert listed[shareable.to_numpy()].all() and len(listed) > 0
    assert not listed[~shareable.to_numpy()].any()
    assert "edition=confidential" in html and "tables/register.csv" in html
    log = store.audit_log().iloc[before:]
    assert set(log["layer"]) == {"register", "cooperators"}
    assert set(log["actor"]) == {"coord"} and (log["district"] == "S05").all()
    assert log["route"].str.contains("district_page").all()


def test_district_member_sees_own_district_only(site, names):
    app, store = site
    c = client(app, "member")
    own = c.get("/districts/S05").text
    other = c.get("/districts/S06").text
    assert "要支援者（空白の種類で色分け）" in own
    assert "要支援者（空白の種類で色分け）" not in other and "共助協力者名簿" not in other
    assert not _listed(store.read("register", district="S06"), other).any()
    assert _listed(store.read("register", district="S05").query("consent == 'consented'"), own).all()
    phones = [p for p in store.read("cooperators", district="S06")["phone"] if isinstance(p, str) and p]
    assert phones and not [p for p in phones if p in other]


def test_city_staff_see_unconsented_people(site):
    app, store = site
    html = client(app, "staff").get("/districts/S05").text
    register = store.read("register", district="S05")
    refused = (register["consent"] == "refused").to_numpy()
    assert refused.any() and _listed(register, html)[refused].all()
    assert "名簿提供の同意がない" in html


@pytest.mark.parametrize("path, status", [("/districts/S99", 404), ("/districts/S05;drop", 422),
                                          ("/districts/" + "A" * 40, 422)])
def test_bad_district_is_a_clear_4xx(site, path, status):
    app, _ = site
    r = client(app).get(path, headers={"accept": "text/html"})
    assert r.status_code == status
    assert "Traceback" not in r.text
    if status == 404:
        assert "S99" in r.text and "ありません" in r.text


# --- the outreach page ----------------------------------------------------------------------------

def test_outreach_needs_a_coordinator(site):
    app, _ = site
    r = client(app).get("/outreach", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/outreach")
    r = client(app, "member").get("/outreach", headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "コーディネーター" in r.text


def test_outreach_page_ranks_and_suggests(site):
    from karte import outreach

    app, store = site
    c = client(app, "coord")
    r = c.get("/outreach")
    assert r.status_code == 200
    html = r.text
    assert "訪問の優先順位" in html and "避難支援者の候補" in html
    assert absolute_urls(html) <= ALLOWED_URLS
    assert len(r.content) < BUDGET
    ranking = outreach.outreach_ranking(store, Access("coord", Level.COORDINATOR))
    first = ranking.iloc[0]
    assert first["rank"] == 1 and f"{first['score']:.1f}" in html and str(first["name"]) in html
    assert html.count('name="decision" value="confirmed"') == min(
        len(outreach.suggestions(store, Access("coord", Level.COORDINATOR))), 40)


def test_outreach_decision_needs_csrf_and_is_recorded(site):
    from karte import outreach

    app, store = site
    coord = Access("coord", Level.COORDINATOR, route="test")
    c = client(app, "coord")
    code = outreach.suggestions(store, coord)["district_code"].value_counts().index[0]
    page = c.get("/outreach", params={"district": code})
    open_ = outreach.suggestions(store, coord, district=code)
    assert len(open_) >= 2, "the demo should suggest supporters"
    first, second = open_.iloc[0], open_.iloc[1]
    form = {"person_id": first["person_id"], "cooperator_id": first["cooperator_id"],
            "decision": "confirmed", "district": code}
    supporters_before = dict(zip(*store.read("register")[["person_id", "supporter_ids"]].to_numpy().T,
                                 strict=True))

    r = c.post("/outreach/decisions", data={**form, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert outreach.DECISIONS_LAYER not in store.layers() or first["person_id"] not in set(
        outreach.decisions(store, coord)["person_id"])

    r = c.post("/outreach/decisions", data={**form, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/outreach?done=confirmed&district={code}"
    made = outreach.decisions(store, coord)
    mine = made[made["person_id"] == first["person_id"]]
    assert list(mine["decision"]) == ["confirmed"] and list(mine["decided_by"]) == ["coord"]
    assert first["person_id"] not in set(outreach.suggestions(store, coord, district=code)["person_id"])
    # nothing is assigned by the web: the register is as it was
    assert supporters_before == dict(zip(*store.read("register")[["person_id", "supporter_ids"]]
                                         .to_numpy().T, strict=True))

    # a rejection, then the same pair again: it is no longer an open suggestion
    reject = {**form, "person_id": second["person_id"], "cooperator_id": second["cooperator_id"],
              "decision": "rejected", "csrf": csrf_of(page.text)}
    assert c.post("/outreach/decisions", data=reject, follow_redirects=False).status_code == 303
    again = c.post("/outreach/decisions", data=reject, headers={"accept": "text/html"})
    assert again.status_code == 404
    after = c.get("/outreach", params={"district": code, "done": "rejected"}).text
    assert "見送りとして記録しました" in after and "確認済み" in after


def test_outreach_decision_by_a_district_member_is_refused(site):
    app, _ = site
    c = client(app, "member")
    token = csrf_of(c.get("/districts/S05").text)
    r = c.post("/outreach/decisions", data={"person_id": "P000001", "cooperator_id": "C00001",
                                            "decision": "confirmed", "csrf": token},
               headers={"accept": "text/html"})
    assert r.status_code == 403


def test_outreach_bad_form_is_a_clear_4xx(site):
    app, _ = site
    c = client(app, "coord")
    token = csrf_of(c.get("/outreach", params={"district": "S05"}).text)
    r = c.post("/outreach/decisions", data={"person_id": "P1", "cooperator_id": "C1",
                                            "decision": "maybe", "csrf": token})
    assert r.status_code == 422
    r = c.get("/outreach", params={"district": "S99"}, headers={"accept": "text/html"})
    assert r.status_code == 404


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def any_store(request, tmp_path):
    from karte.store import GeoPackageStore

    if request.param == "gpkg":
        return GeoPackageStore(tmp_path / "karte.gpkg")
    return request.getfixturevalue("pg_store")


def test_decisions_are_appended_in_both_stores(any_store):
    from karte import outreach

    first = {"person_id": "P000001", "cooperator_id": "C00002", "district_code": "S01",
             "decision": "confirmed", "distance_m": 120.0}
    second = {**first, "person_id": "P000003", "decision": "rejected", "distance_m": 80.5}
    assert outreach.append_decision(any_store, first, actor="coord", route="test")["decision_id"] == "D000001"
    outreach.append_decision(any_store, second, actor="staff", route="test")
    table = any_store.read(outreach.DECISIONS_LAYER)
    assert list(table["decision_id"]) == ["D000001", "D000002"]
    assert list(table["person_id"]) == ["P000001", "P000003"]
    assert list(table["decision"]) == ["confirmed", "rejected"]
    assert list(table["decided_by"]) == ["coord", "staff"]
    assert [float(v) for v in table["distance_m"]] == [120.0, 80.5]
    log = any_store.audit_log()
    # (PostGIS also logs the store's own read of the decisions before each rewrite)
    mine = log[(log["layer"] == outreach.DECISIONS_LAYER) & log["actor"].isin(["coord", "staff"])]
    assert list(mine["actor"])[-2:] == ["coord", "staff"]
