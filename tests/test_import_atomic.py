"""A bad file or a crash never leaves the store half-updated; re-imports are idempotent and the
next month's file reports its changes per district."""

from __future__ import annotations

import pytest
from test_import_support import (
    GEOCODER,
    REGISTER_HEADER,
    TODAY,
    register_row,
    register_rows,
    run_register,
    tiny_store,
    write_csv,
    write_xlsx,
)

import karte.store.gpkg as gpkg
from karte.domain.errors import ValidationError
from karte.importing import prepare_import


def test_a_file_with_one_bad_row_loads_nothing(tmp_path):
    store = tiny_store(tmp_path)
    run_register(store, write_csv(tmp_path / "m1.csv", register_rows(3)))
    before = (tmp_path / "k.gpkg").read_bytes()
    rows = register_rows(50)
    rows[40][4] = "2099-01-01"
    with pytest.raises(ValidationError):
        run_register(store, write_csv(tmp_path / "m2.csv", rows))
    assert (tmp_path / "k.gpkg").read_bytes() == before


@pytest.mark.parametrize("crash", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_crash_midway_leaves_the_store_byte_identical(tmp_path, monkeypatch, crash):
    store = tiny_store(tmp_path)
    run_register(store, write_csv(tmp_path / "m1.csv", register_rows(3)))
    before = (tmp_path / "k.gpkg").read_bytes()
    real = gpkg._write_layer
    calls = []

    def write_then_crash(path, name, frame):
        real(path, name, frame)      # the layer is half-way into the temporary copy …
        calls.append(name)
        raise crash                  # … and then the process dies

    monkeypatch.setattr(gpkg, "_write_layer", write_then_crash)
    with pytest.raises(type(crash)):
        run_register(store, write_csv(tmp_path / "m2.csv", register_rows(5)))
    assert calls == ["register"]
    assert (tmp_path / "k.gpkg").read_bytes() == before
    assert not list(tmp_path.glob(".k.gpkg.*"))        # no temporary file left behind
    monkeypatch.undo()
    assert len(store.read("register")) == 3


def test_same_file_twice_changes_nothing(tmp_path):
    store = tiny_store(tmp_path)
    path = write_csv(tmp_path / "m1.csv", register_rows(3), encoding="cp932")
    first = run_register(store, path)
    assert first.written and first.changes[0].added == 3
    before = (tmp_path / "k.gpkg").read_bytes()
    second = run_register(store, path)
    assert not second.changed and not second.written
    assert second.changes[0].unchanged == 3
    assert (tmp_path / "k.gpkg").read_bytes() == before
    # the same content in another encoding, or as a workbook, is the same data
    utf8_bom = write_csv(tmp_path / "u.csv", register_rows(3), encoding="utf-8-sig")
    assert not run_register(store, utf8_bom).changed
    assert not run_register(store, write_xlsx(tmp_path / "m1.xlsx", register_rows(3))).changed
    assert (tmp_path / "k.gpkg").read_bytes() == before


def test_next_month_reports_added_removed_updated_per_district(tmp_path):
    store = tiny_store(tmp_path)
    # P001 本町 (T02), P002 浜田 (T02), P003 新町 (T01)
    run_register(store, write_csv(tmp_path / "m1.csv", register_rows(3)))
    month2 = [REGISTER_HEADER,
              register_row("P002", address="青森市浜田1-2-3", care="要介護3"),        # updated, T02
              register_row("P003", address="青森市新町一丁目3-7"),                    # unchanged, T01
              register_row("P004", address="青森市古川1丁目5"),                      # added, T01
              register_row("P005", address="青森市新町二丁目1")]                     # added, T01
    prepared = prepare_import(store, "register", write_csv(tmp_path / "m2.csv", month2),
                              geocoder=GEOCODER, today=TODAY, allow_mass_delete=True)  # 1 of 3 goes
    change = prepared.report.changes[0]
    assert change.table() == [("T01", 2, 0, 0), ("T02", 0, 1, 1)]
    assert (change.added, change.removed, change.updated, change.unchanged) == (2, 1, 1, 1)
    text = prepared.report.format()
    assert "追加 2、削除 1、更新 1、変更なし 1" in text
    # the report alone wrote nothing
    assert sorted(store.read("register")["person_id"]) == ["P001", "P002", "P003"]
    report = run_register(store, tmp_path / "m2.csv", allow_mass_delete=True)
    assert report.written
    reg = store.read("register").set_index("person_id")
    assert sorted(reg.index) == ["P002", "P003", "P004", "P005"]
    assert reg.loc["P002", "care_level"] == "要介護3"
