"""``karte sheets`` as its own process: it closes its store before it ends (the objects left are
frozen at exit instead of collected, :func:`karte.cli.sheets._skip_final_collection`, so nothing
would close the store's SQLite connections for it), leaving the GeoPackage without a ``-wal``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import copy_store

ROOT = Path(__file__).resolve().parents[1]


def test_a_cold_sheet_leaves_the_store_closed(demo, tmp_path):
    store = copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg")
    for edition in ("public", "drill"):  # the drill sheet writes its copy and access log rows
        done = subprocess.run([sys.executable, "-m", "karte.cli", "sheets", "S01", "--edition", edition,
                               "--store", str(store), "--out", str(tmp_path / "out"), "--user", "cold.test"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / f"S01-{edition}.pdf").stat().st_size > 10_000
        assert not Path(f"{store}-wal").exists(), edition
        assert not Path(f"{store}-shm").exists(), edition
