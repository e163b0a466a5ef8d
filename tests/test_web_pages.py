"""The Japanese HTML pages through FastAPI's TestClient over a copy of the demo store.

What they must show (status, Japanese text, the map's layers), what they must not (register and
cooperator names in public pages, personal layers for users who may not see them, any URL of a
CDN), the outreach page's access and its CSRF-checked decisions, and the page-size budget.

The district map is drawn once per build and audience and holds no personal data; the viewer's
personal layers travel as JSON in the page (``<script id="karte-personal">``, read with
:func:`api_fixtures.personal_json`) and are added in the browser (``karte-personal.js``).
Users and logins: :mod:`api_fixtures` (one user per role, logged in through the form).
"""

from __future__ import annotations

import re

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN, csrf_of

from karte.domain.access import SUPPRESSED
from karte.domain.layers import Layer
from karte.render.district_map import LAYER_NAMES

pytestmark = pytest.mark.slow

#: The only absolute URLs a page may hold: the GSI tile template and its attribution link.
ALLOWED_URLS = {"https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png",
                "https://maps.gsi.go.jp/development/ichiran.html"}
#: Page-size budget (bytes, uncompressed HTML; the district map's script comes apart, the city map inline).
BUDGET = 300_000


@pytest.fixture(scope="module")
def site(demo, tmp_path_factory) -> fx.Api:
    """The app over a private copy of the demo store (the outreach tests write to it)."""
    folder = tmp_path_factory.mktemp("pages")
    return fx.make_api(fx.copy_demo(demo, folder), folder, basemap="gsi_pale")


@pytest.fixture(scope="module")
def names(site):
    """Every name in the register and the cooperator roster (none may reach a public page)."""
    return {str(n) for layer in ("register", "cooperators") for n in site.store.read(layer)["name"]}


def client(site: fx.Api, role: str = "anonymous"):
    """A browser of ``role``: logged in through the login form (a session cookie)."""
    return site.browser(role)


def _listed(register, html: str):
    """For each register row: is it in the page's register table (its name beside its address)?"""
    import numpy as np

    return np.array([f"<td>{r.name}</td><td>{str(r.address).removeprefix('青森県青森市')}</td>" in html
                     for r in register.itertuples()], dtype=bool)


def absolute_urls(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>)\\]+", text))


# --- the city page --------------------------------------------------------------------------------

@pytest.mark.parametrize("measure, label", [("coverage", "サロン徒歩圏カバー率"),
                                            ("gap_rate", "避難支援の空白：支援者が決まっていない"),
                                            ("ageing", "高齢化率")])
def test_city_page_each_measure(site, names, measure, label):
    r = client(site).get("/", params={"measure": measure})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "青森市 地区カルテ 全体図" in html and label in html  # the name from the store, not the template
    assert "障がい者はデモ用の合成データです" in html and "地区割りは代替（仮）" in html
    assert f'<option value="{measure}" selected>' in html
    assert html.count('href="/districts/S') >= 40  # every district linked from the table
    assert '"/districts/{code}"' not in html and "window.location.href" in html  # click-through
    assert absolute_urls(html) <= ALLOWED_URLS
    assert "/static/leaflet/leaflet.js" in html
    assert not [n for n in names if n in fx.unescape(html)]
    assert len(r.content) < BUDGET


def test_city_page_suppressed_rates_are_shown_as_such(site):
    from karte.domain.access import PUBLIC
    from karte.services.kartes import districts_table

    table = districts_table(site.store, PUBLIC)
    hidden = table[table["at_risk"] == SUPPRESSED]
    html = client(site).get("/", params={"measure": "gap_rate"}).text
    for row in hidden.itertuples():  # the any-gap column, beside the mapped gap kind
        cell = re.search(rf'{re.escape(row.district_name)}</a></td>\s*<td class="n">[^<]*</td>'
                         rf'<td class="n any-gap">([^<]*)</td>', html)
        assert cell and cell.group(1) == SUPPRESSED


def test_bad_measure_is_a_clear_4xx(site):
    r = client(site).get("/", params={"measure": "nonsense"}, headers={"accept": "text/html"})
    assert r.status_code == 422
    assert "Traceback" not in r.text


def test_no_basemap_means_no_url_at_all(demo, tmp_path):
    """``KARTE_BASEMAP=none``: the maps draw on a plain background and name no server at all."""
    web = fx.make_api(fx.demo_store(demo), tmp_path, basemap="none")
    for role in ("anonymous", "coordinator"):  # the public map and the logged-in one
        c = client(web, role)
        for path in ("/", f"/districts/{OWN}"):
            html = fx.with_map(c, c.get(path).text)
            assert absolute_urls(html) == set(), (role, path)
            assert "地理院タイル" not in html and "L.tileLayer" not in html


def test_leaflet_and_the_personal_layer_script_are_served_by_the_app(site):
    c = client(site)
    assert c.get("/static/leaflet/leaflet.js").status_code == 200
    assert c.get("/static/leaflet/leaflet.css").status_code == 200
    js = c.get("/static/karte-personal.js")
    assert js.status_code == 200 and "karteAddPersonal" in js.text
    assert "textContent" in js.text and "innerHTML" not in js.text  # text, never HTML


# --- the district page ----------------------------------------------------------------------------

def test_district_page_public(site, names):
    from karte.domain.access import PUBLIC
    from karte.services.kartes import karte_view

    c = client(site)
    r = c.get(f"/districts/{OWN}")
    assert r.status_code == 200
    html = fx.with_map(c, r.text)
    for text in ("地区カルテ", "基礎情報（市全体との比較）", "避難支援の空白", "共助協力者", "共助サービス",
                 "指定避難所", "地区の境界", "サロンの徒歩圏", "徒歩圏外の高齢者がいる区域",
                 f"/districts/{OWN}/sheet.pdf?edition=public", f"/api/districts/{OWN}/tables/base.csv",
                 "1〜2人の人数は「秘匿」"):
        assert text in fx.unescape(html), text
    for hidden in ("karte-personal", LAYER_NAMES["register"], "edition=confidential",
                   "tables/register.csv", "協力者名簿"):
        assert hidden not in fx.unescape(html), hidden
    assert fx.personal_json(html) is None
    assert not [n for n in names if n in fx.unescape(html)]
    assert absolute_urls(html) <= ALLOWED_URLS
    assert len(r.content) < BUDGET
    karte = karte_view(site.store, OWN, PUBLIC)
    if any(g["count"] == SUPPRESSED for g in karte["gaps"]):
        assert SUPPRESSED in html


def test_every_public_district_page_hides_small_counts(site, names):
    """Wherever the public karte suppresses a gap count, the page shows 秘匿 in that row."""
    from karte.domain.access import PUBLIC
    from karte.services.kartes import district_codes, karte_view

    c = client(site)
    checked = 0
    for code in district_codes(site.store):
        gaps = karte_view(site.store, code, PUBLIC)["gaps"]
        small = [g for g in gaps if g["count"] == SUPPRESSED]
        if not small:
            continue
        html = c.get(f"/districts/{code}").text
        assert not [n for n in names if n in fx.unescape(html)]
        assert fx.personal_json(html) is None
        for g in small:
            row = re.search(rf"<td>{re.escape(g['label'])}</td><td class=\"n\">([^<]*)</td>"
                            r"<td class=\"n\">([^<]*)</td>", html)
            assert row, g["label"]
            assert row.group(1) == SUPPRESSED and row.group(2) == "—"
        checked += 1
    assert checked > 0, "the demo should have districts with small gap counts"


def test_the_district_map_script_is_kept_by_the_browser_for_the_build(site):
    """The district map's script comes apart from the page: asked for with the version the page
    names, the browser keeps it (any cache for the public's suppressed map, the browser only for a
    logged-in viewer's); asked for with another version (an old page after a rebuild) it is sent
    but not kept. Its map is the page's (the page's map id), and an unknown district is a 404."""
    import html as html_text

    for role, scope in (("anonymous", "public"), ("coordinator", "private")):
        c = client(site, role)
        page = c.get(f"/districts/{OWN}").text
        [url] = [html_text.unescape(u) for u in fx.MAP_SCRIPT.findall(page)]
        r = c.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert r.headers["cache-control"] == f"{scope}, max-age=31536000, immutable", role
        assert "Cookie" in r.headers["vary"]
        map_id = re.search(r'class="folium-map" id="([^"]+)"', page).group(1)
        assert f'document.getElementById("{map_id}")' in r.text or f'"{map_id}"' in r.text
        stale = c.get(re.sub(r"v=[0-9a-f]+", "v=0000", url))
        assert stale.headers["cache-control"] == "no-store" and stale.text == r.text
        assert fx.personal_json(r.text) is None and "karte-personal" not in r.text
    assert client(site).get("/maps/districts/NOPE.js").status_code == 404


def test_the_kept_tables_follow_the_viewer_not_whoever_asked_first(site):
    """The page's aggregate tables are rendered once per build and audience and kept: in districts
    with small gap counts, the public gets 秘匿 and a coordinator the exact count, whether the
    public or the coordinator opened the district first."""
    from karte.domain.access import PUBLIC
    from karte.services.kartes import district_codes, karte_view

    small = [code for code in district_codes(site.store)
             if any(g["count"] == SUPPRESSED for g in karte_view(site.store, code, PUBLIC)["gaps"])]
    assert len(small) >= 2, "the demo should have districts with small gap counts"
    public, coordinator = client(site), client(site, "coordinator")
    for code, order in zip(small[-2:], ((public, coordinator), (coordinator, public)), strict=True):
        pages = {id(c): c.get(f"/districts/{code}").text for c in order}
        seen = {who: [(m.group(1), m.group(2)) for m in re.finditer(
            r'<tr><td>([^<]+)</td><td class="n">([^<]*)</td>', pages[id(c)])]
            for who, c in (("public", public), ("coordinator", coordinator))}
        hidden = [label for label, count in seen["public"] if count == SUPPRESSED]
        assert hidden, code
        exact = dict(seen["coordinator"])
        assert all(exact[label] not in (SUPPRESSED, "—") for label in hidden), (code, exact)


def _names_sent(html: str) -> dict[str, list[str]]:
    """Layer name -> the names (first popup line) of the points the page sends for it."""
    sent = fx.personal_json(html)
    assert sent is not None, "the page sends no personal layers"
    return {layer["name"]: sorted(f["properties"]["popup"][0] for f in layer["geojson"]["features"])
            for layer in sent["layers"]}


def _located(frame):
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty]


def test_district_page_for_a_coordinator_lists_consented_people_only(site):
    """The people table and the map's personal layers (sent as JSON since the refactor, no longer
    drawn by folium on the server) hold the consented people and every cooperator."""
    store = site.store
    before = len(store.audit_log())
    r = client(site, "coordinator").get(f"/districts/{OWN}")
    html = r.text
    register = store.read("register", district=OWN)
    cooperators = store.read("cooperators", district=OWN)
    shareable = register["consent"].isin(["consented", "ordinance"])
    listed = _listed(register, html)  # (synthetic names repeat: a person is a name and address)
    assert listed[shareable.to_numpy()].all() and len(listed) > 0
    assert not listed[~shareable.to_numpy()].any()
    sent = _names_sent(html)
    assert sent == {LAYER_NAMES["register"]: sorted(_located(register[shareable.to_numpy()])["name"]),
                    LAYER_NAMES["cooperators"]: sorted(_located(cooperators)["name"])}
    assert f"/copies/new?district={OWN}&amp;edition=confidential" in html and "tables/register.csv" in html
    assert "sheet.pdf?edition=confidential" not in html  # a personal copy is printed through the ledger
    assert r.headers["cache-control"] == "private, no-store"
    assert len(r.content) < BUDGET
    # one read of each layer, logged by the store with the coordinator's level
    log = store.audit_log().iloc[before:]
    assert sorted(log[["actor", "level", "route", "action", "layer", "district"]].values.tolist()) == [
        ["coordinator", "coordinator", "web:district_page", "read", "cooperators", OWN],
        ["coordinator", "coordinator", "web:district_page", "read", "register", OWN]]
    assert log.loc[log["layer"] == "register", "rows"].tolist() == [int(shareable.sum())]


def test_district_member_sees_own_district_only(site, names):
    store = site.store
    c = client(site, "member")
    own = c.get(f"/districts/{OWN}").text
    other = c.get(f"/districts/{OTHER}").text
    assert LAYER_NAMES["register"] in _names_sent(own)
    assert fx.personal_json(other) is None and "karte-personal" not in other
    assert "協力者名簿" not in other and "tables/register.csv" not in other
    assert not _listed(store.read("register", district=OTHER), other).any()
    assert _listed(store.read("register", district=OWN).query("consent == 'consented'"), own).all()
    phones = [p for p in store.read("cooperators", district=OTHER)["phone"] if isinstance(p, str) and p]
    assert phones and not [p for p in phones if p in fx.unescape(other)]


def test_city_staff_see_unconsented_people(site):
    store = site.store
    html = client(site, "staff").get(f"/districts/{OWN}").text
    register = store.read("register", district=OWN)
    refused = (register["consent"] == "refused").to_numpy()
    assert refused.any() and _listed(register, html)[refused].all()
    assert sorted(_located(register)["name"]) == _names_sent(html)[LAYER_NAMES["register"]]
    # the map's legend, completed in the browser from the page's JSON, names the grey of the
    # unconsented (before the refactor it was in the folium legend drawn on the server)
    legend = [label for _, label in fx.personal_json(html)["legend"]]
    assert "要支援者: 名簿提供の同意がない" in legend


def test_personal_points_carry_plain_text_lines_only(site):
    """A personal point's popup is a list of plain-text lines that the browser inserts as text
    (before the refactor: HTML escaped on the server), its tooltip the layer's text for its style
    key; no id or consent field travels with a point."""
    sent = fx.personal_json(client(site, "staff").get(f"/districts/{OWN}").text)
    register = site.store.read("register", district=OWN)
    for layer in sent["layers"]:
        assert layer["geojson"]["features"]
        for f in layer["geojson"]["features"]:
            assert set(f["properties"]) == {"k", "popup"} and f["properties"]["k"] in layer["styles"]
            lines = [layer["tips"][f["properties"]["k"]], *f["properties"]["popup"]]
            assert all(isinstance(t, str) for t in lines)
            assert not [t for t in lines if "<br>" in t or "<b>" in t or "&lt;" in t or "&amp;" in t]
    person = next(layer for layer in sent["layers"] if layer["name"] == LAYER_NAMES["register"])
    popup = person["geojson"]["features"][0]["properties"]["popup"]
    assert popup[0] in set(register["name"]) and popup[-1].startswith("空白: ")


@pytest.mark.parametrize("path, status", [("/districts/S99", 404), ("/districts/S05;drop", 422),
                                          ("/districts/" + "A" * 40, 422)])
def test_bad_district_is_a_clear_4xx(site, path, status):
    r = client(site).get(path, headers={"accept": "text/html"})
    assert r.status_code == status
    assert "Traceback" not in r.text
    if status == 404:
        assert "S99" in r.text and "ありません" in r.text


# --- the outreach page ----------------------------------------------------------------------------

def test_outreach_needs_a_coordinator(site):
    r = client(site).get("/outreach", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/outreach")
    r = client(site, "member").get("/outreach", headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "コーディネーター" in r.text


def test_outreach_page_ranks_and_suggests(site):
    from karte.services import outreach

    store = site.store
    r = client(site, "coordinator").get("/outreach")
    assert r.status_code == 200
    html = r.text
    assert "訪問の優先順位" in html and "避難支援者の候補" in html
    assert absolute_urls(html) <= ALLOWED_URLS
    assert len(r.content) < BUDGET
    coordinator = site.access("coordinator")
    ranking = outreach.outreach_ranking(store, coordinator)
    first = ranking.iloc[0]
    assert first["rank"] == 1 and f"{first['score']:.1f}" in html and str(first["name"]) in html
    assert html.count('name="decision" value="confirmed"') == min(
        len(outreach.suggestions(store, coordinator)), 40)


def test_outreach_decision_needs_csrf_and_is_recorded(site):
    from karte.services import outreach

    store = site.store
    coordinator = site.access("coordinator")
    c = client(site, "coordinator")
    code = outreach.suggestions(store, coordinator)["district_code"].value_counts().index[0]
    page = c.get("/outreach", params={"district": code})
    open_ = outreach.suggestions(store, coordinator, district=code)
    assert len(open_) >= 2, "the demo should suggest supporters"
    first, second = open_.iloc[0], open_.iloc[1]
    form = {"person_id": first["person_id"], "cooperator_id": first["cooperator_id"],
            "decision": "confirmed", "district": code}
    supporters_before = dict(zip(*store.read("register")[["person_id", "supporter_ids"]].to_numpy().T,
                                 strict=True))

    r = c.post("/outreach/decisions", data={**form, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert Layer.DECISIONS not in store.layers() or first["person_id"] not in set(
        outreach.decisions(store, coordinator)["person_id"])

    before = len(store.audit_log())
    r = c.post("/outreach/decisions", data={**form, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/outreach?done=confirmed&district={code}"
    made = outreach.decisions(store, coordinator)
    mine = made[made["person_id"] == first["person_id"]]
    assert list(mine["decision"]) == ["confirmed"] and list(mine["decided_by"]) == ["coordinator"]
    # appended by the store as the deciding user (id from the store), the write logged with them
    full = store.read_full(Layer.DECISIONS)
    row = full[full["person_id"] == first["person_id"]]
    assert list(row["updated_by"]) == ["coordinator"] and list(row["decision_id"]) == ["D000001"]
    log = store.audit_log().iloc[before:]
    writes = log[log["action"] != "read"]
    assert writes[["actor", "level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["coordinator", "coordinator", "web:outreach_decide", "append", str(Layer.DECISIONS), code, 1]]
    assert first["person_id"] not in set(outreach.suggestions(store, coordinator, district=code)["person_id"])
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
    assert list(outreach.decisions(store, coordinator)["decided_by"]) == ["coordinator"] * 2


def test_outreach_decision_by_a_district_member_is_refused(site):
    c = client(site, "member")
    token = csrf_of(c.get(f"/districts/{OWN}").text)
    r = c.post("/outreach/decisions", data={"person_id": "P000001", "cooperator_id": "C00001",
                                            "decision": "confirmed", "csrf": token},
               headers={"accept": "text/html"})
    assert r.status_code == 403


def test_outreach_bad_form_is_a_clear_4xx(site):
    c = client(site, "coordinator")
    token = csrf_of(c.get("/outreach", params={"district": OWN}).text)
    r = c.post("/outreach/decisions", data={"person_id": "P1", "cooperator_id": "C1",
                                            "decision": "maybe", "csrf": token})
    assert r.status_code == 422
    r = c.get("/outreach", params={"district": "S99"}, headers={"accept": "text/html"})
    assert r.status_code == 404
