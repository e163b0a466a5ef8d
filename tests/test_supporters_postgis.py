"""地域福祉サポーター on PostGIS (migration 0007): row-level security per level, and the points
ledger append-only in the database: UPDATE and DELETE refused to every application role (and to
the owner), corrections as reversing entries, the balance the sum of the entries."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
from pg_fixtures import as_level
from psycopg import errors as pgerrors
from shapely.geometry import Point

from karte.domain.access import Access, Level
from karte.domain.errors import KarteError
from karte.domain.layers import PERSONAL_LAYERS
from karte.domain.supporters import Layer as L
from karte.services import supporters as service
from karte.store import GeoPackageStore
from karte.store.cli import export_store, import_store
from karte.store.postgis import PIPELINE_ROLE, ROLE_OF

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

MINE = tuple(str(x) for x in L)
CRS = "EPSG:6678"
STAFF = Access("staff", Level.CITY_STAFF)
CSW = Access("csw", Level.COORDINATOR)
MEMBER_A = Access("member-a", Level.DISTRICT_MEMBER, district="A")
LEVELS = {"city_staff": STAFF, "coordinator": CSW, "district_member": MEMBER_A,
          "public": Access("anonymous", Level.PUBLIC), "prefecture": Access("pref", Level.PREFECTURE)}
TODAY = dt.date(2026, 12, 20)



@pytest.fixture(autouse=True)
def _season_by_date(monkeypatch):
    """These tests pass their own dates (a winter day, a summer day): the season follows them."""
    monkeypatch.delenv("KARTE_WINTER", raising=False)

@pytest.fixture
def pg(pg_store, pg_admin):
    """An empty PostGIS store whose topic tables are empty too (the shared reset does not know
    them; the ledger's rows can only go with the owner's TRUNCATE)."""
    def empty():
        pg_admin.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in MINE) + " RESTART IDENTITY")

    empty()
    yield pg_store
    empty()


@pytest.fixture
def app(pg_app_dsn):
    with psycopg.connect(pg_app_dsn) as conn:
        yield conn


def _supporter(sid: str, district: str, x: float) -> dict:
    return {"supporter_id": sid, "district_code": district, "name": f"name-{sid}",
            "activities": "snow;watching", "menu_kinds": "watching;evacuation_snow", "weekdays": "",
            "hours": "", "season": "all",
            "reach_m": 800.0, "capacity": 3, "status": "registered", "registered_on": "2026-04-01",
            "geometry": Point(x, 0)}


def _request(rid: str, district: str, x: float) -> dict:
    return {"request_id": rid, "district_code": district, "requester_name": f"req-{rid}", "activity": "snow",
            "recurrence": "every_snowfall", "weekdays": "", "hours": "", "status": "open",
            "received_on": "2026-11-01", "geometry": Point(x, 10)}


@pytest.fixture
def filled(pg):
    """Supporters and requests in districts A and B, a dispatch and an activity with its points."""
    pg.append_rows(L.SUPPORTERS, [_supporter("SPA", "A", 0), _supporter("SPB", "B", 5000)], access=STAFF)
    pg.append_rows(L.REQUESTS, [_request("RQA", "A", 50), _request("RQB", "B", 5050)], access=STAFF)
    d = service.dispatch(pg, CSW, request_id="RQA", supporter_id="SPA", today=TODAY)
    service.record_activity(pg, CSW, dispatch_id=d["dispatch_id"], done_on=TODAY, hours=2.0, today=TODAY)
    service.redeem_points(pg, STAFF, supporter_id="SPA", points=100, note="交換", today=TODAY)
    return pg


# --- the schema ---------------------------------------------------------------------------------

def test_every_topic_table_has_forced_rls_a_policy_per_level_and_nothing_for_the_public(pg_admin):
    assert set(MINE) <= PERSONAL_LAYERS
    for table in MINE:
        enabled, forced = pg_admin.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            (f"karte.{table}",)).fetchone()
        assert enabled and forced, table
        roles = {r for row in pg_admin.execute("SELECT roles FROM pg_policies WHERE schemaname = 'karte' "
                                               "AND tablename = %s", (table,)) for r in row[0]}
        assert {ROLE_OF[Level.CITY_STAFF], ROLE_OF[Level.COORDINATOR], ROLE_OF[Level.DISTRICT_MEMBER],
                PIPELINE_ROLE} <= roles, table
        for level in (Level.PUBLIC, Level.PREFECTURE):
            assert ROLE_OF[level] not in roles
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                assert not pg_admin.execute("SELECT has_table_privilege(%s, %s, %s)",
                                            (ROLE_OF[level], f"karte.{table}", privilege)).fetchone()[0]


def test_no_level_holds_update_or_delete_on_the_ledger(pg_admin):
    for level in Level:
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            granted = pg_admin.execute("SELECT has_table_privilege(%s, 'karte.point_ledger', %s)",
                                       (ROLE_OF[level], privilege)).fetchone()[0]
            assert not granted, (level, privilege)
    policies = {r[0] for r in pg_admin.execute(
        "SELECT cmd FROM pg_policies WHERE schemaname = 'karte' AND tablename = 'point_ledger' "
        "AND NOT roles @> ARRAY['karte_pipeline']::name[]")}
    assert policies == {"SELECT", "INSERT"}


# --- the ledger: append-only --------------------------------------------------------------------

@pytest.mark.parametrize("role", [*LEVELS, "pipeline"])
def test_update_and_delete_of_an_entry_are_refused_to_every_role(filled, app, pg_admin, role):
    entry = pg_admin.execute("SELECT entry_id, points, version FROM karte.point_ledger "
                             "ORDER BY entry_id").fetchone()
    access = STAFF if role == "pipeline" else LEVELS[role]
    for statement in ("UPDATE karte.point_ledger SET points = points + 1000 WHERE entry_id = %s",
                      "DELETE FROM karte.point_ledger WHERE entry_id = %s"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            as_level(app, access, role=PIPELINE_ROLE if role == "pipeline" else None)
            app.execute(statement, (entry[0],))
    assert pg_admin.execute("SELECT entry_id, points, version FROM karte.point_ledger WHERE entry_id = %s",
                            (entry[0],)).fetchone() == entry


def test_even_the_owner_cannot_change_or_delete_an_entry(filled, pg_admin):
    for statement in ("UPDATE karte.point_ledger SET points = 1", "DELETE FROM karte.point_ledger"):
        with pytest.raises(pgerrors.InsufficientPrivilege, match="append-only"):
            pg_admin.execute(statement)
    assert pg_admin.execute("SELECT count(*) FROM karte.point_ledger").fetchone()[0] == 2


def test_the_store_refuses_entry_edits_and_a_restore_over_entries(filled):
    row = filled.read_row(L.LEDGER, "PT000001", access=STAFF)
    with pytest.raises(KarteError):
        filled.update_row(L.LEDGER, "PT000001", {"points": 1}, version=row["version"], access=STAFF)
    with pytest.raises(KarteError):
        filled.delete_row(L.LEDGER, "PT000001", version=row["version"], access=STAFF)
    frame = pd.DataFrame(filled.read(L.LEDGER))
    with pytest.raises(KarteError, match="append-only"):  # a whole-layer write would delete entries
        filled.write({L.LEDGER: frame})
    assert len(filled.read(L.LEDGER)) == 2


def test_a_restore_into_an_empty_ledger_works(pg):
    frame = pd.DataFrame([{"entry_id": "PT000007", "supporter_id": "S1", "district_code": "A",
                           "municipality_code": "02201", "entry_on": "2026-05-01", "fiscal_year": 2026,
                           "entry_kind": "earned", "points": 50}])
    pg.write({L.LEDGER: frame})
    assert pg.read(L.LEDGER)["entry_id"].tolist() == ["PT000007"]


def test_entries_are_consistent_and_inserted_as_oneself(filled, app):
    good = ("INSERT INTO karte.point_ledger (entry_id, municipality_code, district_code, supporter_id, "
            "entry_kind, points, reverses, updated_by) VALUES (%s, '02201', 'A', 'SPA', %s, %s, %s, %s)")
    for kind, points, reverses in (("earned", -5, None), ("redeemed", 5, None), ("reversal", -5, None),
                                   ("bonus", 5, None)):
        with app.transaction(), pytest.raises(pgerrors.CheckViolation):
            as_level(app, CSW)
            app.execute(good, (f"X{kind}", kind, points, reverses, "csw"))
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # not as someone else
        as_level(app, CSW)
        app.execute(good, ("Xother", "earned", 5, None, "staff"))
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # members read only
        as_level(app, MEMBER_A)
        app.execute(good, ("Xmember", "earned", 5, None, "member-a"))


def test_a_correction_is_a_reversing_entry_and_the_balance_is_the_sum(filled, pg_admin):
    entries = service.ledger(filled, CSW, supporter_id="SPA")
    assert [e["entry_kind"] for e in entries] == ["earned", "redeemed"]
    earned = entries[0]
    assert earned["points"] == 300  # 雪かき 2 h × 100 × 冬期 1.5 (20 December)
    rev = service.reverse_entry(filled, STAFF, entry_id=earned["entry_id"], note="重複", today=TODAY)
    assert rev["points"] == -earned["points"] and rev["reverses"] == earned["entry_id"]
    after = service.ledger(filled, CSW, supporter_id="SPA")
    assert len(after) == 3 and after[0] == {**earned, "entry_ja": after[0]["entry_ja"]}  # untouched
    total = pg_admin.execute("SELECT sum(points) FROM karte.point_ledger "
                             "WHERE supporter_id = 'SPA'").fetchone()[0]
    assert service.balance(after) == total == 300 - 100 - 300


# --- who sees what ------------------------------------------------------------------------------

def test_each_level_reads_its_own_rows_and_the_reads_are_logged(filled, app):
    for table in (L.SUPPORTERS, L.REQUESTS, L.DISPATCHES, L.ACTIVITIES, L.LEDGER):
        seen = {}
        for name, access in LEVELS.items():
            if name in ("public", "prefecture"):
                with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
                    as_level(app, access)
                    app.execute(f"SELECT district_code FROM karte.{table}")
                continue
            with app.transaction():
                as_level(app, access)
                seen[name] = {r[0] for r in app.execute(f"SELECT district_code FROM karte.{table}")}
        if table in (L.SUPPORTERS, L.REQUESTS):
            assert seen["city_staff"] == seen["coordinator"] == {"A", "B"}
        assert seen["district_member"] <= {"A"}
        other_town = Access("csw2", Level.COORDINATOR, municipality="02202")
        with app.transaction():
            as_level(app, other_town)
            assert app.execute(f"SELECT count(*) FROM karte.{table}").fetchone()[0] == 0
    before = len(filled.audit_log())
    rows = service.requests(filled, MEMBER_A)
    assert {r["district_code"] for r in rows} == {"A"}
    log = filled.audit_log().iloc[before:]
    assert set(log["actor"]) == {"member-a"} and set(log["level"]) == {"district_member"}
    assert {"help_requests", "supporter_dispatches", "supporter_activities"} <= set(log["layer"])


def test_the_match_and_the_snowfalls_on_postgis(filled):
    filled.append_rows(L.REQUESTS, [_request("RQC", "A", 200)], access=CSW)
    view = service.match_requests(filled, CSW, winter=True, today=TODAY, recruit=False)
    assert {s["request_id"]: s["supporter_id"] for s in view.suggestions} == {"RQB": "SPB", "RQC": "SPA"}
    fall = service.record_snowfall(filled, CSW, fell_on=TODAY, depth_cm=30, today=TODAY)
    assert fall["snowfall_id"] == "SF000001" and fall["recorded_by"] == "csw"
    member = filled.read(L.SNOWFALLS, access=MEMBER_A)
    assert len(member) == 1  # snowfalls belong to the municipality, not to a district
    assert isinstance(filled.read(L.SUPPORTERS, access=STAFF), gpd.GeoDataFrame)



def test_an_export_restores_into_an_empty_ledger_and_never_over_entries(filled, pg_admin, tmp_path):
    """``karte export`` then ``karte import store``: over a ledger with entries the restore is
    refused whole; into emptied tables the topic's rows come back exactly, versions included."""
    path = export_store(filled, tmp_path / "backup.gpkg")
    copy = GeoPackageStore(path)
    assert len(copy.read(L.LEDGER)) == 2 and len(copy.read(L.SUPPORTERS)) == 2
    before = filled.read_full(L.LEDGER)
    try:  # refused whole today; a restore that leaves the append-only ledgers alone would do too
        import_store(path, filled)
    except KarteError as exc:
        assert "append-only" in str(exc)
    assert len(filled.read(L.SUPPORTERS)) == 2  # nothing doubled
    assert filled.read_full(L.LEDGER)[["entry_id", "version"]].equals(before[["entry_id", "version"]])
    pg_admin.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in MINE) + " RESTART IDENTITY")
    import_store(path, filled)
    back = filled.read_full(L.LEDGER)
    columns = ["entry_id", "points", "version", "updated_by"]
    assert back[columns].reset_index(drop=True).equals(before[columns].reset_index(drop=True))
