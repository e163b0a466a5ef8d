"""``karte import supporters`` and ``karte import requests``: values as people type them, every
problem with file, row and column, nothing written when anything is wrong, records written as
the importing user (appended or updated, never replaced)."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest
from conftest import copy_store

from karte.cli.data import import_command
from karte.domain.access import Access, Level
from karte.domain.errors import ValidationError
from karte.domain.supporters import Layer as L
from karte.importing import import_file
from karte.importing.supporters import parse_activities, parse_hours_text, parse_weekdays
from karte.importing.values import ValueProblem
from karte.store import GeoPackageStore

TODAY = dt.date(2026, 12, 1)
HEADER = ("サポーター番号,氏名,フリガナ,電話番号,住所,できる活動,曜日,時間帯,季節,活動範囲,"
          "受け持ち,状況,申請日,登録日,研修\n")
GOOD = HEADER + (
    "X001,佐藤 花子,サトウ ハナコ,090-000-1111,青森市新町1丁目3-7,雪かき、見守り,月水金,9:00〜12:00,通年,"
    "800m,2,登録,令和7年4月1日,2025-05-01,基礎研修(2025-05-01)\n"
    "X002,工藤 一郎,クドウ イチロウ,017-000-2222,青森市浜田2丁目,買い物・ゴミ出し,平日,13時-16時,冬期以外,"
    "1km,3,登録,2025-06-01,2025-06-20,基礎研修\n"
    "X003,木村 茂,,017-000-3333,青森市浜田1丁目,健康体操・趣味講座の指導,土日,,通年,,1,申請中,"
    "2026-11-01,,\n")
REQUESTS = ("依頼番号,依頼者,名簿番号,住所,依頼内容,頻度,曜日,時間帯,希望日\n"
            "Q001,三上 キヨ,,青森市新町1丁目5,雪かき,降雪のたび,,6:00-9:00,\n"
            "Q002,鈴木 トシ,P000001,青森市浜田2丁目,買い物,毎週,火,10:00-11:30,\n"
            "Q003,田中 ハナ,,青森市浜田1丁目,移送,1回,,9:00-11:00,2026-12-20\n")


@pytest.fixture
def store(demo, tmp_path):
    return GeoPackageStore(copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg"))


def write(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def problems(exc) -> list[tuple[str, int | None, str | None, str]]:
    return [(p.file, p.row, p.column, p.message_ja) for p in exc.value.problems]


# --- values --------------------------------------------------------------------------------------

def test_values_as_people_type_them():
    assert parse_activities("雪かき、見守り") == ["watching", "snow"]  # the vocabulary's order
    assert parse_activities("買い物・ゴミ出し") == ["rubbish", "shopping"]
    assert parse_activities("健康体操・趣味講座の指導") == ["instruction"]
    assert parse_activities("除雪 送迎") == ["snow", "transport"]
    with pytest.raises(ValueProblem):
        parse_activities("雪かき、草むしり")
    assert parse_weekdays("月水金") == ["mon", "wed", "fri"]
    assert parse_weekdays("平日") == ["mon", "tue", "wed", "thu", "fri"]
    assert parse_weekdays("土・日曜") == ["sat", "sun"] and parse_weekdays("毎日") == parse_weekdays("") == []
    with pytest.raises(ValueProblem):
        parse_weekdays("月曜と火曜")
    assert parse_hours_text("9:00〜12:00、13時-16時半".replace("半", "")) == "09:00-12:00;13:00-16:00"
    assert parse_hours_text("") == ""
    for impossible in ("16時-13時", "23:00-25:00", "9:70-10:00", "午前中"):
        with pytest.raises(ValueProblem):
            parse_hours_text(impossible)


# --- loading -------------------------------------------------------------------------------------

def test_a_good_file_loads_as_records_of_the_importing_user(store, tmp_path):
    path = write(tmp_path, "supporters.csv", GOOD)
    report = import_file(store, "supporters", path, today=TODAY)
    assert report.ok and report.written and report.rows == 3
    assert report.changes[0].added == 3
    rows = store.read(L.SUPPORTERS).set_index("supporter_id").loc[["X001", "X002", "X003"]]
    assert rows.loc["X001", "activities"] == "watching;snow"
    assert rows.loc["X001", "menu_kinds"] == "watching;evacuation_snow"
    assert rows.loc["X001", "weekdays"] == "mon;wed;fri" and rows.loc["X001", "hours"] == "09:00-12:00"
    assert rows.loc["X001", "applied_on"] == "2025-04-01"
    assert rows.loc["X001", "training"] == "basic:2025-05-01"
    assert rows.loc["X002", "season"] == "non_winter" and rows.loc["X002", "reach_m"] == 1000
    assert rows.loc["X003", "status"] == "applied" and rows.loc["X003", "weekdays"] == "sat;sun"
    assert rows["district_code"].notna().all()
    assert set(rows["district_code"]) <= {f"S{i:02d}" for i in range(1, 43)}
    assert rows.geometry.notna().all()
    log = store.audit_log()
    appended = log[(log["layer"] == "supporters") & (log["action"] == "append")]
    assert len(appended) and (appended["route"] == "import:supporters").all()
    # the same file again: no change, nothing written; the demo's supporters are left as they are
    again = import_file(store, "supporters", path, today=TODAY)
    assert not again.changed and not again.written
    assert "そのままです" in again.format()


def test_a_changed_row_is_updated_with_its_version(store, tmp_path):
    import_file(store, "supporters", write(tmp_path, "a.csv", GOOD), today=TODAY)
    before = store.read_row(L.SUPPORTERS, "X002", access=Access("t", Level.CITY_STAFF))
    changed = GOOD.replace("1km,3,登録,2025-06-01,2025-06-20", "1km,3,休止,2025-06-01,2025-06-20")
    report = import_file(store, "supporters", write(tmp_path, "b.csv", changed), today=TODAY)
    assert report.changes[0].updated == 1 and report.changes[0].added == 0
    after = store.read_row(L.SUPPORTERS, "X002", access=Access("t", Level.CITY_STAFF))
    assert after["status"] == "suspended" and after["version"] > before["version"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
def test_encodings(store, tmp_path, encoding):
    report = import_file(store, "supporters", write(tmp_path, "s.csv", GOOD, encoding), today=TODAY)
    assert report.ok and report.changes[0].added == 3


def test_an_excel_workbook(store, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    for line in GOOD.strip().split("\n"):
        sheet.append(line.split(","))
    path = tmp_path / "supporters.xlsx"
    book.save(path)
    report = import_file(store, "supporters", path, today=TODAY)
    assert report.ok and report.encoding == "xlsx" and report.changes[0].added == 3


def test_a_bad_file_is_refused_whole_with_file_row_and_column(store, tmp_path):
    bad = HEADER + (
        # row 2: an unknown activity (草むしり)
        "X001,佐藤 花子,,,青森市新町1丁目3-7,雪かき、草むしり,月水金,9:00〜12:00,通年,,,登録,,2025-05-01,\n"
        # row 3: hours that end before they start
        "X002,工藤 一郎,,,青森市浜田2丁目,買い物,平日,16時-13時,通年,,,登録,,2025-06-01,\n"
        # row 4: the number of row 2 again
        "X001,木村 茂,,,青森市浜田1丁目,見守り,月,9:00-10:00,通年,,,登録,,2025-06-01,\n"
        # row 5: snow clearing only, but only outside winter
        "X004,成田 実,,,青森市浜田1丁目,雪かき,月,9:00-10:00,冬期以外,,,登録,,2025-06-01,\n"
        # row 6: a quarter of an hour a week
        "X005,今 清,,,青森市浜田1丁目,見守り,月,9:00-9:15,通年,,,登録,,2025-06-01,\n"
        # row 7: no name, an address outside the city
        "X006,,,,大阪市北区梅田1丁目,見守り,月,,通年,,,登録,,2025-06-01,\n")
    bad = bad.replace(HEADER, HEADER.replace("研修\n", "研修,協力者番号\n"))
    bad = bad.replace("2025-06-01,\nX006", "2025-06-01,,C99999\nX006")  # row 6: an unknown cooperator
    path = write(tmp_path, "bad.csv", bad)
    before = store.read(L.SUPPORTERS)
    with pytest.raises(ValidationError) as exc:
        import_file(store, "supporters", path, today=TODAY)
    got = problems(exc)
    where = [g[:3] for g in got]
    assert got[0][:3] == ("bad.csv", 2, "できる活動") and "活動の種類が読めません" in got[0][3]
    assert ("bad.csv", 3, "時間帯") in where
    assert any(g[:3] == ("bad.csv", 4, "サポーター番号") and "2 行目と重複" in g[3] for g in got)
    assert ("bad.csv", 5, "季節") in where and ("bad.csv", 6, "時間帯") in where
    assert ("bad.csv", 7, "氏名") in where and ("bad.csv", 7, "住所") in where
    assert ("bad.csv", 6, "協力者番号") in where                # not in the roster
    assert store.read(L.SUPPORTERS).equals(before)  # nothing written
    # the command line says the same, and exits 1
    out = import_command("supporters", path, store.path, yes=True)
    assert out == 1


def test_missing_columns_and_headers_are_reported(store, tmp_path):
    with pytest.raises(ValidationError) as exc:
        import_file(store, "supporters", write(tmp_path, "h.csv", "氏名,住所\n佐藤,青森市新町1丁目\n"),
                    today=TODAY)
    columns = {g[2] for g in problems(exc)}
    assert {"サポーター番号", "できる活動"} <= columns
    with pytest.raises(ValidationError) as exc:
        import_file(store, "supporters", write(tmp_path, "n.csv", "a,b\n1,2\n"), today=TODAY)
    assert "見出し行が見つかりません" in problems(exc)[0][3]


def test_requests_load_with_their_register_link(store, tmp_path):
    report = import_file(store, "requests", write(tmp_path, "requests.csv", REQUESTS), today=TODAY)
    assert report.ok and report.changes[0].added == 3
    rows = store.read(L.REQUESTS).set_index("request_id").loc[["Q001", "Q002", "Q003"]]
    assert rows.loc["Q001", "recurrence"] == "every_snowfall" and rows.loc["Q001", "hours"] == "06:00-09:00"
    assert rows.loc["Q002", "person_id"] == "P000001" and rows.loc["Q002", "weekdays"] == "tue"
    assert rows.loc["Q003", "starts_on"] == "2026-12-20" and rows.loc["Q003", "recurrence"] == "once"
    assert (rows["status"] == "open").all() and (rows["received_on"] == TODAY.isoformat()).all()


def test_bad_requests_are_refused_whole(store, tmp_path):
    bad = ("依頼番号,依頼者,名簿番号,住所,依頼内容,頻度,時間帯,希望日,終了日\n"
           "Q1,三上 キヨ,,青森市新町1丁目5,草むしり,毎週,,,\n"          # an unknown activity
           "Q2,鈴木 トシ,P999999,青森市浜田2丁目,買い物,毎週,,,\n"        # not in the register
           "Q3,田中 ハナ,,青森市浜田1丁目,買い物,降雪のたび,,,\n"         # every snowfall is for snow
           "Q4,成田 実,,青森市浜田1丁目,移送,1回,,,\n"                     # a one-off without its date
           "Q5,今 清,,青森市浜田1丁目,買い物,毎週,10時-9時,2026-12-01,2026-11-01\n"  # hours; end < start
           "Q1,木村 茂,,青森市浜田1丁目,見守り,毎週,,,\n")                 # the number again
    before = store.read(L.REQUESTS)
    with pytest.raises(ValidationError) as exc:
        import_file(store, "requests", write(tmp_path, "r.csv", bad), today=TODAY)
    got = {g[:3] for g in problems(exc)}
    assert {("r.csv", 2, "依頼内容"), ("r.csv", 3, "名簿番号"), ("r.csv", 4, "頻度"), ("r.csv", 5, "希望日"),
            ("r.csv", 6, "時間帯"), ("r.csv", 6, "終了日"), ("r.csv", 7, "依頼番号")} <= got
    assert store.read(L.REQUESTS).equals(before)  # nothing written
