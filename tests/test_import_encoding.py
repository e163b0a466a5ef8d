"""Reading CSV and xlsx files: encodings detected (never guessed silently), rows numbered as in
the spreadsheet."""

from __future__ import annotations

import datetime as dt

import pytest
from test_import_support import write_xlsx

from karte.domain.errors import InputError
from karte.importing.encoding import CP932, UTF8, UTF8_BOM, decode, detect_encoding
from karte.importing.tables import parse_csv, read_table

TEXT = "番号,氏名,住所\r\nP1,青森 花子,青森市新町一丁目3-7\r\n"


@pytest.mark.parametrize(("data", "expected"), [
    (TEXT.encode("utf-8"), UTF8),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), UTF8_BOM),
    (TEXT.encode("cp932"), CP932),
    (b"id,name\r\n1,abc\r\n", "ascii"),
    # half-width katakana in CP932 can be valid UTF-8 (ﾂｱ = C2 B1 = "±"): judged Japanese
    ("ﾂｱ,x\r\n".encode("cp932"), CP932),
])
def test_detects_each_encoding(data, expected):
    assert detect_encoding(data, source="f.csv") == expected


def test_decodes_each_encoding_to_the_same_text():
    for enc in ("utf-8", "utf-8-sig", "cp932"):
        text, _ = decode(TEXT.encode(enc), source="f.csv")
        assert text == TEXT


def test_utf8_that_is_also_valid_cp932_is_utf8():
    data = "番号,氏名\r\n".encode()  # valid UTF-8 and, by accident, valid CP932 (逡ｪ蜿ｷ…)
    assert data.decode("cp932")
    assert detect_encoding(data, source="f.csv") == UTF8


def test_ambiguous_bytes_are_refused_with_advice():
    data = "café,naïve\r\n".encode()  # UTF-8 Latin, or CP932 half-width kana (cafﾃｩ)?
    with pytest.raises(InputError, match=r"判定できません.*--encoding"):
        detect_encoding(data, source="f.csv")
    text, enc = decode(data, source="f.csv", encoding="utf-8")
    assert (text, enc) == ("café,naïve\r\n", UTF8)


@pytest.mark.parametrize(("data", "message"), [
    (b"id\r\n\x85\x40\xc0\r\n", "UTF-8 でも Shift_JIS"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 20, r"\.xls"),
    (b"PK\x03\x04" + b"\x00" * 20, "ZIP"),
    (b"id\x00name\x00", "テキスト"),
])
def test_unreadable_bytes_are_refused(data, message):
    with pytest.raises(InputError, match=message):
        parse_csv(data, source="f.csv")


def test_unknown_encoding_name_is_refused():
    with pytest.raises(InputError, match="対応していません"):
        decode(b"a", source="f.csv", encoding="euc-jp")


def test_rows_keep_spreadsheet_numbers_with_title_and_blank_rows():
    data = "要支援者名簿 令和8年10月1日現在\r\n\r\n番号,氏名\r\nP1,a\r\n\r\nP2,b\r\n".encode("cp932")
    table = parse_csv(data, source="f.csv")
    assert [n for n, _ in table.rows] == [1, 2, 3, 4, 5, 6]
    assert table.rows[5] == (6, ["P2", "b"])


def test_tab_separated_text_is_read():
    table = parse_csv("番号\t氏名\r\nP1\t青森 花子\r\n".encode(), source="f.txt")
    assert table.rows[1] == (2, ["P1", "青森 花子"])


def test_quoted_cells_with_commas_and_newlines():
    table = parse_csv('番号,備考\r\nP1,"a,b\r\nc"\r\nP2,x\r\n'.encode(), source="f.csv")
    assert table.rows[1] == (2, ["P1", "a,b\r\nc"])
    assert table.rows[2] == (3, ["P2", "x"])


def test_xlsx_first_sheet_dates_and_numbers(tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [["番号", "生年月日", "人数"],
                                            [12, dt.datetime(1940, 3, 2), 3.0],
                                            [None, None, None],
                                            ["P2", "S15.3.2", 2.5]])
    table = read_table(path)
    assert table.encoding == "xlsx"
    assert table.rows[1] == (2, ["12", "1940-03-02", "3"])
    assert table.rows[3] == (4, ["P2", "S15.3.2", "2.5"])


def test_xlsx_named_sheet_and_unknown_sheet(tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [["番号", "氏名"], ["P1", "a"]], sheet="名簿",
                      first_sheet="説明")
    assert read_table(path).rows[0][1][0] == "これは説明のシートです"
    assert read_table(path, sheet="名簿").rows[1] == (2, ["P1", "a"])
    with pytest.raises(InputError, match="シート「台帳」がありません"):
        read_table(path, sheet="台帳")


def test_missing_file_and_old_xls(tmp_path):
    with pytest.raises(InputError, match="ファイルがありません"):
        read_table(tmp_path / "none.csv")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=r"\.xls"):
        read_table(tmp_path / "old.xls")


def test_a_wrong_forced_encoding_says_what_the_file_looks_like():
    data = "番号,氏名\r\nP1,青森 花子\r\n".encode("cp932")
    with pytest.raises(InputError) as info:
        decode(data, source="f.csv", encoding="utf-8")
    message = str(info.value)
    assert "UTF-8 として読めません (1 バイト目" in message
    assert "Shift_JIS (CP932) のようです" in message and "--encoding を付けずに" in message
