"""The web API over the PostGIS store: the same answers, row-level security as the user, and the
reads of personal rows logged by the database with the web route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_api_support import OTHER, OWN, bearer, make_users

from api.app import create_app
from api.deps import WebSettings
from karte.store import GeoPackageStore

pytestmark = [pytest.mark.postgis, pytest.mark.slow]
pytest_plugins = ["pg_fixtures"]


@pytest.fixture()
def client(demo, pg_store, tmp_path):
    _, folder = demo
    gpkg = GeoPackageStore(folder / "karte.gpkg")
    pg_store.write({name: gpkg.read(name) for name in gpkg.layers()})
    make_users(tmp_path / "users.json")
    app = create_app(WebSettings(users_file=tmp_path / "users.json", secret_key="t", workspace=tmp_path),
                     store=pg_store, warm=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, gpkg


def test_postgis_api_answers_like_the_geopackage_and_logs_in_the_database(client):
    c, gpkg = client
    store = c.app.state.store
    assert c.get("/api/districts").json()[0]["code"] == "S01"
    assert "personal" not in c.get(f"/api/districts/{OWN}").json()
    before = len(store.audit_log())
    karte = c.get(f"/api/districts/{OWN}", headers=bearer(c, "district_member")).json()
    reg = gpkg.read("register", district=OWN)
    shareable = reg[reg["consent"].isin(["consented", "ordinance"])]
    assert sorted(p["person_id"] for p in karte["personal"]["register"]) == sorted(shareable["person_id"])
    log = store.audit_log().iloc[before:]
    mine = log[log["actor"] == "s01member"]
    assert set(mine["layer"]) == {"register", "cooperators"}
    assert (mine["route"] == "web:karte").all() and (mine["level"] == "district_member").all()
    member = bearer(c, "district_member")
    r = c.get(f"/api/districts/{OWN}/layers/register.geojson", headers=member)
    assert len(r.json()["features"]) == len(shareable)
    assert c.get(f"/api/districts/{OTHER}/layers/register.geojson", headers=member).status_code == 403
    items = c.get("/ogc/collections/shelters/items?limit=5").json()
    assert items["numberReturned"] == 5 and items["numberMatched"] == len(gpkg.read("shelters"))
    pdf = c.get(f"/districts/{OWN}/sheet.pdf?edition=confidential", headers=member)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
