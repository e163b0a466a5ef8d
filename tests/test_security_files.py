"""Files karte writes: one creation mode (0600, or 0640 with a group for a server user), kept
across atomic replacements; what a killed writer leaves is removed when the store is next opened."""

from __future__ import annotations

import grp
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from karte.store import GeoPackageStore, gpkg_files
from karte.store.cli import export_store
from karte.users import UserFile

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _other_group() -> grp.struct_group:
    """A group other than ours that exists on every Debian machine."""
    for name in ("daemon", "nogroup", "users", "adm"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid != os.getgid():
            return g
    pytest.fail("no second group on this machine")


@pytest.fixture()
def small_store(demo, tmp_path) -> GeoPackageStore:
    """A small store: a few layers of the demo, written by karte into a new file."""
    built = GeoPackageStore(demo[1] / "karte.gpkg")
    store = GeoPackageStore(tmp_path / "store" / "karte.gpkg")
    store.write({name: built.read(name) for name in ("meta", "districts", "kartes")})
    return store


def test_the_store_the_demo_and_an_export_are_created_private(demo, small_store, tmp_path):
    assert _mode(demo[1] / "karte.gpkg") == 0o600
    assert _mode(small_store.path) == 0o600
    out = export_store(small_store, tmp_path / "out" / "export.gpkg")
    assert _mode(out) == 0o600 and _mode(out.parent) == 0o700


def test_with_a_file_group_files_are_0640_and_of_that_group(demo, tmp_path, monkeypatch):
    group = _other_group()
    monkeypatch.setenv("KARTE_FILE_GROUP", group.gr_name)
    built = GeoPackageStore(demo[1] / "karte.gpkg")
    store = GeoPackageStore(tmp_path / "shared" / "karte.gpkg")
    store.write({"meta": built.read("meta")})
    for path in (store.path, export_store(store, tmp_path / "shared" / "export.gpkg")):
        assert _mode(path) == 0o640 and path.stat().st_gid == group.gr_gid, path
    assert _mode(store.path.parent) == 0o750 and store.path.parent.stat().st_gid == group.gr_gid
    users = UserFile(tmp_path / "shared" / "users.json")
    users.add("sato", PASSWORD, level="coordinator")
    assert _mode(users.path) == 0o640 and users.path.stat().st_gid == group.gr_gid
    monkeypatch.setenv("KARTE_FILE_GROUP", "no-such-group-karte")
    with pytest.raises(ValueError, match="no-such-group-karte"):
        gpkg_files.creation_mode()


def test_an_atomic_replacement_keeps_the_files_mode_and_group(small_store, tmp_path):
    """Issue 16: after an atomic write the file became 0600, shutting out a server running as
    another user of the file's group."""
    group = _other_group()
    out = export_store(small_store, tmp_path / "export.gpkg")
    os.chmod(out, 0o640)
    os.chown(out, -1, group.gr_gid)
    again = export_store(small_store, tmp_path / "export.gpkg")
    assert again == out and _mode(out) == 0o640 and out.stat().st_gid == group.gr_gid
    users = UserFile(tmp_path / "users.json")
    users.add("sato", PASSWORD, level="coordinator")
    os.chmod(users.path, 0o640)
    users.add("suzuki", PASSWORD, level="coordinator")
    users.set_password("sato", "another-password-1")
    assert _mode(users.path) == 0o640


_KILLED_EXPORT = """
import sys, time
from karte.store import gpkg
from karte.store.cli import export_store
def stuck(self):
    print("sealing", flush=True)
    time.sleep(120)
gpkg.GeoPackageStore.seal = stuck
export_store(sys.argv[1], sys.argv[2])
"""


def _killed_midway(script: str, *args: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    line = proc.stdout.readline().decode()
    assert "sealing" in line, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_export_killed_midway_leaves_nothing_after_the_next_open(small_store, tmp_path):
    """Issue 16: a kill -9 during a write left a full copy of the store and a journal that
    nothing removed."""
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "export.gpkg"
    _killed_midway(_KILLED_EXPORT, str(small_store.path), str(target))
    left = _hidden(folder)
    assert left and not target.exists(), left  # the staged copy (and its journal) stayed behind
    staged = [p for p in folder.rglob("*.gpkg*") if p.is_file()]
    assert staged and sum(p.stat().st_size for p in staged) > 10_000
    assert GeoPackageStore(target).layers() == []  # the next open of the target removes it
    assert _hidden(folder) == []
    out = export_store(small_store, target)  # and the next export works
    assert GeoPackageStore(out).layers() == small_store.layers() and _hidden(folder) == []


def test_copies_left_by_older_exports_and_atomic_writes_are_removed(small_store, tmp_path):
    folder = small_store.path.parent
    dead = _dead_pid()
    leftovers = [folder / f".karte.gpkg.{dead}.{rest}"
                 for rest in ("export.gpkg", "export.gpkg-journal", "0a1b2c3d.tmp")]
    alive = folder / f".karte.gpkg.{os.getpid()}.0a1b2c3d.tmp"  # a write in progress: kept
    for path in (*leftovers, alive):
        path.write_bytes(b"x" * 100)
    GeoPackageStore(small_store.path).layers()
    assert not any(p.exists() for p in leftovers) and alive.exists()


def test_a_store_write_killed_midway_keeps_the_old_layers_and_is_cleaned(demo, small_store):
    script = """
import sys
from karte.store import GeoPackageStore, gpkg_install
import time
real = gpkg_install.install_table
def stuck(con, name):
    real(con, name)
    print("sealing", flush=True)
    time.sleep(120)
gpkg_install.install_table = stuck
src = GeoPackageStore(sys.argv[2])
GeoPackageStore(sys.argv[1]).write({"districts": src.read("districts").iloc[:3], "meta": src.read("meta")})
"""
    before = small_store.read("districts")
    small_store.close()
    _killed_midway(script, str(small_store.path), str(demo[1] / "karte.gpkg"))
    assert any(p.name.endswith(".scratch") for p in small_store.path.parent.iterdir())
    fresh = GeoPackageStore(small_store.path)
    assert len(fresh.read("districts")) == len(before)  # nothing half-written
    assert not any(p.name.endswith(".scratch") for p in small_store.path.parent.iterdir())


def test_write_atomic(tmp_path):
    path = tmp_path / "a.txt"
    gpkg_files.write_atomic(path, "one")
    assert path.read_text() == "one" and _mode(path) == 0o600
    os.chmod(path, 0o640)
    gpkg_files.write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and _mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    time.sleep(0.05)
    return proc.pid


def test_the_files_module_has_no_project_imports():
    """Any layer may use it: it imports nothing of karte."""
    source = Path(gpkg_files.__file__).read_text()
    assert "from karte" not in source and "import karte" not in source
