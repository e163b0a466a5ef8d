"""The commands wired onto the CLI from the import, store and sheet modules, run as a user runs
them: export and re-import of a whole store, import errors, sheets, the PostGIS schema command."""

from __future__ import annotations

import pyogrio
from conftest import copy_store
from typer.testing import CliRunner

from karte.cli import app
from karte.domain.security import NOT_EXPORTED
from karte.store import GeoPackageStore

runner = CliRunner()


def test_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("demo", "build", "show", "import", "export", "sheets", "serve", "db", "districts", "users"):
        assert cmd in res.output


def test_export_then_import_store_round_trips_every_layer(demo, tmp_path):
    _, folder = demo
    source = tmp_path / "source.gpkg"
    copy_store(folder / "karte.gpkg", source)
    exported = tmp_path / "export.gpkg"
    res = runner.invoke(app, ["export", str(exported), "--store", str(source)])
    assert res.exit_code == 0, res.output
    copy = tmp_path / "copy.gpkg"
    res = runner.invoke(app, ["import", "store", str(exported), "--store", str(copy), "--yes"])
    assert res.exit_code == 0, res.output
    src, dst = GeoPackageStore(source), GeoPackageStore(copy)
    assert set(src.layers()) - NOT_EXPORTED <= set(dst.layers())  # sessions never leave the store
    for layer in ("small_areas", "districts", "register", "cooperators", "services", "kartes"):
        a, b = src.read(layer), dst.read(layer)
        assert len(a) == len(b), layer
        assert list(a.columns) == list(b.columns), layer
    # the whole register went out (unconsented rows too: an export is city staff's), and the store
    # logged that read with the real user at city-staff level
    assert len(b := dst.read("register")) == len(src.read("register")) and len(b) > 0
    log = src.audit_log()
    exported_layers = log[(log["route"] == "cli:export") & (log["level"] == "city_staff")]
    assert {"register", "cooperators"} <= set(exported_layers["layer"])
    assert {name for name, _ in pyogrio.list_layers(exported)} >= {"register", "small_areas"}


def test_import_unknown_kind_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["import", "people", str(tmp_path / "x.csv"), "--store",
                              str(tmp_path / "k.gpkg")])
    assert res.exit_code == 1
    assert "people" in res.output


def test_import_broken_register_loads_nothing(demo, tmp_path):
    _, folder = demo
    store = tmp_path / "karte.gpkg"
    copy_store(folder / "karte.gpkg", store)
    before = store.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("名簿番号,氏名,住所,生年月日,同意\n"
                   "R1,青森 花子,青森市長島1丁目1-1,1940-01-01,同意\n"
                   "R2,青森 太郎,青森市長島1丁目1-2,2199-01-01,同意\n", encoding="utf-8")
    res = runner.invoke(app, ["import", "register", str(bad), "--store", str(store), "--yes"])
    assert res.exit_code == 1
    assert "bad.csv 3行目 列「生年月日」" in res.output
    assert store.read_bytes() == before


def test_sheets_command_writes_a_pdf(demo, tmp_path):
    _, folder = demo
    res = runner.invoke(app, ["sheets", "S01", "--store", str(folder / "karte.gpkg"), "--out",
                              str(tmp_path), "--workers", "1"])
    assert res.exit_code == 0, res.output
    pdf = tmp_path / "S01-public.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_sheets_needs_districts_or_all(demo, tmp_path):
    _, folder = demo
    res = runner.invoke(app, ["sheets", "--store", str(folder / "karte.gpkg"), "--out", str(tmp_path)])
    assert res.exit_code == 1
    assert "--all" in res.output


def test_db_upgrade_without_a_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("KARTE_DATABASE_URL", raising=False)
    res = runner.invoke(app, ["db", "upgrade"])
    assert res.exit_code == 1
    assert "KARTE_DATABASE_URL" in res.output
