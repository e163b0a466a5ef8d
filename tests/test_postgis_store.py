"""The PostGIS store beyond the shared contract: migrations, atomic and validated writes, optimistic
locking under concurrent edits, the lossless GeoPackage export/import, and a full demo build."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import geopandas as gpd
import psycopg
import pytest
from pg_fixtures import libpq
from shapely.geometry import Point
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from test_store import all_layers, assert_same, cooperators, decisions, meta, register

from karte.domain.access import Access, Level
from karte.domain.errors import ConflictError, NotFoundError, StoreError
from karte.domain.layers import PERSONAL_LAYERS, Layer
from karte.store import GeoPackageStore, open_store
from karte.store.cli import db_current, db_upgrade, export_store, import_store
from karte.store.postgis import PostGISStore

#: PostGIS fixtures and the CI guard (fails the session if a PostGIS test skipped with CI=true).
pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis
CSW = Access("csw", Level.COORDINATOR)


@pytest.fixture
def filled(pg_store):
    pg_store.write(all_layers())
    return pg_store


# -- migrations ------------------------------------------------------------------------------------

@pytest.fixture
def fresh_database(pg_admin, pg_admin_url, pg_app_url):
    """An empty database on the same server (dropped afterwards): (owner URL, app URL)."""
    name = f"karte_migr_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE DATABASE {name}")
    admin, app = (make_url(u).set(database=name).render_as_string(hide_password=False)
                  for u in (pg_admin_url, pg_app_url))
    yield admin, app
    pg_admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_upgrade_creates_then_is_idempotent_and_matches_the_models(fresh_database):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from karte.store.postgis_models import SCHEMA, Base

    admin, app = fresh_database
    before = PostGISStore(app)
    assert before.layers() == [] and not before.exists()
    with pytest.raises(StoreError, match="karte db upgrade"):
        before.write({"meta": meta()})
    before.close()
    assert db_current(admin) is None
    db_upgrade(admin)
    db_upgrade(admin)  # again: nothing to do, no error
    assert db_current(admin) == "0002"
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
        store.write({"meta": meta()})
        assert store.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}


def test_downgrade_and_upgrade_again(fresh_database):
    admin, _ = fresh_database
    from alembic import command

    from karte.store.cli import alembic_config

    db_upgrade(admin)
    command.downgrade(alembic_config(admin), "base")
    assert db_current(admin) is None
    db_upgrade(admin)
    assert db_current(admin) == "0002"


def test_0002_moves_the_decisions_out_of_the_unprotected_table_and_back(fresh_database, monkeypatch):
    """Decisions written at 0001 (an unmodelled layer in ``extra_layers``, readable by every role)
    move to their own table under row-level security, in order, extra columns and all; the
    downgrade puts them back."""
    from alembic import command

    from karte.store import postgis_models
    from karte.store.cli import alembic_config

    admin, app = fresh_database
    frame = decisions().assign(note=["電話済み", None, "再訪"])
    member_b = Access("m", Level.DISTRICT_MEMBER, "B")

    def as_at_0001(write: bool):
        """The store as the 0001 code had it: no model for the decisions."""
        with monkeypatch.context() as m:
            for models in (postgis_models.LAYER_MODELS, postgis_models.PERSONAL_MODELS):
                m.delitem(models, Layer.DECISIONS)
            with PostGISStore(app) as old:
                if write:
                    old.write({"meta": meta(), Layer.DECISIONS: frame})
                assert_same(old.read(Layer.DECISIONS), frame)
                return len(old.read(Layer.DECISIONS, access=member_b))

    def in_extra_layers() -> int:
        with psycopg.connect(libpq(admin)) as conn:
            return conn.execute("SELECT count(*) FROM karte.extra_layers WHERE layer = %s",
                                (Layer.DECISIONS,)).fetchone()[0]

    db_upgrade(admin, revision="0001")
    assert as_at_0001(write=True) == 3  # the leak: every row to a member of district B
    db_upgrade(admin)
    db_upgrade(admin)  # idempotent
    assert db_current(admin) == "0002" and in_extra_layers() == 0
    with PostGISStore(app) as store:
        assert_same(store.read(Layer.DECISIONS), frame)
        assert list(store.read(Layer.DECISIONS, access=member_b)["decision_id"]) == ["D000002"]
        assert store.read(Layer.DECISIONS, access=Access("p", Level.PUBLIC)).empty
        assert store.read_row(Layer.DECISIONS, "D000003")["note"] == "再訪"
        assert store.meta() == {"data_date": "2026-03-31", "fiscal_year": "2025"}
    command.downgrade(alembic_config(admin), "0001")
    assert in_extra_layers() == 3
    assert as_at_0001(write=False) == 3
    db_upgrade(admin)
    with PostGISStore(app) as store:
        assert_same(store.read(Layer.DECISIONS), frame)


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
        with pytest.raises(StoreError, match="権限"):
            filled.as_user(access).write({"meta": meta()})


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
    assert filled.read_row("register", "P1")["plan_status"] == "in_progress"  # nothing overwritten


def test_two_coordinators_editing_at_once_exactly_one_wins(filled, pg_app_url):
    start = filled.read_row("register", "P3")["version"]
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
    final = filled.read_row("register", "P3")
    assert final["shelter_id"] == f"S-{winners[0]}" and final["version"] == results[winners[0]]


def test_an_edit_blocked_behind_an_open_transaction_conflicts_when_it_commits(filled, pg_app_dsn):
    start = filled.read_row("register", "P5")["version"]
    outcome = {}
    with psycopg.connect(pg_app_dsn) as first:
        first.execute("SET LOCAL ROLE karte_coordinator")
        first.execute("SELECT set_config('karte.user', 'first', true)")
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
    row = filled.read_row("register", "P5")
    assert (row["plan_status"], row["updated_by"]) == ("none", "first")
    assert row["version"] > start  # raw SQL updates bump the version too (trigger)


def test_row_edit_rules(filled):
    v = filled.read_row("register", "P1")["version"]
    with pytest.raises(StoreError, match=r"version は変更できません.*nickname はありません"):
        filled.update_row("register", "P1", {"version": 1, "nickname": "x"}, version=v)
    with pytest.raises(NotFoundError):
        filled.update_row("register", "nobody", {"plan_status": "none"}, version=v)
    with pytest.raises(NotFoundError):  # refused consent: invisible, so not editable, for a coordinator
        filled.update_row("register", "P2", {"plan_status": "none"}, version=v, access=CSW)
    with pytest.raises(StoreError, match="権限"):
        filled.update_row("register", "P1", {"plan_status": "none"}, version=v,
                          access=Access("m", Level.DISTRICT_MEMBER, "A"))
    with pytest.raises(NotFoundError):
        filled.read_row("register", "P1", access=Access("p", Level.PUBLIC))
    v2 = filled.update_row("register", "P1", {"geometry": Point(11, 12)}, version=v)
    assert filled.read_row("register", "P1")["geometry"].equals(Point(11, 12))
    with pytest.raises(StoreError, match="行単位"):
        filled.update_row("services", "x", {"name": "y"}, version=v2)


def test_unmodelled_columns_are_editable(pg_store):
    reg = register().assign(note=["a", None, "c", "d", "e", "f"])
    pg_store.write({"register": reg})
    v = pg_store.read_row("register", "P2")["version"]
    pg_store.update_row("register", "P2", {"note": "b"}, version=v)
    assert list(pg_store.read("register")["note"]) == ["a", "b", "c", "d", "e", "f"]


# -- export and import -----------------------------------------------------------------------------

def _wkb(frame):
    if not isinstance(frame, gpd.GeoDataFrame):
        return None
    return [None if g is None else g.wkb for g in frame.geometry]


def test_postgis_export_import_round_trip_is_lossless(filled, tmp_path):
    version = filled.read_row("register", "P1")["version"]
    filled.update_row("register", "P1", {"plan_status": "none"}, version=version)
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
                             version=int(before["register"]["version"].iloc[2])) > top


def test_demo_geopackage_import_export_round_trip(demo, pg_store, tmp_path):
    _, folder = demo
    original = GeoPackageStore(folder / "karte.gpkg")
    import_store(original.path, pg_store)
    exported = GeoPackageStore(export_store(pg_store, tmp_path / "again.gpkg"))
    assert set(exported.layers()) == set(original.layers())
    for name in original.layers():
        a, b = original.read(name), exported.read(name)
        if name in PERSONAL_LAYERS:
            b = b.drop(columns=["version", "updated_at", "updated_by"])
        assert_same(b, a)
        assert _wkb(a) == _wkb(b), name
        assert_same(pg_store.read(name), a)


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
    from karte.importing.cli import EXIT_OK, import_command

    before = {name: filled.read_full(name) for name in filled.layers()}
    out = export_store(filled, tmp_path / "backup.gpkg")
    filled.write({"register": register().iloc[:1], "meta": meta().iloc[:1]})
    assert import_command("store", out, pg_app_url, yes=True) == EXIT_OK
    for name, frame in before.items():
        assert_same(filled.read_full(name), frame)
        assert _wkb(filled.read_full(name)) == _wkb(frame), name
