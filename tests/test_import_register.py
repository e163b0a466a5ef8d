"""Importing a support-need register (要支援者名簿): formats, headers, locations, districts, and every
kind of problem reported with the exact row and column."""

from __future__ import annotations

import pytest
from test_import_support import (
    REGISTER_HEADER,
    register_row,
    register_rows,
    run_register,
    tiny_store,
    write_csv,
    write_xlsx,
)

from karte.domain.errors import InputError, ValidationError
from karte.importing import ImportValidationError, import_file


def _problems(store, path, **kw):
    with pytest.raises(ImportValidationError) as info:
        run_register(store, path, **kw)
    return [(p.row, p.column, p.message_ja) for p in info.value.problems]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_each_encoding_loads_the_same_rows(tmp_path, encoding):
    store = tiny_store(tmp_path)
    report = run_register(store, write_csv(tmp_path / "r.csv", register_rows(3), encoding=encoding))
    assert report.encoding == encoding and report.written
    reg = store.read("register").sort_values("person_id")
    assert list(reg["person_id"]) == ["P001", "P002", "P003"]
    assert list(reg["name"]) == ["青森 花子"] * 3
    # 本町1丁目 and 浜田1丁目 lie east of the split, 新町一丁目 west
    assert list(reg["district_code"]) == ["T02", "T02", "T01"]
    assert list(reg["address"]) == ["青森市本町1丁目2-3", "青森市浜田1-2-3", "青森市新町一丁目3-7"]
    assert set(reg["location_precision"]) == {"town"}
    assert list(reg["consent"]) == ["consented"] * 3
    assert list(reg["consent_date"]) == ["2024-04-01"] * 3
    assert list(reg["elderly_only_household"]) == [True] * 3
    assert reg.crs == "EPSG:6678"


def test_xlsx_loads_like_csv(tmp_path):
    rows = register_rows(3)
    csv_store = tiny_store(tmp_path / "a")
    run_register(csv_store, write_csv(tmp_path / "r.csv", rows))
    xlsx_store = tiny_store(tmp_path / "b")
    run_register(xlsx_store, write_xlsx(tmp_path / "r.xlsx", rows, first_sheet="説明"), sheet="名簿")
    a = csv_store.read("register").drop(columns="geometry").sort_values("person_id").reset_index(drop=True)
    b = xlsx_store.read("register").drop(columns="geometry").sort_values("person_id").reset_index(drop=True)
    assert a.equals(b)


def test_xlsx_date_cells_and_era_text(tmp_path):
    import datetime as dt

    rows = [REGISTER_HEADER, register_row("P1", birth=dt.datetime(1940, 3, 2)),
            register_row("P2", birth="昭和15年3月2日"), register_row("P3", birth="S15.3.2")]
    store = tiny_store(tmp_path)
    run_register(store, write_xlsx(tmp_path / "r.xlsx", rows))
    assert set(store.read("register")["birth_date"]) == {"1940-03-02"}


def test_english_headers_and_unknown_columns_are_reported(tmp_path):
    rows = [["person_id", "Name", "Birth Date", "consent", "address", "備考", "memo"],
            ["P1", "A B", "1940-03-02", "yes", "青森市新町1-3-7", "x", "y"]]
    store = tiny_store(tmp_path)
    report = run_register(store, write_csv(tmp_path / "r.csv", rows))
    assert report.written
    unknown = [(w.row, w.column) for w in report.warnings]
    assert unknown == [(1, "備考"), (1, "memo")]


def test_title_rows_above_the_header_keep_row_numbers(tmp_path):
    rows = [["要支援者名簿", "", ""], ["令和8年10月1日現在"], [""], *register_rows(2)]
    rows[5][4] = "2030-01-01"   # P002's birth date, in spreadsheet row 6
    store = tiny_store(tmp_path)
    assert _problems(store, write_csv(tmp_path / "r.csv", rows)) == [
        (6, "生年月日", "生年月日が未来の日付です")]


def test_every_problem_is_reported_at_once_with_row_and_column(tmp_path):
    header = [*REGISTER_HEADER, "地区", "緯度", "経度"]
    ok = [*register_row("P1"), "", "", ""]
    rows = [
        header,
        ok,                                                                   # row 2
        [*register_row("P1"), "", "", ""],                                    # row 3: duplicate id
        [*register_row("P3"), "Z99", "", ""],                                 # row 4: unknown district
        [*register_row("P4", birth="2027-01-01"), "", "", ""],                # row 5: future birth
        [*register_row("P5", consent=""), "", "", ""],                        # row 6: missing consent
        [*register_row("P6", address=""), "", "35.68", "139.76"],             # row 7: Tokyo
        [*register_row("P7", address="青森市存在しない町1-2"), "", "", ""],      # row 8: no such town
        [*register_row("P8", birth="昭和15年2月30日"), "", "", ""],             # row 9: no such date
        [*register_row("P9", consent="無"), "", "", ""],                       # row 10: ambiguous
        [*register_row("P10", name=""), "", "", ""],                           # row 11: empty name
        [*register_row("P11", care="要介護9"), "", "", ""],                    # row 12: bad care level
        [*register_row("P12", alone="たぶん"), "", "", ""],                    # row 13: bad yes/no
        [*register_row("P13", address=""), "", "40.82", ""],                  # row 14: lat without lng
    ]
    store = tiny_store(tmp_path)
    before = (tmp_path / "k.gpkg").read_bytes()
    got = _problems(store, write_csv(tmp_path / "r.csv", rows, encoding="cp932"))
    where = [(r, c) for r, c, _ in got]
    assert where == [
        (3, "番号"), (4, "地区"), (5, "生年月日"), (6, "同意"), (7, "緯度"), (8, "住所"), (9, "生年月日"),
        (10, "同意"), (11, "氏名"), (12, "要介護度"), (13, "高齢者のみ世帯"), (14, "経度"),
    ]
    messages = dict(((r, c), m) for r, c, m in got)
    assert messages[(3, "番号")] == "番号が 2 行目と重複しています"
    assert "地区はカルテにありません" in messages[(4, "地区")]
    assert "区域外" in messages[(7, "緯度")]
    assert "見つかりません" in messages[(8, "住所")]
    assert (tmp_path / "k.gpkg").read_bytes() == before          # nothing loaded
    assert "register" not in store.layers()


def test_messages_never_contain_personal_data(tmp_path):
    rows = [REGISTER_HEADER, register_row("P1", name="秘密 太郎", birth="1977-02-30",
                                          address="青森市秘密町9-9")]
    store = tiny_store(tmp_path)
    with pytest.raises(ValidationError) as info:
        run_register(store, write_csv(tmp_path / "r.csv", rows))
    text = info.value.format(verbose=True)
    assert len(info.value.problems) == 2
    for secret in ("秘密", "1977", "9-9"):
        assert secret not in text


def test_given_district_is_checked_against_coordinates(tmp_path):
    header = [*REGISTER_HEADER, "地区コード", "緯度", "経度"]
    rows = [header,
            [*register_row("P1", address=""), "T01", "40.827154", "140.737099"],   # 新町: T01, agrees
            [*register_row("P2", address=""), "T02", "40.827154", "140.737099"],   # disagrees: error
            [*register_row("P3"), "東地区", "", ""],                                # town point: warn
            [*register_row("P4", address=""), "", "40.8266", "140.7522"]]          # 本町: T02
    store = tiny_store(tmp_path)
    assert _problems(store, write_csv(tmp_path / "r.csv", rows)) == [
        (3, "地区コード", "座標は地区 T01 にありますが、地区欄は T02 です")]
    del rows[2]
    report = run_register(store, write_csv(tmp_path / "r.csv", rows))
    assert [(w.row, w.column) for w in report.warnings] == [(3, "地区コード")]
    reg = store.read("register").set_index("person_id")
    assert reg.loc["P3", "district_code"] == "T02"          # the given name 東地区 wins
    assert reg.loc["P1", "location_precision"] == "exact"
    assert reg.loc["P4", "district_code"] == "T02"


def test_plane_coordinates_and_swapped_axes(tmp_path):
    header = [*REGISTER_HEADER, "X座標", "Y座標"]
    rows = [header, [*register_row("P1", address=""), "91845", "-8117"],     # X north, Y east
            [*register_row("P2", address=""), "-8117", "91845"]]              # swapped
    store = tiny_store(tmp_path)
    got = _problems(store, write_csv(tmp_path / "r.csv", rows))
    assert [(r, c) for r, c, _ in got] == [(3, "X座標")]
    assert "入れ替わっていませんか" in got[0][2]
    del rows[2]
    run_register(store, write_csv(tmp_path / "r.csv", rows))
    point = store.read("register").geometry.iloc[0]
    assert (round(point.x), round(point.y)) == (-8117, 91845)


def test_dry_run_validates_and_writes_nothing(tmp_path):
    store = tiny_store(tmp_path)
    before = (tmp_path / "k.gpkg").read_bytes()
    report = run_register(store, write_csv(tmp_path / "r.csv", register_rows(3)), dry_run=True)
    assert report.dry_run and not report.written and report.changed
    assert report.changes[0].added == 3
    assert (tmp_path / "k.gpkg").read_bytes() == before


def test_missing_required_columns_and_no_districts(tmp_path):
    store = tiny_store(tmp_path)
    got = _problems(store, write_csv(tmp_path / "r.csv", [["番号", "氏名"], ["P1", "a"]]))
    assert [(r, c) for r, c, _ in got] == [(1, "生年月日"), (1, "同意")]
    from karte.store import GeoPackageStore

    with pytest.raises(InputError, match="地区がありません"):
        run_register(GeoPackageStore(tmp_path / "empty.gpkg"),
                     write_csv(tmp_path / "r.csv", register_rows(1)))


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(InputError, match="種類"):
        import_file(tiny_store(tmp_path), "people", tmp_path / "r.csv")
