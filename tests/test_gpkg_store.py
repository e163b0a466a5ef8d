"""The GeoPackage store as a row store: writes in place and atomic, one SQLite library on the file,
reads equal to pyogrio's, a file GDAL still opens, and several processes at once.

The shared contract (both stores) is in ``test_store`` and ``test_store_rows``; this module tests
what only the GeoPackage has: the scratch file and its sweep, crashes midway, WAL and ``seal``,
file modes, the migration of an older file, and the demo store read against pyogrio.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point
from test_store import all_layers, assert_same, decisions, districts, meta, register

from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied, StoreError
from karte.domain.layers import PERSONAL_LAYERS, RECORD_LAYERS, Layer, join_list, split_list
from karte.store import GeoPackageStore, open_store
from karte.store.base import AUDIT_COLUMNS, SYSTEM_COLUMNS

CRS = "EPSG:6678"
STAFF = Access("staff", Level.CITY_STAFF, route="test")
CSW = Access("csw", Level.COORDINATOR, route="test")
OGRINFO = shutil.which("ogrinfo")
needs_ogrinfo = pytest.mark.skipif(OGRINFO is None and os.environ.get("CI") != "true",
                                   reason="gdal-bin (ogrinfo) is not installed")


def layer(n=3, district="A"):
    return gpd.GeoDataFrame({"district_code": [district] * n, "v": range(n)},
                            geometry=[Point(i, i) for i in range(n)], crs=CRS)


def decision(person: str = "P1", district: str = "A", **extra) -> dict:
    return {"person_id": person, "cooperator_id": "C1", "district_code": district, "decision": "confirmed",
            "distance_m": 120.5, "decided_by": "csw", "decided_at": "2026-11-30T09:00:00+00:00", **extra}


def contents(store: GeoPackageStore) -> dict:
    """Every layer (with system columns) and the access log: what a failed write must not change."""
    return {"layers": store.layers(), "log": store.audit_log(),
            **{name: store.read_full(name) for name in store.layers()}}


def assert_unchanged(before: dict, after: dict) -> None:
    assert after["layers"] == before["layers"]
    for key, frame in before.items():
        if key != "layers":
            pd.testing.assert_frame_equal(after[key], frame, check_exact=True)


def scratch_folders(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.scratch"))


def ogrinfo(*args: str) -> str:
    done = subprocess.run([OGRINFO or "ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_write_read_and_filter(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    assert not store.exists() and store.layers() == [] and store.stamp() == ""
    store.write({"pts": pd.concat([layer(2, "A"), layer(3, "B'x")], ignore_index=True),
                 "meta": pd.DataFrame({"key": ["k"], "value": ["v"]})})
    assert store.layers() == ["pts", "meta"]  # the order they were written
    assert len(store.read("pts")) == 5
    assert len(store.read("pts", district="B'x")) == 3
    assert store.read("pts", district="A' OR '1'='1").empty  # a parameter, never SQL text
    assert store.meta() == {"k": "v"}
    with pytest.raises(StoreError, match="missing"):
        store.read("missing")


def test_a_replaced_layer_keeps_its_place(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"a": layer(), "b": meta(), "c": layer()})
    store.write({"b": meta().iloc[:1], "d": meta()})
    assert store.layers() == ["a", "b", "c", "d"]


def test_a_failed_gdal_write_leaves_the_file_byte_identical(tmp_path, monkeypatch):
    import karte.store.gpkg as gpkg

    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write({"pts": layer(), "register": register()})
    store.audit(access=STAFF, layer="register", district="A", rows=3)
    store.close()
    before, raw = contents(store), path.read_bytes()
    real, calls = gpkg._write_layer, []

    def crash_on_second(target, name, frame):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C midway through a write
        real(target, name, frame)

    monkeypatch.setattr(gpkg, "_write_layer", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        store.write({"pts": layer(10), "more": layer(2)})
    assert calls == ["pts", "more"]
    store.close()
    assert path.read_bytes() == raw
    assert_unchanged(before, contents(store))
    assert not scratch_folders(path)


def test_an_interrupted_transaction_leaves_every_layer_and_the_log_as_before(tmp_path, monkeypatch):
    from karte.store import gpkg_install

    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write(all_layers())
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    store.close()
    before, raw, stamp = contents(store), path.read_bytes(), store.stamp()
    store.close()
    real, calls = gpkg_install.install_triggers, []

    def crash_on_second(con, name):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # inside the transaction, two layers already swapped
        real(con, name)

    monkeypatch.setattr(gpkg_install, "install_triggers", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        store.write({"register": register().iloc[:1], "meta": meta().iloc[:1], "new": layer()}, access=STAFF)
    assert path.read_bytes() == raw  # uncommitted pages never reach the database file
    assert_unchanged(before, contents(store))
    assert store.stamp() == stamp
    assert not scratch_folders(path)


def test_the_access_log_survives_writes_and_is_never_a_layer(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"pts": layer()})
    store.audit(access=Access("alice", Level.COORDINATOR, route="cli:show"), layer="register",
                district="A", rows=3)
    store.write({"pts": layer(4)})
    store.audit(access=Access("bob", Level.CITY_STAFF, route="cli:export"), layer="register",
                district=None, rows=0, action="export")
    log = store.audit_log()
    assert list(log.columns) == list(AUDIT_COLUMNS)
    assert list(zip(log["actor"], log["level"], log["action"], log["rows"], strict=True)) == [
        ("alice", "coordinator", "read", 3), ("bob", "city_staff", "export", 0)]
    for name in ("karte_audit", "karte_state", "KARTE_AUDIT", "gpkg_contents", "rtree_pts_geom"):
        with pytest.raises(StoreError, match=name):
            store.write({name: meta()})
    assert store.layers() == ["pts"]


def test_a_layer_name_in_another_case_is_the_same_layer_under_the_same_rules(tmp_path):
    """SQLite and GDAL match table names whatever their case: so must the access rules."""
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write(all_layers())
    member = Access("member-a", Level.DISTRICT_MEMBER, "A", route="test")
    assert set(store.read("REGISTER", access=member)["person_id"]) == {"P1", "P3"}
    assert list(store.audit_log()["layer"]) == ["register"]
    with pytest.raises(AccessDenied):
        store.write({"Register": register().iloc[:1]}, access=CSW)
    store.write({"Register": register().iloc[:2]})
    assert store.layers()[:2] == ["districts", "register"] and len(store.read("register")) == 2


def test_an_older_store_is_upgraded_in_place(tmp_path):
    """A file the copy-and-replace store wrote: layers without system columns, an access log
    without ``level`` and ``action``, no counters."""
    path = tmp_path / "old.gpkg"
    pyogrio.write_dataframe(register(), path, layer="register", driver="GPKG")
    pyogrio.write_dataframe(decisions(), path, layer=str(Layer.DECISIONS), driver="GPKG")
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("CREATE TABLE karte_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
                    " actor TEXT NOT NULL, route TEXT NOT NULL, layer TEXT NOT NULL, district TEXT,"
                    " rows INTEGER)")
        con.executemany("INSERT INTO karte_audit (at, actor, route, layer, district, rows)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [("2025-01-01T00:00:00+00:00", "alice", "cli:show", "register", "A", 3),
                         ("2025-01-02T00:00:00+00:00", "bob", "export", "register", None, 6)])
    store = GeoPackageStore(path)
    log = store.audit_log()
    assert list(log.columns) == list(AUDIT_COLUMNS)
    assert list(log["action"]) == ["read", "export"] and log["level"].isna().all()
    assert store.stamp()  # it has snapshot layers: not an empty store
    row = store.read_row("register", "P1", access=STAFF)
    assert isinstance(row["version"], int)
    store.update_row("register", "P1", {"plan_status": "none"}, version=row["version"], access=STAFF)
    appended = store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]
    assert appended["decision_id"] == "D000004"  # past the ids the old store wrote
    assert list(store.audit_log()["actor"][:2]) == ["alice", "bob"]
    assert list(store.read("register").columns) == list(register().columns)


def test_a_new_store_is_private_and_an_existing_one_keeps_its_mode(tmp_path):
    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write({"meta": meta()})
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    store.write({"register": register()})
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    assert path.stat().st_mode & 0o777 == 0o640


def test_bad_values_name_the_column_never_the_value_and_write_nothing(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"register": register()})
    with pytest.raises(StoreError) as caught:
        store.append_rows(Layer.DECISIONS, [decision(), decision(distance_m="far-secret", colour="blue")],
                          access=CSW)
    message = str(caught.value)
    assert "distance_m" in message and "colour" in message and "2 行目" in message
    assert "far-secret" not in message and "blue" not in message
    assert Layer.DECISIONS not in store.layers()  # not even the layer its first append creates
    with pytest.raises(StoreError, match="plan_status"):
        store.update_row("register", "P1", {"plan_status": 7}, version=1, access=STAFF)


def test_gdal_never_opens_the_store_file(tmp_path, monkeypatch):
    """One SQLite library on the file: pyogrio (GDAL's own SQLite) only writes scratch files."""
    path = tmp_path / "k.gpkg"
    targets: list[Path] = []
    write = pyogrio.write_dataframe

    def recording(frame, target, **kwargs):
        targets.append(Path(target))
        return write(frame, target, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("GDAL opened a file for reading")

    monkeypatch.setattr(pyogrio, "write_dataframe", recording)
    for name in ("read_dataframe", "read_arrow", "open_arrow", "read_info", "list_layers"):
        monkeypatch.setattr(pyogrio, name, forbidden)
    store = GeoPackageStore(path)
    store.write(all_layers())
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)  # creates the layer: GDAL again
    assert store.read("register", access=CSW).shape[0] == 4
    row = store.read_row("register", "P1", access=STAFF)
    store.update_row("register", "P1", {"geometry": Point(7, 7)}, version=row["version"], access=STAFF)
    store.locate("register", access=STAFF)
    store.seal()
    assert targets and all(t != path and t.parent.name.endswith(".scratch") for t in targets)


def test_scratch_folders_of_dead_writers_are_swept_live_ones_kept(tmp_path):
    path = tmp_path / "k.gpkg"
    dead = tmp_path / ".k.gpkg.dead.scratch"
    live = tmp_path / ".k.gpkg.live.scratch"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "layers.gpkg").write_bytes(b"half written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a writing process holds its own
    try:
        GeoPackageStore(path).write({"meta": meta()})
        assert not dead.exists() and live.exists()
    finally:
        os.close(fd)
    GeoPackageStore(path).layers()  # opening sweeps too
    assert not live.exists()


@needs_ogrinfo
def test_gdal_opens_the_store_after_writes_and_row_edits(tmp_path):
    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write(all_layers())
    row = {**{c: None for c in register().columns}, "person_id": "P9", "district_code": "A",
           "consent": "consented", "geometry": Point(500, 700)}
    appended = store.append_rows("register", [row], access=STAFF)[0]
    store.update_row("register", "P9", {"geometry": Point(600, 800)}, version=appended["version"],
                     access=STAFF)
    store.delete_row("register", "P2", version=store.read_row("register", "P2", access=STAFF)["version"],
                     access=STAFF)
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    summary = ogrinfo("-so", str(path))
    for name in ("districts", "register", "cooperators", "services", "meta", "pts", Layer.DECISIONS):
        assert f": {name} (" in summary
    assert "karte_" not in summary  # the file has attribute layers: GDAL lists only layers
    assert "POINT (600 800)" in ogrinfo(str(path), "register", "-where", "person_id = 'P9'")
    assert "Feature Count: 6" in ogrinfo("-so", str(path), "register")
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT rtreecheck('rtree_register_geom')").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM rtree_register_geom").fetchone() == (5,)  # P6 has none
        assert con.execute("SELECT max_x, max_y FROM gpkg_contents WHERE table_name = 'register'"
                           ).fetchone() == (600.0, 800.0)


def test_seal_leaves_one_self_contained_file(tmp_path):
    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write(all_layers())
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    assert Path(f"{path}-wal").exists()  # the pooled connection keeps the WAL open
    store.seal()
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    assert path.read_bytes()[18:20] == b"\x01\x01"  # rollback journal: one file, read-only media too
    moved = tmp_path / "handed-over.gpkg"
    shutil.copy(path, moved)
    assert len(GeoPackageStore(moved).read(Layer.DECISIONS)) == 1
    store.write({"meta": meta()})  # still a store: back to WAL
    assert path.read_bytes()[18:20] == b"\x02\x02"


# -- crashes and other processes ---------------------------------------------------------------------

def _big_write(path: str, rows: int) -> None:
    grid = np.arange(rows)
    big = gpd.GeoDataFrame({"district_code": np.where(grid % 2, "A", "B"), "v": grid,
                            "note": ["x" * 40] * rows},
                           geometry=gpd.points_from_xy(grid % 1000, grid // 1000), crs=CRS)
    GeoPackageStore(path).write({"big": big, "register": register().iloc[:1], "meta": meta().iloc[:1]})


def _wait_for(check, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert process.is_alive(), "the write ended before it could be killed: make it bigger"
        assert time.monotonic() < deadline
        time.sleep(0.002)


@pytest.mark.parametrize("phase", ["gdal", "transaction"])
def test_kill_9_midway_leaves_the_store_unchanged_and_the_scratch_is_swept(tmp_path, phase):
    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write(all_layers())
    store.audit(access=STAFF, layer="register", district="A", rows=6)
    store.close()
    before = contents(store)
    store.close()
    writer = mp.get_context("spawn").Process(target=_big_write, args=(str(path), 400_000))
    writer.start()
    wal = Path(f"{path}-wal")
    if phase == "gdal":  # GDAL is writing the scratch file
        _wait_for(lambda: any(f.stat().st_size > 2**20 for d in scratch_folders(path) for f in d.iterdir()),
                  writer)
    else:  # the store's transaction is copying rows: its pages spill into the WAL, uncommitted
        _wait_for(lambda: wal.exists() and wal.stat().st_size > 2**20, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(30)
    assert writer.exitcode == -signal.SIGKILL
    assert scratch_folders(path)  # left behind by the dead writer
    again = GeoPackageStore(path)
    assert_unchanged(before, contents(again))
    assert not scratch_folders(path)  # swept when the store was opened
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    if OGRINFO:
        assert "big" not in ogrinfo("-so", str(path))


def _writer(path: str, rounds: int, start, results) -> None:
    store = GeoPackageStore(path)
    start.wait(60)
    for i in range(rounds):
        store.write({"register": register().iloc[:3] if i % 2 else register(), "meta": meta(),
                     "districts": districts()})
        store.append_rows(Layer.DECISIONS, [decision(f"P{i}")], access=CSW)
    results.put("done")


def _reader(path: str, start, stop, results) -> None:
    """Read everything a server reads until told to stop; the number of reads, or the error."""
    store = GeoPackageStore(path)
    start.wait(60)
    reads = 0
    try:
        while not stop.is_set():
            assert len(store.read("register")) in (3, 6)
            assert len(store.read("register", district="A", access=CSW)) in (1, 2)
            assert list(store.read("districts")["district_code"]) == ["A", "B"]
            assert store.layers()[:3] == ["register", "meta", "districts"]
            assert store.stamp()
            store.read(Layer.DECISIONS, access=CSW)
            store.audit_log()
            reads += 1
        results.put(reads)
    except Exception as exc:  # reported to the test, which fails with it
        results.put(f"{type(exc).__name__}: {exc}")


def test_readers_in_other_processes_never_fail_while_a_process_writes(tmp_path):
    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write({"register": register(), "meta": meta(), "districts": districts()})
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    ctx = mp.get_context("spawn")
    start, stop, results, written = ctx.Barrier(3), ctx.Event(), ctx.Queue(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(path), start, stop, results)) for _ in range(2)]
    writer = ctx.Process(target=_writer, args=(str(path), 12, start, written))
    for process in (*readers, writer):
        process.start()
    assert written.get(timeout=240) == "done"
    stop.set()
    outcomes = [results.get(timeout=60) for _ in readers]
    for process in (*readers, writer):
        process.join(60)
    assert all(isinstance(n, int) and n > 0 for n in outcomes), outcomes
    assert len(store.read(Layer.DECISIONS)) == 13


# -- the demo store --------------------------------------------------------------------------------

def _read_with_pyogrio(path: str) -> dict[str, pd.DataFrame]:
    return {str(name): pyogrio.read_dataframe(path, layer=str(name)) for name, _ in pyogrio.list_layers(path)}


@pytest.mark.slow
def test_reads_equal_pyogrio_on_the_demo_store(demo):
    """Every layer of the demo store, read with sqlite3 + shapely, equals pyogrio's reading of the
    file (read in another process: GDAL never opens a file this process holds)."""
    path = demo[1] / "karte.gpkg"
    store = GeoPackageStore(path)
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        expected = pool.submit(_read_with_pyogrio, str(path)).result(timeout=300)
    assert sorted(store.layers()) == sorted(expected)
    for name in store.layers():
        full = expected[name]
        tracked = name in PERSONAL_LAYERS or name in RECORD_LAYERS  # read() leaves their system columns out
        plain = full.drop(columns=[c for c in SYSTEM_COLUMNS if c in full and tracked])
        for got, want in ((store.read(name), plain), (store.read_full(name), full)):
            assert type(got) is type(want), name
            pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
            if isinstance(want, gpd.GeoDataFrame):
                assert got.crs == want.crs == CRS and got.geometry.name == "geometry"


def _median_ms(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@pytest.mark.slow
def test_timings_on_the_demo_store(demo, tmp_path, capsys):
    """Printed, not asserted: a district's register read with its log row, the stamp, a
    whole-city write (every demo layer, replacing the previous ones)."""
    source = GeoPackageStore(demo[1] / "karte.gpkg")
    frames = {name: source.read_full(name) for name in source.layers()}
    store = GeoPackageStore(tmp_path / "karte.gpkg")
    write_ms = _median_ms(lambda: store.write(frames), 3)
    code = frames["register"]["district_code"].value_counts().index[0]
    member = Access("member", Level.DISTRICT_MEMBER, code, route="bench")
    read_ms = _median_ms(lambda: store.read("register", district=code, access=member), 50)
    stamp_ms = _median_ms(store.stamp, 2000)
    rows = len(store.read("register", district=code, access=member))
    with capsys.disabled():
        print(f"\n[gpkg store] district {code} register read as a district member, with its log row "
              f"({rows} rows): median {read_ms:.2f} ms; stamp(): median {stamp_ms * 1000:.1f} µs; "
              f"whole-city write ({len(frames)} layers, {sum(map(len, frames.values()))} rows): "
              f"median {write_ms:.0f} ms")
    assert (store.audit_log()["actor"] == "member").sum() == 51


def test_list_fields_round_trip(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"lists": pd.DataFrame({"ids": [join_list(["C1", "C2"]), join_list([])]})})
    assert [split_list(v) for v in store.read("lists")["ids"]] == [["C1", "C2"], []]
    assert split_list("") == [] and split_list(None) == [] and split_list(float("nan")) == []


def test_open_store_picks_geopackage_for_paths(tmp_path):
    assert isinstance(open_store(tmp_path / "x.gpkg"), GeoPackageStore)


def test_a_district_members_rows_are_numbered_by_the_store(tmp_path):
    """A key a district member chooses could meet a row of another district they cannot see, and
    a refusal would tell them it exists: the store numbers their rows instead (as PostGIS does)."""
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"meta": pd.DataFrame({"key": ["a"], "value": ["b"]})})
    other = Access("mb", Level.DISTRICT_MEMBER, "B", route="t")
    mine = Access("ma", Level.DISTRICT_MEMBER, "A", route="t")
    taken = store.append_rows("web_sessions", [{"user_name": "mb", "district_code": "B"}], access=other)
    key = taken[0]["session_id"]
    again = store.append_rows("web_sessions", [{"session_id": key, "user_name": "ma", "district_code": "A"}],
                              access=mine)
    assert again[0]["session_id"] != key and again[0]["session_id"].startswith("WS")
    staff = Access("st", Level.CITY_STAFF, route="t")  # who sees every row still chooses keys
    assert store.append_rows("web_sessions", [{"session_id": "WS900000", "user_name": "st"}],
                             access=staff)[0]["session_id"] == "WS900000"



def test_import_store_loads_the_append_only_ledgers_once_and_leaves_the_sessions_alone(tmp_path):
    """As on PostGIS (test_postgis_store): a ledger is loaded into a store without entries of it
    and kept as it is in one that has some; sessions are never exported nor restored."""
    from karte.store.cli import export_store, import_store
    from karte.users import Sessions, UserFile

    staff = Access("staff", Level.CITY_STAFF)
    store = GeoPackageStore(tmp_path / "karte.gpkg")
    store.write(all_layers())
    users = UserFile(tmp_path / "users.json")
    users.add("st", "correct horse battery", level="city_staff")
    token = Sessions(store, users).start(users.get("st"), kind="token", hours=1)
    store.append_rows("copies", [{"district_code": "A", "kind": "csv", "made_by": "staff"}], access=staff)
    store.append_rows("point_ledger", [{"supporter_id": "SP000001", "entry_kind": "earned", "points": 5}],
                      access=staff)
    before = {name: store.read_full(name) for name in store.layers()}
    out = export_store(store, tmp_path / "backup.gpkg")
    assert {"copies", "point_ledger"} <= set(GeoPackageStore(out).layers())
    assert "web_sessions" not in GeoPackageStore(out).layers()
    fresh = import_store(out, tmp_path / "new.gpkg")  # a first restore: everything but the sessions
    assert set(fresh.layers()) == set(before) - {"web_sessions"}
    for name in ("copies", "point_ledger", "register"):
        assert_same(fresh.read_full(name), before[name])
    store.write({"register": register().iloc[:1]})
    store.append_rows("copies", [{"district_code": "B", "kind": "csv", "made_by": "staff"}], access=staff)
    ledgers = {name: store.read_full(name) for name in ("copies", "point_ledger")}
    import_store(out, store)
    for name, frame in before.items():
        if name not in ledgers and name != "web_sessions":
            assert_same(store.read_full(name), frame)
    for name, frame in ledgers.items():  # not replaced by the file's (one copy): two copies
        assert_same(store.read_full(name), frame)
    assert len(ledgers["copies"]) == 2
    assert Sessions(store, users).resolve(token, kind="token").name == "st"


def test_writers_of_two_processes_queue_on_the_file(tmp_path):
    """A writer in another process holds the file's writer lock (``flock``) for half a second:
    this process's write waits for it, instead of sleeping in SQLite's busy handler's steps."""
    import subprocess
    import sys
    import time

    from karte.store import gpkg

    path = tmp_path / "s.gpkg"
    store = GeoPackageStore(path)
    store.write({"demo_layer": pd.DataFrame({"a": [1]})})
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(0.5)", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with store._connection() as con, gpkg._writers(con):
        waited = time.perf_counter() - start
    holder.wait(10)
    assert waited >= 0.3, waited
