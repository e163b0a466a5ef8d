"""The hand-out ledger on PostGIS (migration 0009): append-only for every application role, row-level
security by level, district and municipality, and the whole ledger working through the store.

The pytest session's PostGIS database keeps the ledger's rows between tests (its tables are not
among those the fixtures empty, and no role may delete from them): each test looks at the copies it
made itself."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from pg_fixtures import as_level, reset

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.copies import COPIES, EVENTS, Event, State
from karte.domain.errors import AccessDenied, StoreError
from karte.domain.layers import LAYERS
from karte.services import copies
from karte.services.sheets import district_sheet_pdf, print_sheets

pytest_plugins = ["pg_fixtures"]
pytestmark = [pytest.mark.postgis, pytest.mark.slow]

ROLES = ("karte_city_staff", "karte_coordinator", "karte_district_member", "karte_public",
         "karte_prefecture", "karte_pipeline")
CSW = Access("csw.pg", Level.COORDINATOR, route="test")
STAFF = Access("staff.pg", Level.CITY_STAFF, route="test")
MEMBER = Access("member.pg", Level.DISTRICT_MEMBER, "S05", route="test")


@pytest.fixture(scope="module")
def store(demo, pg_admin_url, pg_app_url):
    """The demo's built layers written into this session's PostGIS database, as karte_app (what
    ``import_store`` does, without the record layers: the session's demo may hold a ledger from a
    web test, and a whole-layer write must never replace one, :data:`karte.domain.copies.NOT_REPLACED`)."""
    from karte.domain.layers import PERSONAL_LAYERS
    from karte.store import GeoPackageStore
    from karte.store.postgis import PostGISStore

    reset(pg_admin_url)
    store = PostGISStore(pg_app_url)
    source = GeoPackageStore(demo[1] / "karte.gpkg")
    store.write({name: source.read_full(name) if name in PERSONAL_LAYERS else source.read(name)
                 for name in source.layers() if name in LAYERS and not LAYERS[name].records})
    yield store
    store.close()


@pytest.fixture(scope="module")
def made(store, tmp_path_factory) -> dict[str, str]:
    """Copies made through the store: S05 and S06 drill sheets (coordinator), an S05 CSV (member),
    a sealed list (staff), each with an event."""
    out = tmp_path_factory.mktemp("pg-sheets")
    sheets = print_sheets(store, ["S05", "S06"], edition="drill", access=CSW, out=out, workers=1).copies
    csv = copies.record_export(store, MEMBER, kind="csv", district="S05", layer="register", rows=90)
    sealed, _ = copies.sealed_list(store, STAFF, "E0220100157121")
    copies.record_event(store, CSW, sheets["S05"], Event.HANDED_OVER, person="民生委員")
    return {"S05": sheets["S05"], "S06": sheets["S06"], "csv": csv, "sealed": sealed["copy_id"]}


def test_update_delete_and_truncate_are_refused_to_every_application_role(made, pg_app_dsn, pg_admin):
    for table in (COPIES, EVENTS):
        for role in ROLES:
            for statement in (f"UPDATE karte.{table} SET note = 'changed'",
                              f"DELETE FROM karte.{table}", f"TRUNCATE karte.{table}"):
                with psycopg.connect(pg_app_dsn) as conn, conn.transaction():
                    as_level(conn, STAFF, role=role)
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(statement)
        # the owner too: the row trigger refuses what the grants would allow it
        for statement in (f"UPDATE karte.{table} SET note = 'changed'", f"DELETE FROM karte.{table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                pg_admin.execute(statement)
    rows = pg_admin.execute("SELECT count(*) FROM karte.copies WHERE note = 'changed'").fetchone()[0]
    assert rows == 0


def test_the_store_refuses_to_change_a_copy(store, made):
    row = store.read_row(COPIES, made["S05"], access=STAFF)
    with pytest.raises((AccessDenied, StoreError)):
        store.update_row(COPIES, made["S05"], {"holder_name": "x"}, version=row["version"], access=STAFF)
    with pytest.raises((AccessDenied, StoreError)):
        store.delete_row(COPIES, made["S05"], version=row["version"], access=STAFF)
    assert store.read_row(COPIES, made["S05"], access=STAFF)["holder_name"] == row["holder_name"]


def test_row_level_security_by_level_district_and_municipality(store, made, pg_app_dsn):
    mine = set(made.values())
    seen = {a.user: {r["copy_id"] for r in store.read_records(COPIES, access=a)} & mine
            for a in (STAFF, CSW, MEMBER)}
    assert seen["staff.pg"] == seen["csw.pg"] == mine
    sealed = {made["sealed"]} if _district(store, made["sealed"]) == "S05" else set()
    s05 = {made["S05"], made["csv"]} | sealed
    assert seen["member.pg"] == s05
    assert store.read_records(COPIES, access=PUBLIC) == []
    assert store.read_records(COPIES, access=Access("pref", Level.PREFECTURE)) == []
    assert store.read_records(COPIES, access=Access("csw2", Level.COORDINATOR, municipality="02202")) == []

    def insert(access, *, role=None, district="S05", kind="drill", by=None):
        with psycopg.connect(pg_app_dsn) as conn:  # only whether it is allowed: never committed
            as_level(conn, access, role=role)
            conn.execute("INSERT INTO karte.copies (copy_id, district_code, kind, updated_by) "
                         "VALUES (%s, %s, %s, %s)", ("K999000", district, kind, by or access.user))
            conn.rollback()

    for refused, args in (("another district", dict(access=MEMBER, district="S06")),
                          ("a sealed list by a coordinator", dict(access=CSW, kind="sealed")),
                          ("a sealed list by a member", dict(access=MEMBER, kind="sealed")),
                          ("as someone else", dict(access=CSW, by="someone.else"))):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            insert(**args)
        assert refused
    for role in ("karte_public", "karte_prefecture"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            insert(PUBLIC if role == "karte_public" else Access("p", Level.PREFECTURE), role=role)
        with psycopg.connect(pg_app_dsn) as conn, conn.transaction():
            as_level(conn, PUBLIC, role=role)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM karte.copy_events")
    insert(STAFF, kind="sealed")  # city staff may (rolled back)
    insert(MEMBER)


def _district(store, copy_id):
    return store.read_row(COPIES, copy_id, access=STAFF)["district_code"]


def test_the_ledger_works_through_the_postgis_store(store, made):
    views = {v.copy_id: v for v in copies.ledger(store, CSW) if v.copy_id in made.values()}
    assert set(views) == set(made.values())
    assert views[made["S05"]].state is State.OUT and views[made["S05"]].holder == "民生委員"
    assert views[made["csv"]].row["made_by"] == "member.pg" and views[made["csv"]].row["persons"] == 90
    assert views[made["sealed"]].row["scope"] == "all"
    assert not any(v.superseded for v in views.values())
    copies.record_event(store, CSW, made["S06"], Event.RETURNED, person="会長")
    out = {v.copy_id for v in copies.ledger(store, CSW, outstanding=True)}
    assert made["S06"] not in out and {made["S05"], made["csv"], made["sealed"]} <= out
    # the register changes: S05's copies (sheet and CSV) are flagged, the returned S06 one is not
    reg = store.read("register", district="S05", access=STAFF)
    person = reg[reg["consent"] == "consented"].iloc[0]["person_id"]
    row = store.read_row("register", person, access=STAFF)
    store.update_row("register", person, {"address": row["address"] + "（転居）"}, version=row["version"],
                     access=STAFF)
    flagged = {v.copy_id for v in copies.ledger(store, CSW, superseded=True)}
    assert {made["S05"], made["csv"]} <= flagged and made["S06"] not in flagged
    # events and reads are in the access log as their real users
    log = store.audit_log()
    appends = log[(log["layer"] == EVENTS) & (log["action"] == "append")]
    assert {"csw.pg"} <= set(appends["actor"]) and set(appends["level"]) <= {"coordinator", "city_staff",
                                                                           "district_member"}
    data = copies.yearly_report(store, CSW, "S05", copies.fiscal_year_of(copies.today_jst()))
    assert data.startswith(b"%PDF")
    data = district_sheet_pdf(store, "S05", edition="confidential", access=MEMBER)
    assert b"%PDF" in data[:8]
    newest = copies.ledger(store, MEMBER)[0]
    assert newest.row["made_by"] == "member.pg" and newest.kind.value == "confidential"
    assert dt.date.fromisoformat(newest.due_back) >= copies.today_jst()
