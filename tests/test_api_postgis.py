"""The web app on the PostGIS store: row-level security picks the personal rows, the database
logs each read once with the viewer's level, the public sees the same suppressed aggregates as on
the GeoPackage, and a decision recorded through the web is stored and logged as the coordinator
who made it. (The role x route matrix runs on both stores: ``test_api_matrix.py``.)"""

from __future__ import annotations

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN

from karte import snapshot
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.layers import Layer
from karte.services import outreach
from karte.services.kartes import karte_view
from karte.services.layers import layer_view

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

MEMBER = Access(user="pg-member-t", level=Level.DISTRICT_MEMBER, district=OWN, route="test:pg")
COORD = Access(user="pg-coord-t", level=Level.COORDINATOR, route="test:pg")


@pytest.fixture
def pg_demo(pg_store, demo):
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    snapshot.clear()
    yield pg_store
    snapshot.clear()


def _log(store, actor):
    log = store.audit_log()
    return log[log["actor"] == actor]


def test_services_read_personal_rows_through_rls_and_log_each_read_once(pg_demo):
    raw = pg_demo.read("register")  # the store's own trusted user
    own = raw[raw["district_code"] == OWN]
    shareable = own[own["consent"].isin(["consented", "ordinance"])]
    before = len(_log(pg_demo, MEMBER.user))
    frame = layer_view(pg_demo, "register", MEMBER, district=OWN)
    assert sorted(frame["person_id"]) == sorted(shareable["person_id"])
    log = _log(pg_demo, MEMBER.user).iloc[before:]
    assert log[["level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["district_member", "test:pg", "read", "register", OWN, len(shareable)]]
    # a member asking for the whole city still gets their own district only (the database says so)
    whole = layer_view(pg_demo, "register", MEMBER)
    assert set(whole["district_code"]) == {OWN} and len(whole) == len(shareable)


def test_public_karte_on_postgis_equals_the_geopackage(pg_demo, demo):
    gpkg = fx.demo_store(demo)
    for code in (OWN, OTHER):
        on_pg = karte_view(pg_demo, code, PUBLIC)
        on_gpkg = karte_view(gpkg, code, PUBLIC)
        assert on_pg == on_gpkg
    coord = karte_view(pg_demo, OWN, COORD)
    assert {p["person_id"] for p in coord["personal"]["register"]} == {
        p["person_id"] for p in karte_view(gpkg, OWN, COORD)["personal"]["register"]}


def test_the_app_serves_postgis_with_the_same_rules(pg_demo, tmp_path):
    web = fx.make_api(pg_demo, tmp_path)
    anonymous = web.client("anonymous").get(f"/api/districts/{OWN}/layers/register.geojson")
    assert anonymous.status_code in (200, 401, 403)
    assert anonymous.status_code != 200 or anonymous.json()["features"] == []
    member = web.client("member")
    own = member.get(f"/api/districts/{OWN}/layers/register.geojson")
    other = member.get(f"/api/districts/{OTHER}/layers/register.geojson")
    assert own.status_code == 200 and len(own.json()["features"]) > 0
    assert {f["properties"]["district_code"] for f in own.json()["features"]} == {OWN}
    assert other.status_code == 403 or other.json()["features"] == []
    ogc = web.client("anonymous").get("/ogc/collections/districts/items?limit=5")
    assert ogc.status_code == 200 and ogc.json()["numberReturned"] == 5


def test_a_decision_recorded_through_the_web_is_the_coordinators(pg_demo, tmp_path):
    """The outreach form as a coordinator: the row is appended as that user (``decided_by`` and
    the store's ``updated_by``), and the database logs the write with the coordinator's level."""
    web = fx.make_api(pg_demo, tmp_path)
    coordinator = web.access("coordinator")
    found = outreach.suggestions(pg_demo, coordinator)
    code = found["district_code"].value_counts().index[0]
    browser = web.browser("coordinator")
    page = browser.get("/outreach", params={"district": code})
    assert page.status_code == 200
    first = outreach.suggestions(pg_demo, coordinator, district=code).iloc[0]
    before = len(pg_demo.audit_log())
    r = browser.post("/outreach/decisions", data={
        "person_id": first["person_id"], "cooperator_id": first["cooperator_id"],
        "decision": "confirmed", "district": code, "csrf": fx.csrf_of(page.text)},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/outreach?done=confirmed&district={code}"

    stored = pg_demo.read_full(Layer.DECISIONS)
    assert len(stored) == 1
    row = stored.iloc[0]
    assert (row["person_id"], row["cooperator_id"], row["district_code"], row["decision"]) == (
        first["person_id"], first["cooperator_id"], code, "confirmed")
    assert row["decided_by"] == "coordinator" and row["updated_by"] == "coordinator"
    assert row["decision_id"] == "D000001"  # the id comes from the database

    log = pg_demo.audit_log().iloc[before:]
    writes = log[log["action"] != "read"]
    assert writes[["actor", "level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["coordinator", "coordinator", "web:outreach_decide", "append", str(Layer.DECISIONS), code, 1]]
    # every read the decision needed was the coordinator's own, logged with their level
    assert set(log["actor"]) == {"coordinator"} and set(log["level"]) == {"coordinator"}
    # the person is no longer suggested; the decision is listed for the coordinator
    still_open = outreach.suggestions(pg_demo, coordinator, district=code)
    assert first["person_id"] not in set(still_open["person_id"])
    assert list(outreach.decisions(pg_demo, coordinator)["person_id"]) == [first["person_id"]]
