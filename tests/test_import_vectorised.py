"""The register import reads cells column by column and parses each distinct value once: on a
generated file of a few thousand rows mixing good and bad values (the same texts repeating in
many rows), every planted bad cell is reported at its own row and column, in the order of the
file, and the good rows are read exactly as the parsers read each cell on its own."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from test_import_support import REGISTER_HEADER, register_row, run_register, tiny_store, write_csv

from karte.importing import ImportValidationError
from karte.importing.values import parse_care_level, parse_consent, parse_date, parse_yes_no

ROWS = 3_000
GOOD = {
    "birth": ["1940-03-02", "昭和15年3月2日", "S15.3.2", "１９４０/３/２", "1938/12/31", "平成元年1月8日"],
    "care": ["", "要支援1", "要介護２", "介護3", "なし"],
    "consent": ["同意", "不同意", "未回答", "条例", "同意済み", "ｕｎｋｎｏｗｎ"],
    "plan": ["作成済", "作成中", "未作成", ""],
    "alone": ["有", "無", "○", "×", "はい", ""],
    "address": ["青森市新町一丁目3-7", "青森市本町１丁目２－３", "青森市浜田1-2-3", "青森市古川1丁目5"],
}
#: field -> (column header, bad texts, the message every one of them gives)
BAD = {
    "birth": ("生年月日", ["昭和15年2月30日", "1940/13/1"], "存在しない日付です"),
    "consent": ("同意", ["たぶん", "同意？"], "同意の値が読めません (同意・不同意・未回答・条例 のいずれか)"),
    "care": ("要介護度", ["要介護9", "要支援3"], "要介護度が読めません (要支援1〜2、要介護1〜5)"),
    "alone": ("高齢者のみ世帯", ["たぶん"], "「有」か「無」で入力してください (○/×、はい/いいえ も可)"),
    "plan": ("個別避難計画", ["そのうち"], "個別避難計画の値が読めません (作成済・作成中・未作成)"),
    "address": ("住所", ["青森市存在しない町1-2", "弘前市本町1"], None),
}
#: the order in which one row's problems are found (its checks, then the duplicate id)
ORDER = ["birth", "consent", "care", "alone", "plan", "address"]


def _generate(seed: int, share_bad: float) -> tuple[list[list[str]], list[tuple[int, str, str | None]],
                                                    list[int]]:
    """Rows (header first), the planted problems as (row, column, message) in file order, and the
    rows whose name looks like a formula (a warning each)."""
    rng = random.Random(seed)
    rows = [REGISTER_HEADER]
    planted: list[tuple[int, str, str | None]] = []
    formulas: list[int] = []
    own: set[int] = set()                                   # rows that kept their own id
    for i in range(1, ROWS + 1):
        number = i + 1                                      # the header is row 1
        cells = {field: rng.choice(values) for field, values in GOOD.items()}
        bad_here = []
        for field in ORDER:
            if rng.random() < share_bad:
                column, texts, message = BAD[field]
                cells[field] = rng.choice(texts)
                bad_here.append((number, column, message))
        pid = f"P{i:05d}"
        duplicate = bool(share_bad) and (i - 7) in own and rng.random() < share_bad
        if duplicate:
            pid = f"P{i - 7:05d}"                           # the id of the row 7 rows up
        else:
            own.add(i)
        name = "青森 花子"
        if rng.random() < 0.01:
            name = "=1+2"
            formulas.append(number)
        rows.append(register_row(pid, name=name, address=cells["address"], birth=cells["birth"],
                                 care=cells["care"], consent=cells["consent"], plan=cells["plan"],
                                 alone=cells["alone"]))
        planted += bad_here
        if duplicate:
            planted.append((number, "番号", f"番号が {number - 7} 行目と重複しています"))
    return rows, planted, formulas


def test_every_planted_bad_cell_is_reported_at_its_row_and_column(tmp_path):
    rows, planted, formulas = _generate(seed=17, share_bad=0.04)
    assert 300 < len(planted) < 1_000                        # all listed (under the cap)
    with pytest.raises(ImportValidationError) as info:
        run_register(tiny_store(tmp_path), write_csv(tmp_path / "r.csv", rows, encoding="cp932"))
    problems = info.value.report.problems
    assert [(p.row, p.column) for p in problems] == [(row, column) for row, column, _ in planted]
    for problem, (_row, _column, message) in zip(problems, planted, strict=True):
        if message is not None:
            assert problem.message_ja == message
    warnings = info.value.report.warnings
    assert [(w.row, w.column) for w in warnings] == [(row, "氏名") for row in formulas]


def test_good_rows_read_as_each_cell_alone(tmp_path):
    rows, planted, _formulas = _generate(seed=5, share_bad=0.0)
    assert not planted
    store = tiny_store(tmp_path)
    report = run_register(store, write_csv(tmp_path / "r.csv", rows))
    assert report.written and report.rows == ROWS
    got = store.read("register").sort_values("person_id").reset_index(drop=True)
    header = rows[0]
    cells = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert list(got["person_id"]) == [c["番号"] for c in cells]
    assert list(got["birth_date"]) == [parse_date(c["生年月日"]).isoformat() for c in cells]
    assert list(got["consent"]) == [str(parse_consent(c["同意"])) for c in cells]
    care = [None if pd.isna(v) else v for v in got["care_level"]]
    assert care == [parse_care_level(c["要介護度"]) for c in cells]
    assert list(got["elderly_only_household"]) == [bool(parse_yes_no(c["高齢者のみ世帯"])) for c in cells]
    assert list(got["name"]) == [c["氏名"] for c in cells]
    assert set(got["location_precision"]) == {"town"}


# --- the parts engine records what a row-by-row reader records --------------------------------

def _parts():
    from karte.importing.rows import Part
    from karte.importing.values import ValueProblem, parse_int

    def where(row, ctx):
        address, lat = row.text("address"), ""
        if not address:
            lat = row.text("latitude")
            if not lat:
                row.error("address", "住所が空です", "address missing")
        if address == "爆発":
            raise ValueProblem("読めません", "reader gave up")
        if address.startswith("旧"):
            row.warn("address", "旧住所です", "old address")
        return {"address": address or None, "lat": lat or None}

    return [Part(("person_id",), lambda row, ctx: {"id": row.parse("person_id", parse_int, required=True)}),
            Part(("address", "latitude"), where),
            Part(("name",), lambda row, ctx: {"name": row.text("name") or None})]


def test_parts_record_exactly_what_a_row_by_row_reader_records(tmp_path):
    from karte.importing.rows import Findings, iter_rows, read_columns, read_parts
    from karte.importing.tables import read_table
    from karte.importing.values import ValueProblem

    rng = random.Random(3)
    rows = [[*REGISTER_HEADER, "緯度"]]
    for i in range(600):
        row = register_row(str(i))
        row[0] = rng.choice([str(i), "", "x", "=1+2"])
        row[1] = rng.choice(["青森 花子", "", "@SUM(1)", " -a"])
        row[3] = rng.choice(["青森市新町1", "", "爆発", "旧町1", "\t=cmd"])
        rows.append([*row, rng.choice(["", "40.8"])])
        if i % 97 == 0:
            rows.append([" "] * 5 + [""] * 5 + ["\u3000"])               # a blank row
        if i % 89 == 0:
            rows.append([*register_row(str(i)), "", "はみ出し"])         # beyond the header
    table = read_table(write_csv(tmp_path / "p.csv", rows))
    parts = _parts()

    expected = Findings("p.csv")
    _match, by_row = iter_rows(table, "register", expected)
    want = []
    for row in by_row:
        try:
            want.append([part.read(row, None) for part in parts])
        except ValueProblem as exc:
            row.error(None, exc.ja, exc.en)

    got = Findings("p.csv")
    _match, columns = read_columns(table, "register", got)
    read = read_parts(columns, parts, None)
    assert len(got.problems) > 100 and len(got.warnings) > 100
    assert list(got.problems) == list(expected.problems)
    assert list(got.warnings) == list(expected.warnings)
    assert [list(values) for values in zip(*read.values, strict=True)] == want


# --- the outside-the-city check ---------------------------------------------------------------

def test_city_area_agrees_with_the_union_of_the_grown_polygons():
    import numpy as np
    import shapely

    from karte.importing.points import CityArea

    polygons = np.array([shapely.box(0, 0, 1000, 1000), shapely.box(1500, 0, 2500, 800),
                         shapely.Polygon([(3000, 0), (4000, 1000), (4000, 0), (3000, 1000)])])  # a bow tie
    assert not shapely.is_valid(polygons[2])
    rng = np.random.default_rng(5)
    xs, ys = rng.uniform(-500, 4500, 20_000), rng.uniform(-500, 1500, 20_000)
    area = shapely.union_all(shapely.make_valid(polygons)).buffer(300)
    got = CityArea(polygons, 300).contains_xy(xs, ys)
    assert got.any() and not got.all()
    assert (got == shapely.contains_xy(area, xs, ys)).all()


# --- a dry run leaves the kartes alone --------------------------------------------------------

def test_a_dry_run_does_not_reassemble_the_kartes_an_import_does(demo, tmp_path, monkeypatch):
    import json

    from conftest import copy_store
    from test_import_support import register_rows

    import karte.importing.api as api
    from karte.store import GeoPackageStore

    copy_store(demo[1] / "karte.gpkg", tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    path = write_csv(tmp_path / "r.csv", register_rows(3))
    real = api.reassemble
    monkeypatch.setattr(api, "reassemble", lambda *a, **k: pytest.fail("a dry run reassembled the kartes"))
    dry = run_register(store, path, dry_run=True, allow_mass_delete=True)
    assert dry.changed and not dry.written
    monkeypatch.setattr(api, "reassemble", real)
    report = run_register(store, path, allow_mass_delete=True)
    assert report.written
    kartes = [json.loads(k) for k in store.read("kartes")["karte_json"]]
    assert sum(k["register"]["total"] for k in kartes) == 3


def test_overlapping_imports_leave_garbage_collection_as_it_was():
    """Two imports in two threads of a server: collection stays off until the last one ends,
    then is on again (not left off by the one that started while the other had turned it off)."""
    import gc
    import threading

    from karte.importing import api

    assert gc.isenabled()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with api._gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with api._gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first ended: still off for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False] and gc.isenabled()
