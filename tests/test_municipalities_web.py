"""A store of several municipalities on the web (issue 18, item 1): every page, API route and OGC
collection shows one municipality at a time, the public and the prefecture level choose it, a
municipality's users see only theirs. District codes repeat across municipalities (``S01`` in
each), so a page that looked a district up by code alone showed another municipality's district.
"""

from __future__ import annotations

import json
import re

import pytest
from api_fixtures import PASSWORD, SECRET, body_text
from fastapi.testclient import TestClient

from karte.domain.layers import Layer

#: Two small municipalities of the prefecture demo, two districts each (S01, S02 in both).
FIRST, SECOND = "02384", "02408"
SELECTED = re.compile(r'<option value="(\d{5})" selected>')


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """The prefecture demo of two municipalities in a GeoPackage, the app over it, and the name
    of each municipality's S01."""
    from api.app import create_app
    from api.deps import WebSettings
    from karte.demo_prefecture import build_prefecture
    from karte.store import GeoPackageStore
    from karte.users import UserFile

    folder = tmp_path_factory.mktemp("two")
    store = GeoPackageStore(folder / "karte.gpkg")
    build_prefecture(store, seed=7, codes=[FIRST, SECOND])
    users = UserFile(folder / "users.json")
    users.add("staff2", PASSWORD, level="city_staff", municipality=SECOND)
    users.add("coord1", PASSWORD, level="coordinator", municipality=FIRST)
    users.add("pref", PASSWORD, level="prefecture")
    web = WebSettings(workspace=folder, users_file=folder / "users.json", secret_key=SECRET, basemap="none")
    app = create_app(web, store=store, warm=False)
    kartes = store.read(Layer.KARTES)
    names = {(r.municipality_code, r.district_code): json.loads(r.karte_json)["district"]["name"]
             for r in kartes.itertuples()}
    return app, store, names


def _client(app, user: str | None = None) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    if user:
        r = client.post("/api/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return client


def test_the_two_municipalities_share_district_codes(two):
    _, _, names = two
    assert names[(FIRST, "S01")] != names[(SECOND, "S01")]


def test_public_city_page_shows_the_first_municipality_with_a_chooser(two):
    app, _, names = two
    r = _client(app).get("/")
    assert r.status_code == 200
    assert SELECTED.findall(r.text) == [FIRST]
    text = body_text(r)
    assert names[(FIRST, "S01")] in text and names[(SECOND, "S01")] not in text
    assert f'href="/districts/S01?m={FIRST}"' in r.text  # the table's links say which municipality
    r = _client(app).get(f"/?m={SECOND}")
    assert f'<input type="hidden" name="m" value="{SECOND}">' in r.text  # the measure form keeps it


def test_one_code_opens_each_municipality_own_district(two):
    app, _, names = two
    client = _client(app)
    for municipality in (FIRST, SECOND):
        r = client.get(f"/districts/S01?m={municipality}")
        assert r.status_code == 200
        assert names[(municipality, "S01")] in body_text(r)
        assert SELECTED.findall(r.text) == [municipality]
        karte = client.get(f"/api/districts/S01?m={municipality}").json()
        assert karte["district"]["name"] == names[(municipality, "S01")]
        assert karte["district"]["municipality"]["code"] == municipality



def test_a_district_page_and_its_sheet_name_the_municipality(two, tmp_path):
    """S01 is in every municipality: the heading, the window title and the printed sheet say whose."""
    import subprocess

    app, _, names = two
    client = _client(app)
    for municipality in (FIRST, SECOND):
        place = client.get(f"/api/districts/S01?m={municipality}").json()["district"]["municipality"]["name"]
        r = client.get(f"/districts/S01?m={municipality}")
        heading = re.search(r"<h1>(.*?)<small", r.text).group(1)
        assert heading.startswith(f"{place} {names[(municipality, 'S01')]}"), heading
        assert re.search(r"<title>(.*?)</title>", r.text).group(1).startswith(place)
        pdf = client.get(f"/districts/S01/sheet.pdf?edition=public&m={municipality}")
        assert pdf.status_code == 200
        (tmp_path / "s.pdf").write_bytes(pdf.content)
        first_page = subprocess.run(["pdftotext", "-l", "1", str(tmp_path / "s.pdf"), "-"],
                                    capture_output=True, text=True, check=True).stdout
        assert place in first_page.split("地区カルテ 地区シート")[0], first_page[:200]


def test_the_chooser_remembers_the_choice(two):
    app, _, names = two
    client = _client(app)
    r = client.get(f"/municipality?m={SECOND}&next=/districts/S01", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/districts/S01?m={SECOND}"
    r = client.get("/districts/S02")  # no ?m=: the remembered choice
    assert names[(SECOND, "S02")] in body_text(r)
    assert client.get("/municipality?m=02201&next=/", follow_redirects=False).status_code == 404
    r = client.get(f"/municipality?m={FIRST}&next=//example.com/x", follow_redirects=False)
    assert r.headers["location"] == f"/?m={FIRST}"  # never off the site


def test_an_unknown_municipality_is_a_japanese_404(two):
    app, _, _ = two
    r = _client(app).get("/?m=99999")
    assert r.status_code == 404
    assert "市町村コード" in body_text(r)


def test_a_municipality_user_sees_theirs_only(two):
    app, _, names = two
    staff = _client(app, "staff2")
    r = staff.get("/")
    assert names[(SECOND, "S01")] in body_text(r) and names[(FIRST, "S01")] not in body_text(r)
    assert '<select id="karte-municipality"' not in r.text  # no chooser: theirs is the only one
    assert staff.get(f"/?m={FIRST}").status_code == 403
    assert staff.get(f"/api/districts/S01?m={FIRST}").status_code == 403
    rows = staff.get("/api/districts/S01/tables/register.csv")
    assert rows.status_code == 200
    ids = re.findall(r"^(P\d+)", rows.text, re.M)
    assert ids and all(i.startswith(f"P{SECOND}") for i in ids)
    coord = _client(app, "coord1")
    r = coord.get("/api/districts/S01/tables/register.csv")
    ids = re.findall(r"^(P\d+)", r.text, re.M)
    assert ids and all(i.startswith(f"P{FIRST}") for i in ids)


def test_the_prefecture_level_chooses_like_the_public_and_sees_no_personal_rows(two):
    app, _, names = two
    pref = _client(app, "pref")
    r = pref.get(f"/districts/S01?m={SECOND}")
    assert r.status_code == 200 and names[(SECOND, "S01")] in body_text(r)
    assert pref.get(f"/api/districts/S01/tables/register.csv?m={SECOND}").status_code in (401, 403)


def test_ogc_serves_each_municipality_at_its_own_landing_page(two):
    app, _, names = two
    client = _client(app)
    for municipality in (FIRST, SECOND):
        r = client.get(f"/ogc/m/{municipality}/collections/districts/items?limit=1")
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["numberMatched"] == 2
        assert page["features"][0]["properties"]["district_name"] == names[(municipality, "S01")]
        hrefs = [link["href"] for link in page["links"]]
        assert hrefs and all(f"/ogc/m/{municipality}/" in h for h in hrefs)
    links = client.get(f"/ogc/m/{SECOND}/collections").json()["links"]
    assert any(f"/ogc/m/{SECOND}/collections" in link["href"] for link in links)
    assert client.get("/ogc/m/99999/collections/districts/items").status_code == 404
