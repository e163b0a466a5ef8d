"""Reading an e-Stat small-area age table (CP932, two header rows, concealed cells)."""

from __future__ import annotations

import pytest

from karte.agebands import read_estat_age_table
from karte.domain.errors import ValidationError

AGES = [(0, 4), (5, 9), (10, 14)] + [(a, a + 4) for a in range(15, 100, 5)]


def write_table(path, rows, encoding="cp932"):
    codes = ["KEY_CODE", "HYOSYO", "CITYNAME", "NAME", "HTKSYORI", "HTKSAKI", "GASSAN",
             "T000849001"] + [f"T000849{i:03d}" for i in range(2, 2 + len(AGES) + 1)]
    labels = ["", "", "", "", "", "", "", "総数、年齢「不詳」含む"]
    labels += [f"総数{lo}～{hi}歳" for lo, hi in AGES] + ["総数１００歳以上"]
    lines = [",".join(codes), ",".join(labels)]
    for key, cells in rows:
        lines.append(",".join([key, "1", "青森市", "どこか", "", "", "", "0", *cells]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def test_reads_bands_and_concealed(tmp_path):
    n = len(AGES) + 1
    ones = ["1"] * n
    concealed = ["１"] * n  # full-width digits are normalised
    concealed[15] = "X"  # 75-79 concealed -> 75+ null
    write_table(tmp_path / "t.csv", [("02201001001", ones), ("02201001002", concealed)])
    table = read_estat_age_table(tmp_path / "t.csv")
    a = table.loc["02201001001"]
    assert (int(a["age_0_14"]), int(a["age_15_64"]), int(a["age_65_74"]), int(a["age_75_plus"])) \
        == (3, 10, 2, 6)
    b = table.loc["02201001002"]
    assert int(b["age_65_74"]) == 2 and b.isna()["age_75_plus"]


def test_bad_cell_reports_row_and_column(tmp_path):
    cells = ["1"] * (len(AGES) + 1)
    cells[4] = "abc"
    write_table(tmp_path / "t.csv", [("02201001001", ["1"] * len(cells)), ("02201001002", cells)],
                encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_estat_age_table(tmp_path / "t.csv")
    (p,) = info.value.problems
    assert (p.row, p.column) == (4, "T000849006")


def test_2020_layout_counts_each_person_once():
    """The 2020 table also carries 再掲 totals (総数６５歳以上 besides 総数７５歳以上): only the
    highest open-ended column is a band of its own, so 65-74 is 65～69 + 70～74."""
    import csv
    import unicodedata
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "estat2020" / "tblT001082C02.txt"
    table = read_estat_age_table(path)
    rows = list(csv.reader(path.read_bytes().decode("cp932").splitlines()))
    labels = [unicodedata.normalize("NFKC", c) for c in rows[1]]
    col = {lab: j for j, lab in enumerate(labels)}
    checked = 0
    for row in rows[2:]:
        key = row[0]
        cells = [row[col["総数65~69歳"]], row[col["総数70~74歳"]], row[col["総数75歳以上"]]]
        if key not in table.index or not all(c.isdigit() for c in cells):
            continue
        got = table.loc[key]
        assert int(got["age_65_74"]) == int(cells[0]) + int(cells[1])
        assert int(got["age_75_plus"]) == int(cells[2])
        checked += 1
    assert checked > 100


def test_dash_is_zero_and_merged_marks_are_concealed(tmp_path):
    n = len(AGES) + 1
    dashes = ["1"] * n
    dashes[0] = "-"           # 0-4: none
    merged = ["1"] * n
    merged[16] = "***"        # 80-84 merged into another area
    write_table(tmp_path / "t.csv", [("02201001001", dashes), ("02201001002", merged)])
    table = read_estat_age_table(tmp_path / "t.csv")
    assert int(table.loc["02201001001", "age_0_14"]) == 2
    assert table.isna().loc["02201001002", "age_75_plus"]
    assert int(table.loc["02201001002", "age_0_14"]) == 3
