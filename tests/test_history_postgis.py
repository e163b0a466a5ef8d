"""The tables of years on PostGIS (issue 12): migration 0005's tables and grants, whole-layer
writes by the pipeline (builds, imports), row edits by city staff and coordinators as themselves
with their access-log rows, and nobody else writing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg
import pytest
from pg_fixtures import as_level
from psycopg import errors as pgerrors

from karte import history
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import AccessDenied, ConflictError
from karte.domain.history import LAYERS
from karte.importing.history import prepare_plan, write_layers
from karte.settings import REPO_DATA

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

TABLES = [str(spec.name) for spec in LAYERS]
CITY = "03215"
STAFF = Access("pg-staff-h", Level.CITY_STAFF, municipality=CITY, route="test:history")
CSW = Access("pg-csw-h", Level.COORDINATOR, municipality=CITY, route="test:history")
OTHER_CSW = Access("pg-csw-other", Level.COORDINATOR, municipality="02201", route="test:history")
MEMBER = Access("pg-member-h", Level.DISTRICT_MEMBER, district="A", municipality=CITY, route="test:history")


@pytest.fixture
def store(pg_store):
    """An empty store (pg_fixtures.reset empties this topic's tables too)."""
    return pg_store


@pytest.fixture
def with_plan(store):
    prepared = prepare_plan(
        store, REPO_DATA / "plans" / "oshu_annual_plan.csv", CSW, {"today": dt.date(2026, 12, 1)}
    )
    assert not prepared.report.problems
    write_layers(store, prepared)  # as the pipeline, logged under the coordinator
    return store


def test_the_tables_and_their_grants(pg_admin):
    found = {
        r[0]
        for r in pg_admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'karte' AND tablename = ANY(%s)", (TABLES,)
        )
    }
    assert found == set(TABLES)
    for table in TABLES:
        writers = ("karte_city_staff", "karte_coordinator") if table != "history" else ("karte_city_staff",)
        for role in (
            "karte_city_staff",
            "karte_coordinator",
            "karte_district_member",
            "karte_public",
            "karte_prefecture",
        ):
            can = {
                p: pg_admin.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", (role, f"karte.{table}", p)
                ).fetchone()[0]
                for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            }
            assert can["SELECT"], (role, table)
            assert can["INSERT"] == can["UPDATE"] == can["DELETE"] == (role in writers), (role, table, can)
            assert not can["TRUNCATE"]


def test_the_pipeline_writes_history_whole_and_reads_it_back(store):
    kartes = {
        "A": {
            "district": {"code": "A", "municipality": {"code": CITY}},
            "base": [{"key": "population", "value": 100}],
            "register": {"total": 3, "with_supporter": 2},
            "cooperators": {},
            "services": [],
        }
    }
    rows = history.history_rows(kartes, fiscal_year=2026, meta={"census_year": "2020", "synthetic": "[]"})
    frame = history.merge_history(None, rows)
    store.write({"history": frame})
    back = store.read("history").sort_values("history_id").reset_index(drop=True)
    assert list(back["history_id"]) == ["H000001", "H000002"]
    assert list(back["fiscal_year"]) == [2026, 2026] and list(back["census_year"]) == [2020, 2020]
    assert history.figures_of(back.iloc[0])["with_supporter_rate"] == round(2 / 3, 4)


def test_a_history_write_moves_the_build_stamp(store, tmp_path):
    """The pages' trends are kept in the build snapshot, so writing the yearly history must change
    the stamp every server process checks (migration 0013; the GeoPackage by the registry)."""
    from karte.store import GeoPackageStore

    rows = history.history_rows({"A": {"district": {"code": "A", "municipality": {"code": CITY}},
                                       "base": [{"key": "population", "value": 100}], "register": {},
                                       "cooperators": {}, "services": []}},
                                fiscal_year=2026, meta={"census_year": "2020", "synthetic": "[]"})
    frame = history.merge_history(None, rows)
    for each in (store, GeoPackageStore(tmp_path / "karte.gpkg")):
        each.write({"history": frame})
        before = each.stamp()
        each.write({"history": frame})
        assert each.stamp() != before, type(each).__name__


def test_coordinators_edit_marks_as_themselves_and_the_log_says_so(with_plan, pg_app_dsn):
    from karte.services import history as years

    _, table, items, _ = years.plan_table(with_plan, CITY)
    item = items[0]["item_id"]
    years.set_mark(
        with_plan, CSW, municipality=CITY, plan=table.name, item_id=item, fiscal_year=2017, text="○★"
    )
    marks = with_plan.read_full("plan_marks")
    row = marks[(marks["item_id"] == item) & (marks["fiscal_year"] == 2017)].iloc[0]
    assert row["marks"] == "○★" and row["updated_by"] == CSW.user
    log = with_plan.audit_log()
    mine = log[(log["actor"] == CSW.user) & (log["layer"] == "plan_marks")]
    assert list(mine["action"])[-1] == "update" and list(mine["level"])[-1] == "coordinator"
    with pytest.raises(ConflictError):
        years.set_mark(
            with_plan,
            CSW,
            municipality=CITY,
            plan=table.name,
            item_id=item,
            fiscal_year=2017,
            text="○",
            version=int(row["version"]) - 1,
        )
    with pytest.raises(AccessDenied):
        years.set_mark(
            with_plan, MEMBER, municipality=CITY, plan=table.name, item_id=item, fiscal_year=2017, text="○"
        )
    years.save_evaluation(
        with_plan,
        STAFF,
        municipality=CITY,
        plan=table.name,
        goal_no="1",
        fiscal_year=2020,
        kind="internal",
        achievements="広報を工夫した",
        issues="",
    )
    assert list(with_plan.read("plan_evaluations")["achievements"]) == ["広報を工夫した"]


@pytest.mark.parametrize("level", [Level.PUBLIC, Level.PREFECTURE, Level.DISTRICT_MEMBER])
def test_levels_without_the_right_cannot_write_in_sql(with_plan, pg_app_dsn, level):
    access = {
        Level.PUBLIC: PUBLIC,
        Level.PREFECTURE: Access("pref", Level.PREFECTURE),
        Level.DISTRICT_MEMBER: MEMBER,
    }[level]
    with psycopg.connect(pg_app_dsn) as conn:
        for statement in (
            "UPDATE karte.plan_marks SET marks = '◎'",
            "DELETE FROM karte.plan_items",
            "INSERT INTO karte.indicators (indicator_id, key) VALUES ('I9', 'x')",
        ):
            with conn.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
                as_level(conn, access)
                conn.execute(statement)
        with conn.transaction():
            as_level(conn, access)
            assert conn.execute("SELECT count(*) FROM karte.plan_marks").fetchone()[0] == 300


def test_a_coordinator_cannot_write_history(with_plan, pg_app_dsn):
    with (
        psycopg.connect(pg_app_dsn) as conn,
        conn.transaction(),
        pytest.raises(pgerrors.InsufficientPrivilege),
    ):
        as_level(conn, CSW)
        conn.execute("INSERT INTO karte.history (history_id, fiscal_year) VALUES ('H9', 2026)")


def test_rows_are_addressed_within_the_users_municipality(with_plan):
    from karte.services import history as years

    *_, marks = years.plan_table(with_plan, CITY)
    mark = marks[0]
    with pytest.raises(Exception) as caught:  # another city's coordinator does not find the row
        with_plan.update_row(
            "plan_marks", mark["mark_id"], {"marks": "◎"}, version=int(mark["version"]), access=OTHER_CSW
        )
    assert getattr(caught.value, "status", None) == 404
    assert pd.notna(mark["version"])
