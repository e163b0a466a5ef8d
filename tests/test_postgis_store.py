"""The PostGIS store beyond the shared contract: migrations (0004: the municipality backfill and
its downgrade), atomic and validated writes, keys unique within a municipality, rows written as
the acting user, optimistic locking under concurrent edits, record ids, the lossless GeoPackage
export/import, and a full demo build."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from pg_fixtures import as_level, libpq, migrations_serialised
from shapely.geometry import MultiPolygon, Point
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from test_store import (
    CITY,
    OTHER_CITY,
    all_layers,
    assert_same,
    cooperators,
    decisions,
    meta,
    odd_layer,
    register,
    square,
)

from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied, ConflictError, KarteError, NotFoundError, StoreError
from karte.domain.layers import LAYERS, MUNICIPALITY, PERSONAL_LAYERS, RECORD_LAYERS, Layer
from karte.domain.security import NOT_EXPORTED
from karte.store import GeoPackageStore, open_store
from karte.store.cli import db_current, db_head, db_upgrade, export_store, import_store
from karte.store.postgis import PostGISStore

#: PostGIS fixtures and the CI guard (fails the session if a PostGIS test skipped with CI=true).
pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis
CSW = Access("csw", Level.COORDINATOR)
STAFF = Access("staff", Level.CITY_STAFF)


def decision(person: str = "P1", district: str = "A", **extra) -> dict:
    return {"person_id": person, "cooperator_id": "C1", "district_code": district,
            "decision": "confirmed", "distance_m": 50.0, "decided_by": "csw",
            "decided_at": "2026-12-01T09:00:00+00:00", **extra}


@pytest.fixture
def filled(pg_store):
    pg_store.write(all_layers())
    return pg_store


# -- migrations ------------------------------------------------------------------------------------

@pytest.fixture
def fresh_database(pg_admin, pg_admin_url, pg_app_url):
    """An empty database on the same server (dropped afterwards): (owner URL, app URL). Other test
    sessions do not migrate meanwhile (:func:`pg_fixtures.migrations_serialised`)."""
    name = f"karte_migr_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE DATABASE {name}")
    admin, app = (make_url(u).set(database=name).render_as_string(hide_password=False)
                  for u in (pg_admin_url, pg_app_url))
    with migrations_serialised():
        yield admin, app
    pg_admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_upgrade_creates_then_is_idempotent_and_matches_the_models(fresh_database):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from karte.store.postgis_models import SCHEMA, Base

    admin, app = fresh_database
    before = PostGISStore(app)
    assert before.layers() == [] and not before.exists() and before.stamp() == ""
    with pytest.raises(StoreError, match="karte db upgrade"):
        before.write({"meta": meta()})
    before.close()
    assert db_current(admin) is None
    db_upgrade(admin)
    db_upgrade(admin)  # again: nothing to do, no error
    assert db_current(admin) == db_head()
    engine = create_engine(admin, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_schemas": True, "version_table_schema": SCHEMA,
            "include_name": lambda name, kind, parents: kind != "schema" or name == SCHEMA})
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    engine.dispose()
    assert diff == []
    with PostGISStore(app) as store:
        assert store.stamp() == ""  # migrated, nothing written
        store.write({"meta": meta()})
        assert store.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}
        assert store.stamp()


def test_downgrade_and_upgrade_again(fresh_database):
    admin, _ = fresh_database
    from alembic import command

    from karte.store.cli import alembic_config

    db_upgrade(admin)
    command.downgrade(alembic_config(admin), "base")
    assert db_current(admin) is None
    db_upgrade(admin)
    assert db_current(admin) == db_head()


def test_0002_moves_the_decisions_out_of_the_unprotected_table_and_back(fresh_database, monkeypatch):
    """Decisions written at 0001 (an unmodelled layer in ``extra_layers``, readable by every role)
    move to their own table under row-level security, in order, extra columns and all; the
    downgrade puts them back. (0004 gives them the one municipality of the small areas.)"""
    from alembic import command

    from karte.store import postgis_models
    from karte.store.cli import alembic_config

    admin, app = fresh_database
    frame = decisions().assign(note=["電話済み", None, "再訪"])  # of municipality 02201
    at_0001 = frame.drop(columns=MUNICIPALITY)  # the 0001 store knew no municipality
    member_b = Access("m", Level.DISTRICT_MEMBER, "B")

    def as_at_0001(write: bool, expected: pd.DataFrame):
        """The store as the 0001 code had it (no model for the decisions); how many of them a
        member of district B reads there in raw SQL."""
        with monkeypatch.context() as m:
            for models in (postgis_models.LAYER_MODELS, postgis_models.PERSONAL_MODELS):
                m.delitem(models, Layer.DECISIONS)
            with PostGISStore(app) as old:
                if write:
                    old.write({"meta": meta(), "small_areas": small_areas("022010010", "022010020"),
                               Layer.DECISIONS: at_0001})
                assert_same(old.read(Layer.DECISIONS), expected)
        with psycopg.connect(libpq(app)) as conn:
            conn.execute("SET LOCAL ROLE karte_district_member")
            conn.execute("SELECT set_config('karte.district', 'B', true)")
            return conn.execute("SELECT count(*) FROM karte.extra_layers WHERE layer = %s",
                                (Layer.DECISIONS,)).fetchone()[0]

    def in_extra_layers() -> int:
        with psycopg.connect(libpq(admin)) as conn:
            return conn.execute("SELECT count(*) FROM karte.extra_layers WHERE layer = %s",
                                (Layer.DECISIONS,)).fetchone()[0]

    db_upgrade(admin, revision="0001")
    assert as_at_0001(True, at_0001) == 3  # the leak: every row to a member of district B
    db_upgrade(admin)
    db_upgrade(admin)  # idempotent
    assert db_current(admin) == db_head() and in_extra_layers() == 0
    with PostGISStore(app) as store:
        assert_same(store.read(Layer.DECISIONS), frame)
        assert list(store.read(Layer.DECISIONS, access=member_b)["decision_id"]) == ["D000002"]
        assert store.read(Layer.DECISIONS, access=Access("p", Level.PUBLIC)).empty
        assert store.read_row(Layer.DECISIONS, "D000003", access=STAFF)["note"] == "再訪"
        assert store.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}
        assert store.stamp()  # the upgrade stamps a store that already holds snapshot layers
    command.downgrade(alembic_config(admin), "0001")
    assert in_extra_layers() == 3
    assert as_at_0001(False, frame) == 3  # the municipality too, kept as an unmodelled column
    db_upgrade(admin)
    with PostGISStore(app) as store:
        assert_same(store.read(Layer.DECISIONS), frame)


def test_0003_continues_the_ids_of_existing_decisions_and_downgrades_cleanly(fresh_database):
    """Decisions written at 0002 keep their ids; after 0003 appends continue past them, and the
    coordinator's appends are theirs. 0003 applied twice converges; down to 0002 and up again too."""
    from alembic import command

    from karte.store.cli import alembic_config

    admin, app = fresh_database
    db_upgrade(admin, revision="0002")
    with psycopg.connect(libpq(admin)) as conn:  # rows as the 0002 store wrote them
        conn.execute("INSERT INTO karte.layer_catalog (layer, columns) VALUES (%s, %s)",
                     (Layer.DECISIONS, json.dumps([{"name": "decision_id", "kind": "text", "where": "column"},
                                                   {"name": "district_code", "kind": "text",
                                                    "where": "column"}])))
        conn.execute("INSERT INTO karte.supporter_decisions (decision_id, district_code, updated_by) "
                     "VALUES ('D000007', 'A', 'old'), ('X9', 'B', 'old')")
    db_upgrade(admin)
    command.stamp(alembic_config(admin), "0002")  # 0003 run again over itself (by hand, or half-done)
    db_upgrade(admin)
    with PostGISStore(app) as store:
        assert store.stamp() == ""  # no snapshot layer written yet
        row = store.append_rows(Layer.DECISIONS, [{"district_code": "A"}], access=CSW)[0]
        assert row["decision_id"] == "D000008" and row["updated_by"] == "csw"
    command.downgrade(alembic_config(admin), "0002")
    assert db_current(admin) == "0002"
    with psycopg.connect(libpq(admin)) as conn:
        gone = conn.execute("SELECT to_regclass('karte.snapshot_stamp'), "
                            "to_regclass('karte.supporter_decisions_decision_id_seq')").fetchone()
        assert gone == (None, None)
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'karte' "
                            "AND table_name = 'audit_log' AND column_name = 'action'").fetchone() == (0,)
    db_upgrade(admin)
    with PostGISStore(app) as store:
        assert store.append_rows(Layer.DECISIONS, [{"district_code": "B"}], access=CSW)[0]["decision_id"] \
            == "D000009"


def small_areas(*key_codes: str) -> gpd.GeoDataFrame:
    """Small areas side by side, one per KEY_CODE (whose first five digits are the municipality)."""
    return gpd.GeoDataFrame({"key_code": list(key_codes), "district_code": ["A"] * len(key_codes)},
                            geometry=[MultiPolygon([square(100 * i, 0)]) for i in range(len(key_codes))],
                            crs=6678)


#: Tables 0004 gives ``municipality_code``.
MUNICIPAL_TABLES = ("small_areas", "districts", "district_map", "register", "cooperators", "services",
                    "shelters", "emergency_sites", "kartes", "meta", "supporter_decisions", "extra_layers")


def _codes(admin: str) -> dict[str, set]:
    """The municipality codes in each table of :data:`MUNICIPAL_TABLES` (as the owner)."""
    with psycopg.connect(libpq(admin)) as conn:
        return {t: {r[0] for r in conn.execute(f"SELECT DISTINCT municipality_code FROM karte.{t}")}
                for t in MUNICIPAL_TABLES}


def _catalogue(admin: str) -> dict[str, list[tuple[str, str]]]:
    with psycopg.connect(libpq(admin)) as conn:
        return {layer: [(c["name"], c["where"]) for c in columns]
                for layer, columns in conn.execute("SELECT layer, columns FROM karte.layer_catalog")}


def _write_at_0003(admin: str, app: str, key_codes: tuple[str, ...]) -> list[tuple]:
    """Layers as the 0003 store wrote them: no municipality code, except services that carried one
    as an unmodelled column (kept in ``extra``). Returns the register's rows with their versions."""
    with PostGISStore(app) as old:
        old.write({"small_areas": small_areas(*key_codes), "register": register().drop(columns=MUNICIPALITY),
                   "meta": meta(), "pts": odd_layer(),
                   Layer.DECISIONS: decisions().drop(columns=MUNICIPALITY)})
    with psycopg.connect(libpq(admin)) as conn:
        conn.execute("INSERT INTO karte.services (service_id, extra) VALUES "
                     "('S1', '{\"municipality_code\": \"02203\", \"rating\": 4}')")
        conn.execute("INSERT INTO karte.layer_catalog (layer, columns) VALUES ('services', %s)", (json.dumps([
            {"name": "service_id", "kind": "text", "where": "column"},
            {"name": MUNICIPALITY, "kind": "text", "where": "extra"},
            {"name": "rating", "kind": "integer", "where": "extra"}]),))
        return conn.execute("SELECT person_id, version, updated_at, updated_by FROM karte.register "
                            "ORDER BY fid").fetchall()


@pytest.mark.parametrize(("key_codes", "code"), [(("022010010", "022010020"), CITY),
                                                 (("022010010", "022020010"), None)],
                         ids=["one-municipality", "two-municipalities"])
def test_0004_fills_the_one_municipality_of_the_small_areas_or_leaves_null(fresh_database, key_codes, code):
    """A store written before 0004: with one municipality in its small areas every row of every
    table gets it, and every layer's catalogue lists it; with two, rows stay NULL (no user sees a
    personal row then; the trusted pipeline does). A code already written moves in either way,
    and the backfill keeps the row versions."""
    admin, app = fresh_database
    db_upgrade(admin, revision="0003")
    versions = _write_at_0003(admin, app, key_codes)
    with PostGISStore(app) as store:
        stamp = store.stamp()
    db_upgrade(admin)
    codes = _codes(admin)
    assert codes.pop("services") == {"02203"}  # moved in from the JSONB bag
    empty = {"districts", "district_map", "cooperators", "shelters", "emergency_sites", "kartes"}
    assert codes == {t: set() if t in empty else {code} for t in MUNICIPAL_TABLES if t != "services"}
    catalogue = _catalogue(admin)
    assert catalogue["services"][1] == (MUNICIPALITY, "column")
    with psycopg.connect(libpq(admin)) as conn:
        assert conn.execute("SELECT extra FROM karte.services").fetchone() == ({"rating": 4},)
        assert conn.execute("SELECT person_id, version, updated_at, updated_by FROM karte.register "
                            "ORDER BY fid").fetchall() == versions
    with PostGISStore(app) as store:
        assert len(store.read("register")) == 6  # the trusted pipeline: every row
        assert store.read("services")[MUNICIPALITY].tolist() == ["02203"]
        csw_reads = store.read("register", access=CSW)
        assert store.stamp() != stamp  # the services changed, at least
        if code is None:
            assert csw_reads.empty
            assert all(MUNICIPALITY not in [n for n, _ in columns]
                       for layer, columns in catalogue.items() if layer != "services")
            return
        assert sorted(csw_reads["person_id"]) == ["P1", "P3", "P5", "P6"]
        assert list(csw_reads.columns[:2]) == ["person_id", MUNICIPALITY]  # where the build puts it
        assert list(store.read(Layer.DECISIONS).columns) == list(decisions().columns)  # the registry's
        assert set(store.read("pts")[MUNICIPALITY]) == {CITY}
        assert all((MUNICIPALITY, "column") in columns for columns in catalogue.values())


def test_0004_downgrade_and_upgrade_converge(fresh_database):
    """Down to 0003 the codes go back into the JSONB bag (as that store kept an unmodelled column)
    and the keys are unique again across the store; up again, every layer reads exactly as before,
    row versions included; 0004 applied twice converges. A key that repeats across municipalities
    stops the downgrade, which then changes nothing."""
    from alembic import command

    from karte.store.cli import alembic_config

    admin, app = fresh_database
    db_upgrade(admin)
    elsewhere = register().iloc[:1].assign(person_id="P9", municipality_code=OTHER_CITY)
    with PostGISStore(app) as store:
        store.write({**all_layers(), "register": pd.concat([register(), elsewhere], ignore_index=True),
                     Layer.DECISIONS: decisions(), "small_areas": small_areas("022010010")})
        store.append_rows(Layer.DECISIONS, [{"person_id": "P1", "district_code": "A"}], access=CSW)
        before = {name: store.read_full(name) for name in store.layers()}
    command.downgrade(alembic_config(admin), "0003")
    assert db_current(admin) == "0003"
    with psycopg.connect(libpq(admin)) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'karte' "
                            "AND column_name = %s", (MUNICIPALITY,)).fetchone() == (0,)
        assert conn.execute("SELECT extra ->> %s FROM karte.register WHERE person_id = 'P9'",
                            (MUNICIPALITY,)).fetchone() == (OTHER_CITY,)
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ux_register_person_id'"
                            ).fetchone()[0].endswith("(person_id)")
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('karte_prefecture', "
                            "'karte_pipeline')").fetchone() == (2,)  # roles are the cluster's: kept
    db_upgrade(admin)
    command.stamp(alembic_config(admin), "0003")  # 0004 again over itself (by hand, or half-done)
    db_upgrade(admin)
    with PostGISStore(app) as store:
        for name, frame in before.items():
            assert_same(store.read_full(name), frame)
        store.write({"register": pd.concat([register(), register().assign(municipality_code=OTHER_CITY)],
                                           ignore_index=True)})  # P1..P6 in both
        kept = store.read_full("register")
    with pytest.raises(sa.exc.IntegrityError, match="ux_register_person_id"):
        command.downgrade(alembic_config(admin), "0003")
    assert db_current(admin) == db_head()
    with PostGISStore(app) as store:
        assert_same(store.read_full("register"), kept)


def test_keys_are_unique_within_a_municipality_only(pg_store, pg_admin):
    both = pd.concat([register(), register().assign(municipality_code=OTHER_CITY)], ignore_index=True)
    pg_store.write({"register": both})
    assert len(pg_store.read("register")) == 12
    with pytest.raises(StoreError, match="重複"):
        pg_store.write({"register": pd.concat([both, register().iloc[:1]], ignore_index=True)})
    there = Access("csw-there", Level.COORDINATOR, municipality=OTHER_CITY)
    pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="X1")], access=CSW)
    assert pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="X1")], access=there)[0][
        MUNICIPALITY] == OTHER_CITY
    with pytest.raises(StoreError, match="重複"):
        pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="X1")], access=CSW)
    unique = {r[0]: r[1] for r in pg_admin.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'karte' "
        "AND indexdef LIKE 'CREATE UNIQUE%' AND indexname LIKE 'ux_%'")}
    # one per keyed layer: register, cooperators and every record layer (the registry's key)
    keyed = {("register", "person_id"), ("cooperators", "cooperator_id"),
             *((str(name), LAYERS[name].key) for name in RECORD_LAYERS)}
    assert (str(Layer.DECISIONS), "decision_id") in keyed and len(keyed) > 10
    assert {name: definition.split(" USING btree ")[1] for name, definition in unique.items()} == {
        f"ux_{table}_municipality_code_{key}": f"(municipality_code, {key})" for table, key in keyed}


def test_upgrade_needs_a_postgres_url():
    with pytest.raises(StoreError, match="postgresql"):
        db_upgrade("workspace/karte.gpkg")
    with pytest.raises(StoreError, match="postgresql"):
        db_current("workspace/karte.gpkg")


def test_an_unreachable_server_is_a_store_error_without_the_password():
    url = "postgresql+psycopg://karte_app:s3cret@127.0.0.1:1/karte"
    for call in (db_current, db_upgrade):
        with pytest.raises(StoreError) as info:
            call(url)
        assert "s3cret" not in str(info.value)


def test_open_store_picks_postgis_for_database_urls(pg_app_url):
    store = open_store(pg_app_url)
    assert isinstance(store, PostGISStore)
    assert "karte-dev" not in store.location  # no password in messages
    store.close()


# -- writes ----------------------------------------------------------------------------------------

def test_a_failing_write_leaves_every_layer_as_it_was(filled):
    duplicated = register()
    duplicated.loc[1, "person_id"] = "P1"  # the unique index refuses it, after meta was replaced
    with pytest.raises(StoreError, match="重複"):
        filled.write({"meta": meta().iloc[:1], "register": duplicated})
    assert filled.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}
    assert_same(filled.read("register"), register())


def test_ctrl_c_midway_rolls_back_and_the_pooled_connection_is_clean(filled, monkeypatch):
    import karte.store.postgis as postgis

    real, done = postgis._replace, []

    def then_ctrl_c(cur, prepared, *, actor):
        real(cur, prepared, actor=actor)   # meta is replaced inside the transaction ...
        done.append(prepared.layer)
        raise KeyboardInterrupt            # ... and Ctrl-C arrives before the register

    monkeypatch.setattr(postgis, "_replace", then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        filled.write({"meta": meta().iloc[:1], "register": register().iloc[:2]})
    monkeypatch.undo()
    assert done == ["meta"]
    assert filled.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}
    assert_same(filled.read("register"), register())
    with filled._tx(filled.access) as cur:  # the pool handed back a clean connection
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cur.fetchone() == (0,)


def test_every_problem_is_reported_and_nothing_written(filled):
    bad_coop = cooperators()
    bad_coop["capacity"] = [1.5, 2, "many"]
    bad_reg = register()
    bad_reg.loc[0, "geometry"] = bad_reg.geometry.iloc[0].buffer(1)
    with pytest.raises(StoreError) as info:
        filled.write({"cooperators": bad_coop, "register": bad_reg,
                      "meta": gpd.GeoDataFrame(meta(), geometry=[Point(0, 0)] * 2, crs=6678)})
    message = str(info.value)
    assert "capacity" in message and "行 1, 3" in message
    assert "POINT 以外" in message and "行 1" in message
    assert "属性表" in message
    assert_same(filled.read("cooperators"), cooperators())


def test_frames_are_reprojected_and_need_a_crs(pg_store):
    wgs84 = register().to_crs(4326)
    pg_store.write({"register": wgs84})
    got = pg_store.read("register")
    assert got.crs == "EPSG:6678"
    assert got.geometry.iloc[0].distance(Point(10, 10)) < 1e-6
    with pytest.raises(StoreError, match="座標参照系"):
        pg_store.write({"register": register().set_crs(None, allow_override=True)})


def test_only_city_staff_write(filled):
    for access in (CSW, Access("m", Level.DISTRICT_MEMBER, "A"), Access("p", Level.PUBLIC)):
        with pytest.raises(AccessDenied, match="権限"):  # refused by the database: no grant
            filled.as_user(access).write({"meta": meta()})
        with pytest.raises(AccessDenied, match="権限"):
            filled.write({"meta": meta()}, access=access)
    assert filled.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}


def test_a_personal_layer_is_refused_before_anything_is_touched(filled, monkeypatch):
    import karte.store.postgis as postgis

    def no_transaction(*args, **kwargs):
        raise AssertionError("the refusal must come before the database")

    monkeypatch.setattr(postgis.PostGISStore, "_tx", no_transaction)
    for access in (CSW, Access("m", Level.DISTRICT_MEMBER, "A")):
        with pytest.raises(AccessDenied, match="市職員だけ"):
            filled.write({"meta": meta(), "cooperators": cooperators()}, access=access)


def test_whole_layer_writes_by_a_user_are_logged_and_the_pipeline_is_not(filled):
    who = Access(f"staff-{uuid.uuid4()}", Level.CITY_STAFF, route="import:register")
    filled.write({"register": register().iloc[:2], "meta": meta()}, access=who)
    log = filled.audit_log()
    mine = log[log["actor"] == who.user]
    assert list(zip(mine["action"], mine["layer"], mine["rows"], mine["route"], strict=True)) == [
        ("write", "register", 2, "import:register")]
    before = len(filled.audit_log())
    filled.write({"register": register()})
    assert len(filled.audit_log()) == before
    assert filled.read_full("register")["updated_by"].tolist() == [filled.access.user] * 6


# -- optimistic locking ----------------------------------------------------------------------------

def test_update_bumps_the_version_and_a_stale_version_conflicts(filled):
    row = filled.read_row("register", "P1", access=CSW)
    assert row["plan_status"] == "done" and row["updated_by"] == filled.access.user
    v2 = filled.update_row("register", "P1", {"plan_status": "in_progress", "supporter_ids": "C2"},
                           version=row["version"], access=CSW)
    assert v2 > row["version"]
    again = filled.read_row("register", "P1", access=CSW)
    assert (again["plan_status"], again["supporter_ids"], again["version"], again["updated_by"]) == (
        "in_progress", "C2", v2, "csw")
    with pytest.raises(ConflictError, match=f"読み込んだ版 {row['version']}、現在の版 {v2}"):
        filled.update_row("register", "P1", {"plan_status": "none"}, version=row["version"], access=CSW)
    assert filled.read_row("register", "P1", access=STAFF)["plan_status"] == "in_progress"  # kept


def test_two_coordinators_editing_at_once_exactly_one_wins(filled, pg_app_url):
    start = filled.read_row("register", "P3", access=STAFF)["version"]
    n = 6
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    store = PostGISStore(pg_app_url, pool_size=n)

    def edit(i):
        barrier.wait()
        try:
            results[i] = store.update_row("register", "P3", {"shelter_id": f"S-{i}"}, version=start,
                                          access=Access(f"csw{i}", Level.COORDINATOR))
        except ConflictError as exc:
            results[i] = exc

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    winners = [i for i, r in enumerate(results) if isinstance(r, int)]
    assert len(winners) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == n - 1
    final = filled.read_row("register", "P3", access=STAFF)
    assert final["shelter_id"] == f"S-{winners[0]}" and final["version"] == results[winners[0]]


def test_an_edit_blocked_behind_an_open_transaction_conflicts_when_it_commits(filled, pg_app_dsn):
    start = filled.read_row("register", "P5", access=STAFF)["version"]
    outcome = {}
    with psycopg.connect(pg_app_dsn) as first:
        as_level(first, Access("first", Level.COORDINATOR))
        first.execute("UPDATE karte.register SET plan_status = 'none' WHERE person_id = 'P5'")

        def second():
            try:
                outcome["v"] = filled.update_row("register", "P5", {"plan_status": "in_progress"},
                                                 version=start, access=CSW)
            except ConflictError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting on the row lock
        first.commit()
        thread.join(10)
    assert "error" in outcome and "v" not in outcome
    row = filled.read_row("register", "P5", access=STAFF)
    assert (row["plan_status"], row["updated_by"]) == ("none", "first")
    assert row["version"] > start  # raw SQL updates bump the version too (trigger)


def test_row_edit_rules(filled):
    v = filled.read_row("register", "P1", access=STAFF)["version"]
    with pytest.raises(StoreError, match=r"version は変更できません.*nickname はありません"):
        filled.update_row("register", "P1", {"version": 1, "nickname": "x"}, version=v, access=STAFF)
    with pytest.raises(NotFoundError) as info:
        filled.update_row("register", "nobody", {"plan_status": "none"}, version=v, access=STAFF)
    assert "nobody" not in str(info.value)
    with pytest.raises(NotFoundError) as hidden:  # refused consent: invisible, so not editable, for a CSW
        filled.update_row("register", "P2", {"plan_status": "none"}, version=v, access=CSW)
    assert str(hidden.value) == str(info.value)  # the same answer as for a row that is not there
    with pytest.raises(AccessDenied, match="権限"):
        filled.update_row("register", "P1", {"plan_status": "none"}, version=v,
                          access=Access("m", Level.DISTRICT_MEMBER, "A"))
    with pytest.raises(NotFoundError):
        filled.read_row("register", "P1", access=Access("p", Level.PUBLIC))
    with pytest.raises(AccessDenied, match="権限"):  # a WITH CHECK policy: shareable rows stay shareable
        filled.update_row("register", "P1", {"consent": "refused"}, version=v, access=CSW)
    v2 = filled.update_row("register", "P1", {"geometry": Point(11, 12)}, version=v, access=STAFF)
    assert filled.read_row("register", "P1", access=STAFF)["geometry"].equals(Point(11, 12))
    with pytest.raises(StoreError, match="行単位"):
        filled.update_row("services", "x", {"name": "y"}, version=v2, access=STAFF)


def test_unmodelled_columns_are_editable(pg_store):
    reg = register().assign(note=["a", None, "c", "d", "e", "f"])
    pg_store.write({"register": reg})
    v = pg_store.read_row("register", "P2", access=STAFF)["version"]
    pg_store.update_row("register", "P2", {"note": "b"}, version=v, access=STAFF)
    assert list(pg_store.read("register")["note"]) == ["a", "b", "c", "d", "e", "f"]


# -- rows written by the acting user -------------------------------------------------------------------

def test_a_coordinators_decision_is_stored_and_logged_as_that_coordinator(pg_store):
    pg_store.write({"register": register()})
    who = Access(f"csw-{uuid.uuid4()}", Level.COORDINATOR, route="web:outreach_decide")
    row = pg_store.append_rows(Layer.DECISIONS, [decision("P5", "B")], access=who)[0]
    assert row["updated_by"] == who.user
    stored = pg_store.read_full(Layer.DECISIONS)
    assert stored["updated_by"].tolist() == [who.user]
    log = pg_store.audit_log()
    mine = log[log["actor"] == who.user]
    assert list(zip(mine["level"], mine["action"], mine["layer"], mine["district"], mine["rows"],
                    mine["route"], strict=True)) == [
        ("coordinator", "append", Layer.DECISIONS, "B", 1, "web:outreach_decide")]
    pg_store.delete_row(Layer.DECISIONS, row["decision_id"], version=row["version"], access=who)
    assert pg_store.read(Layer.DECISIONS).empty
    log = pg_store.audit_log()
    assert list(log.loc[log["actor"] == who.user, "action"]) == ["append", "delete"]


def test_appended_rows_come_back_as_stored_in_order(pg_store):
    pg_store.write({"register": register()})
    rows = pg_store.append_rows(Layer.DECISIONS, [decision("P5", "B"), decision("P1", decided_by="staff"),
                                                  decision("P3", distance_m=None)], access=CSW)
    assert [r["person_id"] for r in rows] == ["P5", "P1", "P3"]
    assert [r["decision_id"] for r in rows] == ["D000001", "D000002", "D000003"]
    assert rows[2]["distance_m"] is None and isinstance(rows[0]["distance_m"], float)
    assert all(type(r["version"]) is int for r in rows) and len({r["version"] for r in rows}) == 3


def test_unknown_columns_and_bad_values_are_reported_at_once_and_nothing_written(pg_store):
    pg_store.write({"register": register()})
    with pytest.raises(StoreError) as info:
        pg_store.append_rows(Layer.DECISIONS, [decision(note="x"), decision(distance_m="far", version=3)],
                             access=CSW)
    for problem in ("列 note はありません", "列 distance_m に数値でない値が 1 件あります（行 2）",
                    "列 version はデータベースが付けます"):
        assert problem in str(info.value)
    assert Layer.DECISIONS not in pg_store.layers()  # the layer was not even entered
    with pytest.raises(StoreError, match="person_id が空"):  # the register's ids are not the store's
        pg_store.append_rows("register", [{"name": "x", "district_code": "A"}], access=STAFF)


def test_a_duplicate_key_names_no_value(pg_store):
    pg_store.write({"register": register()})
    pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="SECRET-7")], access=CSW)
    with pytest.raises(StoreError, match="重複") as info:
        pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="SECRET-7")], access=CSW)
    assert "SECRET-7" not in str(info.value)


def test_an_explicit_id_with_the_prefix_moves_the_sequence_past_it(pg_store):
    pg_store.write({"register": register()})
    pg_store.append_rows(Layer.DECISIONS, [decision(decision_id="D000050"), decision(decision_id="D17x")],
                         access=CSW)
    assert pg_store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]["decision_id"] == "D000051"
    full = pg_store.read_full(Layer.DECISIONS)
    pg_store.write({Layer.DECISIONS: full.assign(decision_id=["D000001", "D000002", "D000120"])})
    assert pg_store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]["decision_id"] == "D000121"


def test_threads_of_one_server_appending_at_once_get_distinct_ids(pg_store, pg_app_url):
    pg_store.write({"register": register()})
    n = 8
    barrier = threading.Barrier(n)
    got: list[list[str]] = [[] for _ in range(n)]
    store = PostGISStore(pg_app_url, pool_size=n)

    def append(i):
        barrier.wait()
        who = Access(f"csw{i}", Level.COORDINATOR)
        for _ in range(3):
            got[i] += [r["decision_id"] for r in store.append_rows(
                Layer.DECISIONS, [decision(), decision("P5", "B")], access=who)]

    threads = [threading.Thread(target=append, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    ids = [d for part in got for d in part]
    assert len(ids) == n * 6 and len(set(ids)) == n * 6
    assert sorted(pg_store.read(Layer.DECISIONS)["decision_id"]) == sorted(ids)


def test_the_stamp_changes_in_the_writing_transaction_only(filled, pg_app_dsn):
    first = filled.stamp()
    assert first
    with psycopg.connect(pg_app_dsn) as conn:  # a write in another process, not yet committed
        as_level(conn, STAFF)
        conn.execute("UPDATE karte.meta SET value = '2026' WHERE key = 'fiscal_year'")
        assert filled.stamp() == first  # others do not see it before the commit
        conn.rollback()
    assert filled.stamp() == first  # nor after a rollback
    duplicated = register()
    duplicated.loc[1, "person_id"] = "P1"
    with pytest.raises(StoreError):
        filled.write({"meta": meta(), "register": duplicated})
    assert filled.stamp() == first  # a failed write changes nothing
    filled.audit(access=CSW, layer="register", district=None, rows=0)
    filled.read_row("register", "P1", access=CSW)
    assert filled.stamp() == first
    row = filled.read_row("register", "P3", access=STAFF)
    with pytest.raises(ConflictError):  # an edit that conflicts changes nothing either
        filled.update_row("register", "P3", {"plan_status": "x"}, version=row["version"] - 1, access=STAFF)
    assert filled.stamp() == first
    with psycopg.connect(pg_app_dsn) as conn:
        as_level(conn, CSW)
        conn.execute("UPDATE karte.cooperators SET capacity = 9 WHERE cooperator_id = 'C1'")
    assert filled.stamp() not in ("", first)


def test_the_stamp_is_read_on_its_own_connection_as_the_public_role(filled, pg_admin, pg_app_dsn):
    """One statement on a connection kept for it: as karte_public, outside any transaction; a
    commit elsewhere is seen by the next read; a dropped connection is replaced."""
    first = filled.stamp()
    rows = pg_admin.execute("SELECT pid, usename, current_setting('is_superuser'), state, query "
                            "FROM pg_stat_activity WHERE query LIKE 'SELECT stamp FROM karte.snapshot_stamp%'"
                            ).fetchall()
    assert len(rows) == 1 and rows[0][1] == "karte_app" and rows[0][3] == "idle"  # not "idle in transaction"
    with filled._shared._stamp_lock:
        role = filled._shared._stamp_con.execute("SELECT current_user").fetchone()[0]
    assert role == "karte_public"
    with psycopg.connect(pg_app_dsn) as conn:  # another process writes a snapshot layer
        as_level(conn, CSW)
        conn.execute("UPDATE karte.cooperators SET capacity = 8 WHERE cooperator_id = 'C1'")
    second = filled.stamp()
    assert second not in ("", first)
    pg_admin.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))  # e.g. a database restart
    assert filled.stamp() == second
    filled.close()
    assert filled.stamp() == second  # opened again after close, like the pool



# -- export and import -----------------------------------------------------------------------------

def _wkb(frame):
    if not isinstance(frame, gpd.GeoDataFrame):
        return None
    return [None if g is None else g.wkb for g in frame.geometry]


def test_postgis_export_import_round_trip_is_lossless(filled, tmp_path):
    version = filled.read_row("register", "P1", access=STAFF)["version"]
    filled.update_row("register", "P1", {"plan_status": "none"}, version=version, access=STAFF)
    before = {name: filled.read_full(name) for name in filled.layers()}
    GeoPackageStore(tmp_path / "export.gpkg").write({"stray": meta()})  # an old file is replaced whole
    out = export_store(filled, tmp_path / "export.gpkg")
    assert set(GeoPackageStore(out).layers()) == set(before)
    # clobber the database: other rows, other versions
    filled.write({"register": register().iloc[:1], "meta": meta().iloc[:1], "pts": meta()})
    import_store(out, filled)
    assert set(filled.layers()) == set(before)
    for name, frame in before.items():
        after = filled.read_full(name)
        assert_same(after, frame)
        assert _wkb(after) == _wkb(frame), name  # byte-identical geometries
    assert {"version", "updated_at", "updated_by"} <= set(before["register"].columns)
    # the version sequence moved past the imported versions: a fresh edit never reuses one
    top = int(before["register"]["version"].max())
    assert filled.update_row("register", "P3", {"plan_status": "none"},
                             version=int(before["register"]["version"].iloc[2]), access=STAFF) > top


def test_demo_geopackage_import_export_round_trip(demo, pg_store, tmp_path):
    _, folder = demo
    original = GeoPackageStore(folder / "karte.gpkg")
    import_store(original.path, pg_store)
    exported = GeoPackageStore(export_store(pg_store, tmp_path / "again.gpkg"))
    # sessions and login attempts (of tests that logged in on the shared demo) never travel
    layers = set(original.layers()) - NOT_EXPORTED
    assert set(exported.layers()) == layers
    for name in sorted(layers):
        a, b = original.read(name), exported.read(name)  # read leaves the system columns out
        assert_same(b, a)
        assert _wkb(a) == _wkb(b), name
        assert_same(pg_store.read(name), a)
        if name in PERSONAL_LAYERS:  # the file carries them, for a restore
            assert_same(exported.read_full(name), pg_store.read_full(name))


def _without_built_at(karte: dict) -> dict:
    karte = copy.deepcopy(karte)
    karte.pop("built_at", None)
    return karte


@pytest.mark.slow
def test_demo_builds_the_same_kartes_on_postgis(demo, pg_store, tmp_path):
    from karte.build import Inputs, build_demo, rebuild
    from karte.settings import REPO_DATA

    result, folder = demo
    inputs = Inputs.shipped(REPO_DATA)
    on_pg = build_demo(pg_store, inputs, seed=2026)
    assert {k: _without_built_at(v) for k, v in on_pg.kartes.items()} == \
           {k: _without_built_at(v) for k, v in result.kartes.items()}
    gpkg = GeoPackageStore(tmp_path / "copy.gpkg")
    built = GeoPackageStore(folder / "karte.gpkg")
    gpkg.write({n: built.read(n) for n in built.layers()})
    again_pg, again_gpkg = rebuild(pg_store, inputs, seed=2026), rebuild(gpkg, inputs, seed=2026)
    assert {k: _without_built_at(v) for k, v in again_pg.kartes.items()} == \
           {k: _without_built_at(v) for k, v in again_gpkg.kartes.items()}
    stored = {r.district_code: json.loads(r.karte_json) for r in pg_store.read("kartes").itertuples()}
    assert stored == again_pg.kartes


# -- karte import on PostGIS -------------------------------------------------------------------------

def test_importing_a_register_into_postgis_is_idempotent_and_its_reads_are_logged(pg_store, tmp_path):
    from test_import_support import GEOCODER, TODAY, districts_frame, register_rows, write_csv

    from karte.importing import import_file

    pg_store.write({"districts": districts_frame()})
    path = write_csv(tmp_path / "r.csv", register_rows(3), encoding="cp932")
    report = import_file(pg_store, "register", path, geocoder=GEOCODER, today=TODAY)
    assert report.written and report.changes[0].added == 3
    reg = pg_store.read_full("register")
    assert sorted(reg["person_id"]) == ["P001", "P002", "P003"]
    assert set(reg["district_code"]) == {"T01", "T02"}
    versions = list(reg["version"])
    again = import_file(pg_store, "register", path, geocoder=GEOCODER, today=TODAY)
    assert not again.changed and not again.written
    assert list(pg_store.read_full("register")["version"]) == versions   # nothing rewritten
    log = pg_store.audit_log()
    mine = log[(log["route"] == "import:register") & (log["actor"] == pg_store.access.user)]
    assert list(mine["rows"])[-1] == 3                   # the comparison read the 3 rows, logged


def test_import_store_through_the_command_restores_a_postgis_export(filled, pg_app_url, tmp_path):
    from karte.cli.data import EXIT_OK, import_command

    before = {name: filled.read_full(name) for name in filled.layers()}
    out = export_store(filled, tmp_path / "backup.gpkg")
    filled.write({"register": register().iloc[:1], "meta": meta().iloc[:1]})
    assert import_command("store", out, pg_app_url, yes=True) == EXIT_OK
    for name, frame in before.items():
        assert_same(filled.read_full(name), frame)
        assert _wkb(filled.read_full(name)) == _wkb(frame), name



def test_import_store_loads_the_append_only_ledgers_once_and_leaves_the_sessions_alone(filled, tmp_path):
    """A restore into PostGIS replaced every layer of the file, the append-only ledgers included,
    and failed (permission denied on their DELETE). Now a ledger is loaded into a store that has
    no entry of it yet (no DELETE needed), and kept as it is in one that has; the sessions are
    never written (issue 16)."""
    from karte.users import Sessions, UserFile

    source = GeoPackageStore(tmp_path / "backup.gpkg")
    source.write(all_layers())
    source.append_rows("copies", [{"district_code": "A", "kind": "csv", "made_by": "staff"}], access=STAFF)
    source.append_rows("copy_events", [{"copy_id": "K000001", "district_code": "A", "event": "made"}],
                       access=STAFF)
    source.append_rows("point_ledger", [{"supporter_id": "SP000001", "entry_kind": "earned", "points": 5}],
                       access=STAFF)
    users = UserFile(tmp_path / "users.json")
    users.add("st", "correct horse battery", level="city_staff")
    token = Sessions(filled, users).start(users.get("st"), kind="token", hours=1)
    import_store(source.path, filled)  # a first restore: the ledgers come in as they are
    for name in ("copies", "copy_events", "point_ledger", "register"):
        assert_same(filled.read(name), source.read(name))
    filled.append_rows("copies", [{"district_code": "B", "kind": "csv", "made_by": "staff"}], access=STAFF)
    filled.append_rows("point_ledger", [{"supporter_id": "SP000001", "entry_kind": "redeemed", "points": -2}],
                       access=STAFF)
    ledgers = {name: filled.read_full(name) for name in ("copies", "copy_events", "point_ledger")}
    filled.write({"register": register().iloc[:1]})
    import_store(source.path, filled)  # again: the register is restored, the ledgers are kept
    assert_same(filled.read("register"), source.read("register"))
    for name, frame in ledgers.items():
        assert_same(filled.read_full(name), frame)
    assert len(ledgers["copies"]) == 2 and len(ledgers["point_ledger"]) == 2
    assert Sessions(filled, users).resolve(token, kind="token").name == "st"  # still logged in


def test_a_database_marked_0010_by_the_empty_placeholder_gets_0010_from_0011(fresh_database, tmp_path):
    """0010 was released empty before it was written: a database upgraded then is marked 0010
    without the sessions, and a public account's login failed there (permission denied on
    web_sessions). 0011 runs 0010's idempotent upgrade again."""
    from alembic import command

    from karte.store.cli import alembic_config
    from karte.users import Sessions, UserFile

    admin, app = fresh_database
    command.upgrade(alembic_config(admin), "0009")
    command.stamp(alembic_config(admin), "0010")  # what the placeholder left
    users = UserFile(tmp_path / "users.json")
    users.add("pu", "correct horse battery", level="public")
    with PostGISStore(app) as store, pytest.raises(KarteError):
        Sessions(store, users).start(users.get("pu"), kind="cookie", hours=1)
    db_upgrade(admin)
    assert db_current(admin) == db_head()
    with PostGISStore(app) as store:
        sessions = Sessions(store, users)
        token = sessions.start(users.get("pu"), kind="cookie", hours=1)
        assert sessions.resolve(token, kind="cookie").name == "pu"
        assert sessions.end(token, kind="cookie")
