"""On the real Aomori demo store: an import reassembles the kartes in the same atomic write, and a
crash between layers leaves every layer as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import copy_store
from test_import_support import register_rows, run_import, write_csv

import karte.store.gpkg as gpkg
from karte.store import GeoPackageStore


@pytest.fixture
def demo_store(demo, tmp_path):
    _result, folder = demo
    copy_store(folder / "karte.gpkg", tmp_path / "k.gpkg")
    return GeoPackageStore(tmp_path / "k.gpkg")


def test_import_updates_register_kartes_and_meta_together(demo_store, tmp_path):
    path = write_csv(tmp_path / "r.csv", register_rows(3), encoding="cp932")
    # a whole-layer replacement deleting the synthetic rows: allowed explicitly (the guard)
    report = run_import(demo_store, "register", path, allow_mass_delete=True)
    assert report.written
    assert report.changes[0].added == 3 and report.changes[0].removed > 1000   # synthetic rows go
    reg = demo_store.read("register")
    assert len(reg) == 3 and reg["key_code"].notna().all()
    kartes = {r.district_code: json.loads(r.karte_json) for r in demo_store.read("kartes").itertuples()}
    counts = reg["district_code"].value_counts()
    for code, karte in kartes.items():
        assert karte["register"]["total"] == int(counts.get(code, 0))
        assert "register" not in karte["synthetic"]
    meta = demo_store.meta()
    assert "register" not in json.loads(meta["synthetic_layers"])
    assert json.loads(meta["import_register"])["rows"] == 3
    # the same file again: nothing changes, nothing is written
    before = (tmp_path / "k.gpkg").read_bytes()
    assert not run_import(demo_store, "register", path).written
    assert (tmp_path / "k.gpkg").read_bytes() == before


def test_crash_between_layers_leaves_the_store_byte_identical(demo_store, tmp_path, monkeypatch):
    before = (tmp_path / "k.gpkg").read_bytes()
    real = gpkg._write_layer
    written = []

    def crash_on_second(path, name, frame):
        if written:
            raise KeyboardInterrupt          # Ctrl-C after the register, before the kartes
        real(path, name, frame)
        written.append(name)

    monkeypatch.setattr(gpkg, "_write_layer", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_import(demo_store, "register", write_csv(tmp_path / "r.csv", register_rows(3)),
                   allow_mass_delete=True)
    assert written == ["register"]
    assert (tmp_path / "k.gpkg").read_bytes() == before


@pytest.mark.parametrize("kind", ["cooperators", "services", "shelters", "stats"])
def test_each_sample_loads_into_the_built_demo_and_its_kartes(demo_store, kind):
    """The samples of docs/import/ leave most districts without rows of their kind: every karte
    must still be reassembled (and counts must match what was loaded)."""
    path = Path(__file__).resolve().parent.parent / "docs" / "import" / f"{kind}.cp932.csv"
    report = run_import(demo_store, kind, path, allow_mass_delete=True)  # replaces the synthetic rows
    assert report.written
    kartes = {r.district_code: json.loads(r.karte_json) for r in demo_store.read("kartes").itertuples()}
    assert len(kartes) == 42
    if kind in ("cooperators", "services"):
        layer = demo_store.read(kind)
        counts = layer["district_code"].value_counts()
        for code, karte in kartes.items():
            got = karte["cooperators"]["total"] if kind == "cooperators" else len(karte["services"])
            assert got == int(counts.get(code, 0)), code
