"""The web app on the PostGIS store: row-level security picks the personal rows, the database
logs each read once, and the public sees the same suppressed aggregates as on the GeoPackage."""

from __future__ import annotations

import api_fixtures as fx
import pytest

from karte import views
from karte.domain.access import PUBLIC, Access, Level

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

MEMBER = Access(user="pg-member-t", level=Level.DISTRICT_MEMBER, district=fx.OWN, route="test:pg")
COORD = Access(user="pg-coord-t", level=Level.COORDINATOR, route="test:pg")


@pytest.fixture
def pg_demo(pg_store, demo):
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    views.clear_cache()
    yield pg_store
    views.clear_cache()


def _log(store, actor):
    log = store.audit_log()
    return log[log["actor"] == actor]


def test_views_read_personal_rows_through_rls_and_log_each_read_once(pg_demo, demo):
    raw = pg_demo.read("register")  # the store's own trusted user
    s05 = raw[raw["district_code"] == fx.OWN]
    shareable = s05[s05["consent"].isin(["consented", "ordinance"])]
    before = len(_log(pg_demo, MEMBER.user))
    frame = views.layer_view(pg_demo, "register", MEMBER, district=fx.OWN)
    assert sorted(frame["person_id"]) == sorted(shareable["person_id"])
    log = _log(pg_demo, MEMBER.user).iloc[before:]
    assert log[["route", "layer", "district", "rows"]].values.tolist() == [
        ["test:pg", "register", fx.OWN, len(shareable)]]
    # a member asking for the whole city still gets their own district only (the database says so)
    whole = views.layer_view(pg_demo, "register", MEMBER)
    assert set(whole["district_code"]) == {fx.OWN} and len(whole) == len(shareable)


def test_public_karte_on_postgis_equals_the_geopackage(pg_demo, demo):
    from karte.store import GeoPackageStore

    gpkg = GeoPackageStore(demo[1] / "karte.gpkg")
    for code in (fx.OWN, fx.OTHER):
        on_pg = views.karte_view(pg_demo, code, PUBLIC)
        on_gpkg = views.karte_view(gpkg, code, PUBLIC)
        assert on_pg == on_gpkg
    coord = views.karte_view(pg_demo, fx.OWN, COORD)
    assert {p["person_id"] for p in coord["personal"]["register"]} == {
        p["person_id"] for p in views.karte_view(gpkg, fx.OWN, COORD)["personal"]["register"]}


def test_the_app_serves_postgis_with_the_same_rules(pg_demo, tmp_path):
    api = fx.make_api(pg_demo, tmp_path)
    anonymous = api.client("anonymous").get(f"/api/districts/{fx.OWN}/layers/register.geojson")
    assert anonymous.status_code in (200, 401, 403)
    assert anonymous.status_code != 200 or anonymous.json()["features"] == []
    member = api.client("member")
    own = member.get(f"/api/districts/{fx.OWN}/layers/register.geojson")
    other = member.get(f"/api/districts/{fx.OTHER}/layers/register.geojson")
    assert own.status_code == 200 and len(own.json()["features"]) > 0
    assert {f["properties"]["district_code"] for f in own.json()["features"]} == {fx.OWN}
    assert other.status_code == 403 or other.json()["features"] == []
    ogc = api.client("anonymous").get("/ogc/collections/districts/items?limit=5")
    assert ogc.status_code == 200 and ogc.json()["numberReturned"] == 5
