"""The annual plan table, indicator and evaluation files (issue 12): the shipped Oshu table
imports, exports (xlsx and CSV) and imports again without a change; bad files are refused whole
with file, row and column in Japanese; the command line does the same."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from karte.cli import app
from karte.domain.access import Access, Level
from karte.domain.history import HistoryLayer
from karte.history_plan import write_table
from karte.importing import import_file
from karte.importing.api import ImportValidationError, apply_import, prepare_import
from karte.services import history as years
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

OSHU = REPO_DATA / "plans" / "oshu_annual_plan.csv"
OSHU_INDICATORS = REPO_DATA / "plans" / "oshu_indicators.csv"
ICHINOSEKI = REPO_DATA / "plans" / "ichinoseki_evaluations.csv"
OSHU_CITY = "03215"
TODAY = dt.date(2026, 12, 1)
COORDINATOR = Access("csw", Level.COORDINATOR, municipality=OSHU_CITY, route="test:plan")


@pytest.fixture
def store(tmp_path) -> GeoPackageStore:
    store = GeoPackageStore(tmp_path / "karte.gpkg")
    store.write({"meta": pd.DataFrame({"key": ["fiscal_year"], "value": ["2026"]})})
    return store


def load_plan(store, path: Path, access: Access = COORDINATOR, **options):
    from karte.importing.history import prepare_plan, write_layers

    prepared = prepare_plan(store, path, access, {"today": TODAY, **options})
    if prepared.report.problems:
        raise ImportValidationError(prepared.report)
    if prepared.report.changed:
        write_layers(store, prepared)
    return prepared.report


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def write_rows(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_the_oshu_table_imports_exports_and_imports_again_unchanged(store, tmp_path):
    report = load_plan(store, OSHU)
    assert report.changed and report.rows == 60
    _, table, items, marks = years.plan_table(store, OSHU_CITY)
    assert table.name == "第2次奥州市地域福祉活動計画" and table.years == [2016, 2017, 2018, 2019, 2020]
    assert table.periods == [("第1期", 3), ("第2期", 2)]
    merged = [i for i in table.items if i.merged_into]
    assert [(i.ref, i.merged_into) for i in merged] == [("2(1)④", "2(1)③"), ("3(1)④", "5(2)②")]
    assert merged[0].cells[2019].not_applicable and merged[0].section == "-"
    first = table.items[0]
    assert (first.goal_no, first.promotion_no, first.item_no, first.section) == ("1", "1", "①", "総務企画課")
    assert [first.cells[y].marks for y in table.years] == ["○◆", "○◆", "○★", "○■", "○◎"]
    assert len(items) == 60 and len(marks) == 60 * 5  # every cell holds marks or "-"
    for suffix in ("xlsx", "csv"):
        out = write_table(table, tmp_path / f"export.{suffix}")
        again = load_plan(store, out)
        assert not again.changed, (suffix, [(c.layer, c.added, c.removed, c.updated) for c in again.changes])
    exported = [_trim(r) for r in rows_of(tmp_path / "export.csv") if any(r)]
    original = [_trim(r) for r in rows_of(OSHU) if any(r)]
    assert exported[0] == ["第2次奥州市地域福祉活動計画の年次計画"]
    assert exported[7] == ["項目", "第1期", "", "", "第2期", "", "担当"]
    assert exported[8] == ["", "H28", "H29", "H30", "H31", "H32"]
    # the same table as shipped, less the heading rows the printed original repeats mid-table
    assert [r for r in original[9:] if r[0] != "項目" and r[1:2] != ["H28"]] == exported[9:]


def _trim(row: list[str]) -> list[str]:
    while row and row[-1] == "":
        row = row[:-1]
    return row


def test_a_cp932_file_reads_the_same_and_a_reimport_changes_nothing(store, tmp_path):
    load_plan(store, OSHU)
    cp932 = write_rows(tmp_path / "plan_cp932.csv", rows_of(OSHU), encoding="cp932")
    report = load_plan(store, cp932)
    assert report.encoding == "cp932" and not report.changed


def test_an_edited_cell_shows_as_one_updated_mark_and_ids_are_kept(store, tmp_path):
    load_plan(store, OSHU)
    _, _, items, marks = years.plan_table(store, OSHU_CITY)
    rows = rows_of(OSHU)
    row = next(i for i, r in enumerate(rows) if r and r[0].startswith("②SNSの積極的な活用"))
    rows[row][3] = "○★"
    report = load_plan(store, write_rows(tmp_path / "edited.csv", rows))
    changes = {c.layer: (c.added, c.removed, c.updated) for c in report.changes}
    assert changes == {"welfare_plans": (0, 0, 0), "plan_items": (0, 0, 0), "plan_marks": (0, 0, 1)}
    _, _, items_after, marks_after = years.plan_table(store, OSHU_CITY)
    assert sorted(i["item_id"] for i in items_after) == sorted(i["item_id"] for i in items)
    assert sorted(m["mark_id"] for m in marks_after) == sorted(m["mark_id"] for m in marks)


@pytest.mark.parametrize(
    ("change", "row", "column", "message"),
    [
        ("unknown_mark", 15, "H30", "記号「x」は凡例にありません"),
        ("year_out_of_range", 11, "R30", "年度 2048（R30）は範囲外です"),
        ("duplicated_item", 16, "項目", "項目「1(1)②」が重複しています（15行目と同じ番号）"),
        ("missing_target", 29, "項目", "包括先の項目「9(9)①」が表にありません"),
    ],
)
def test_a_bad_table_is_refused_whole_with_file_row_and_column(store, tmp_path, change, row, column, message):
    rows = rows_of(OSHU)
    if change == "unknown_mark":
        rows[14][3] = "○x"
    elif change == "year_out_of_range":
        rows[10][5] = "R30"
    elif change == "duplicated_item":
        rows[15][0] = rows[14][0]
    elif change == "missing_target":
        rows[28][0] = "④気軽に福祉を意識できる取組みの実施⇒9(9)①に包括"
    path = write_rows(tmp_path / f"{change}.csv", rows)
    with pytest.raises(ImportValidationError) as caught:
        load_plan(store, path)
    problems = caught.value.report.problems
    found = [p for p in problems if p.row == row and p.column == column]
    assert found and message in found[0].message_ja, [p.format() for p in problems]
    assert found[0].file == path.name
    text = caught.value.report.format()
    assert f"{path.name} {row}行目 列「{column}」" in text and "何も読み込んでいません" in text
    assert HistoryLayer.PLAN_ITEMS not in store.layers()  # nothing loaded


def test_the_import_command_lists_problems_and_loads_nothing_then_imports_and_exports(store, tmp_path):
    runner = CliRunner()
    rows = rows_of(OSHU)
    rows[14][3] = "○x"
    bad = write_rows(tmp_path / "bad.csv", rows)
    result = runner.invoke(
        app, ["plan", "import", str(bad), "--store", str(store.path), "--municipality", OSHU_CITY, "--yes"]
    )
    assert result.exit_code == 1 and "bad.csv 15行目 列「H30」" in result.output
    assert HistoryLayer.PLAN_ITEMS not in store.layers()
    dry = runner.invoke(
        app,
        ["plan", "import", str(OSHU), "--store", str(store.path), "--municipality", OSHU_CITY, "--dry-run"],
    )
    assert dry.exit_code == 0 and "--dry-run のため書き込んでいません" in dry.output
    assert HistoryLayer.PLAN_ITEMS not in store.layers()
    done = runner.invoke(
        app, ["plan", "import", str(OSHU), "--store", str(store.path), "--municipality", OSHU_CITY, "--yes"]
    )
    assert done.exit_code == 0 and "ストアに書き込みました" in done.output, done.output
    log = store.audit_log()
    assert set(log.loc[log["route"] == "cli:plan", "layer"]) == {"welfare_plans", "plan_items", "plan_marks"}
    out = tmp_path / "out.xlsx"
    exported = runner.invoke(
        app, ["plan", "export", str(out), "--store", str(store.path), "--municipality", OSHU_CITY]
    )
    assert exported.exit_code == 0 and out.exists()
    again = runner.invoke(
        app, ["plan", "import", str(out), "--store", str(store.path), "--municipality", OSHU_CITY, "--yes"]
    )
    assert again.exit_code == 0 and "変更はありません" in again.output


def test_oshu_indicators_and_ichinoseki_evaluations_load_through_karte_import(store, tmp_path):
    from karte.importing.history import prepare_indicators, write_layers

    access = Access("csw", Level.COORDINATOR, municipality=OSHU_CITY)
    prepared = prepare_indicators(store, OSHU_INDICATORS, access, {"today": TODAY})
    assert not prepared.report.problems and prepared.report.changed
    write_layers(store, prepared)
    definitions = store.read("indicators")
    assert sorted(definitions["key"]) == ["life_support", "net_meetings", "net_participants", "net_places"]
    context = years.indicators.Context(store, OSHU_CITY)
    meetings = next(d for d in definitions.to_dict("records") if d["key"] == "net_meetings")
    values = store.read("indicator_values").to_dict("records")
    result = years.indicators.evaluate(
        meetings, years.indicators.values_of(meetings, values), context, years=[]
    )
    assert (
        result.baseline == 750 and result.targets == {2026: 760, 2030: 800} and result.baseline_year == 2024
    )
    assert not prepare_indicators(store, OSHU_INDICATORS, access, {"today": TODAY}).report.changed
    bad = tmp_path / "bad_indicators.csv"
    text = OSHU_INDICATORS.read_text(encoding="utf-8").replace(",R12,目標,270,", ",R12,目標,二百七十,")
    bad.write_text(text, encoding="utf-8")
    refused = prepare_indicators(store, bad, access, {"today": TODAY})
    assert [p.format() for p in refused.report.problems] == [
        "bad_indicators.csv 4行目 列「値」: 「二百七十」は数値として読めません"
    ]
    # the same kinds through karte import (the store's user: the deployment's municipality)
    with pytest.raises(ImportValidationError):
        prepare_import(store, "indicators", bad, today=TODAY)
    report = import_file(store, "evaluations", ICHINOSEKI, today=TODAY)
    assert report.written and len(store.read("plan_evaluations")) == 3
    assert "計画の評価" in report.format()
    assert not apply_import(store, prepare_import(store, "evaluations", ICHINOSEKI, today=TODAY)).written
