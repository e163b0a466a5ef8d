"""``karte demo --scope prefecture``: all 40 municipalities of Aomori prefecture in one PostGIS store
(issue 18, item 2), and who sees what of it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pg_fixtures import reset
from typer.testing import CliRunner

from karte.cli import app
from karte.demo_prefecture import REAL_SHELTERS
from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied
from karte.domain.layers import MUNICIPALITY, PERSONAL_LAYERS, Layer

pytest_plugins = ["pg_fixtures"]
pytestmark = [pytest.mark.postgis, pytest.mark.slow]  # builds the whole prefecture (~40 s)

runner = CliRunner()
AOMORI = "02201"
BUILT = (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.DISTRICT_MAP, Layer.REGISTER, Layer.COOPERATORS,
         Layer.SERVICES, Layer.SHELTERS, Layer.EMERGENCY_SITES, Layer.KARTES)


@pytest.fixture(scope="module")
def store(pg_admin_url, pg_app_url):
    """The prefecture demo, built by the command line into this session's PostGIS database."""
    from karte.store.postgis import PostGISStore

    reset(pg_admin_url)
    res = runner.invoke(app, ["demo", "--scope", "prefecture", "--store", pg_app_url])
    assert res.exit_code == 0, res.output
    assert "市町村数 40" in res.output
    pg = PostGISStore(pg_app_url)
    yield pg
    pg.close()
    reset(pg_admin_url)


@pytest.fixture(scope="module")
def layers(store):
    return {name: store.read(name) for name in BUILT}


def test_forty_municipalities_every_row_with_its_code(layers):
    small = layers[Layer.SMALL_AREAS]
    assert len(small) == 4385
    assert small[MUNICIPALITY].nunique() == 40
    assert (small[MUNICIPALITY] == small["key_code"].str.slice(0, 5)).all()
    for name, frame in layers.items():
        assert MUNICIPALITY in frame.columns, name
        assert frame[MUNICIPALITY].notna().all(), name
        assert frame[MUNICIPALITY].str.fullmatch(r"02\d{3}").all(), name
    for name in (Layer.DISTRICTS, Layer.KARTES, Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES):
        assert layers[name][MUNICIPALITY].nunique() == 40, name


def test_district_codes_unique_within_a_municipality_and_repeated_across(layers):
    districts = layers[Layer.DISTRICTS]
    assert not districts.duplicated([MUNICIPALITY, "district_code"]).any()
    assert districts["district_code"].duplicated().any()  # S01 in every municipality: the key is the pair
    kartes = layers[Layer.KARTES]
    pairs = set(zip(districts[MUNICIPALITY], districts["district_code"], strict=True))
    assert set(zip(kartes[MUNICIPALITY], kartes["district_code"], strict=True)) == pairs
    assert len(kartes) == len(districts)
    for row in kartes.itertuples():  # each karte names its own municipality
        block = json.loads(row.karte_json)["district"]
        assert block["code"] == row.district_code
        assert block["municipality"]["code"] == row.municipality_code
    # every row of a municipality lies in one of its own districts
    for name in (Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES):
        rows = layers[name]
        own = rows[[MUNICIPALITY, "district_code"]].dropna()
        assert set(zip(own[MUNICIPALITY], own["district_code"], strict=True)) <= pairs, name


def test_registers_sized_by_population(layers):
    small, register = layers[Layer.SMALL_AREAS], layers[Layer.REGISTER]
    people = small.groupby(MUNICIPALITY)["population"].sum().astype(float)
    persons = register.groupby(MUNICIPALITY).size().reindex(people.index).fillna(0)
    assert persons.corr(people) > 0.9
    assert persons[AOMORI] == persons.max()


def test_real_shelters_in_aomori_city_synthetic_ones_labelled_elsewhere(layers):
    for name in (Layer.SHELTERS, Layer.EMERGENCY_SITES):
        frame = layers[name]
        real = frame[frame[MUNICIPALITY] == AOMORI]
        other = frame[frame[MUNICIPALITY] != AOMORI]
        assert len(real) and len(other), name
        assert not real["name"].str.startswith("（合成）").any(), name
        assert other["name"].str.startswith("（合成）").all(), name
        assert (other["note"] == "synthetic").all(), name
        assert other[MUNICIPALITY].nunique() == 39, name
    assert REAL_SHELTERS == AOMORI


def test_meta_says_what_is_synthetic(store):
    meta = store.meta()
    assert {"register", "cooperators", "services"} <= set(json.loads(meta["synthetic_layers"]))
    assert meta["scope"] == "prefecture"
    assert json.loads(meta["synthetic_facilities"])["real_in"] == [AOMORI]


def test_city_staff_of_aomori_see_only_aomori_rows(store, layers):
    staff = Access("staff-02201", Level.CITY_STAFF, municipality=AOMORI)
    for name in (Layer.REGISTER, Layer.COOPERATORS):
        seen = store.read(name, access=staff)
        everything = layers[name]
        assert len(seen) == (everything[MUNICIPALITY] == AOMORI).sum() > 0, name
        assert set(seen[MUNICIPALITY]) == {AOMORI}, name
        # asking for another municipality's rows gives none
        assert store.read(name, municipality="02202", access=staff).empty, name
    other = Access("staff-02202", Level.CITY_STAFF, municipality="02202")
    assert set(store.read(Layer.REGISTER, access=other)[MUNICIPALITY]) == {"02202"}


def test_prefecture_level_sees_every_aggregate_and_no_personal_row(store, layers):
    pref = Access("kensyakyo", Level.PREFECTURE)
    kartes = store.read(Layer.KARTES, access=pref)
    assert kartes[MUNICIPALITY].nunique() == 40
    assert len(kartes) == len(layers[Layer.KARTES])
    total = sum(json.loads(k)["register"]["total"] for k in kartes["karte_json"])
    assert total == len(layers[Layer.REGISTER])  # every municipality's counts
    names = set(layers[Layer.REGISTER]["name"].dropna())
    text = "".join(kartes["karte_json"])
    assert not any(n in text for n in list(names)[:500])  # counts, not people
    for name in sorted(PERSONAL_LAYERS & {str(n) for n in BUILT}):
        try:
            rows = store.read(name, access=pref)
        except AccessDenied:
            continue
        assert rows.empty, name


def test_scope_is_checked_and_the_city_demo_takes_no_store(tmp_path):
    res = runner.invoke(app, ["demo", "--scope", "nation", "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "--scope" in res.output
    res = runner.invoke(app, ["demo", "--store", str(tmp_path / "x.gpkg"), "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "--scope prefecture" in res.output
    assert not (tmp_path / "x.gpkg").exists()


def test_a_district_without_register_rows_gets_a_karte(layers):
    """Small villages have districts with no synthetic support-needer: their karte counts 0."""
    kartes = layers[Layer.KARTES]
    totals = pd.Series([json.loads(k)["register"]["total"] for k in kartes["karte_json"]])
    assert (totals >= 0).all()
    register = layers[Layer.REGISTER]
    used = set(zip(register[MUNICIPALITY], register["district_code"], strict=True))
    empty = [(m, d) for m, d in zip(kartes[MUNICIPALITY], kartes["district_code"], strict=True)
             if (m, d) not in used]
    assert empty  # there are such districts (the case this guards)
    for m, d in empty:
        row = kartes[(kartes[MUNICIPALITY] == m) & (kartes["district_code"] == d)].iloc[0]
        assert json.loads(row["karte_json"])["register"]["total"] == 0


def test_on_the_web_a_coordinator_gets_rows_of_their_municipality_only(store, tmp_path):
    """The app over the prefecture's PostGIS store: a coordinator of 弘前市 (02202) opens S01 and
    its register and roster CSVs, and gets 弘前市's S01 and its rows only; another municipality
    asked for by name is a 403 (issue 18: no row of another municipality through any route)."""
    from api_fixtures import PASSWORD, SECRET
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import WebSettings
    from karte.users import UserFile

    UserFile(tmp_path / "users.json").add("coord-02202", PASSWORD, level="coordinator", municipality="02202")
    web = WebSettings(workspace=tmp_path, users_file=tmp_path / "users.json", secret_key=SECRET,
                      basemap="none")
    client = TestClient(create_app(web, store=store, warm=False), raise_server_exceptions=False)
    token = client.post("/api/token", data={"username": "coord-02202", "password": PASSWORD}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    karte = client.get("/api/districts/S01").json()
    assert karte["district"]["municipality"]["code"] == "02202"
    for table, prefix in (("register", "P02202"), ("cooperators", "C02202")):
        r = client.get(f"/api/districts/S01/tables/{table}.csv")
        assert r.status_code == 200, r.text
        ids = [line.split(",")[0] for line in r.text.splitlines()[1:]]
        assert ids and all(i.startswith(prefix) for i in ids), table
    assert client.get(f"/districts/S01?m={AOMORI}").status_code == 403
    assert client.get(f"/ogc/m/{AOMORI}/collections/districts/items").status_code == 403
