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
