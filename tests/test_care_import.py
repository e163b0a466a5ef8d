"""Ledgers of safety-net meetings and households of concern in and out: ``karte import meetings``,
``karte import concerns``, and the exports in the same headers.

CSV in UTF-8 or CP932 and ``.xlsx`` with the councils' Japanese headers (開催日, 地区, 参加者数,
検討世帯数, 気づいた人, 内容, 対応 …); every problem with file, row and column, nothing loaded when
anything is wrong (a bad date, an unknown district, a duplicated id); loading the same file again
adds nothing; an export loads back to the same records.
"""

from __future__ import annotations

import datetime as dt
import getpass

import pytest
from test_care_support import COORD, MEMBER, OWN, STAFF, consented, gpkg_copy
from test_import_support import GEOCODER, tiny_store, write_csv, write_xlsx

from karte.cli.data import import_command
from karte.domain.care import CareLayer
from karte.domain.errors import ValidationError
from karte.importing import care as ledgers
from karte.importing import import_file
from karte.services import care

TODAY = dt.date(2026, 11, 30)
MEETINGS = [["開催日", "地区", "会場", "参加者数", "ご近所福祉スタッフ", "民生委員", "検討世帯数", "内容"],
            ["令和8年4月12日", "T01", "西公民館", "12", "6", "3", "4", "見守りの分担"],
            ["2026/05/10", "（仮）東地区", "東会館", "", "5", "2", "3", "雪かきの相談"],
            ["R8.6.7", "T02", "東会館", "9", "", "", "2", ""]]


def _import(store, kind, path, **kw):
    return import_file(store, kind, path, today=TODAY, **kw)


@pytest.mark.parametrize("form", ["utf8", "cp932", "xlsx"])
def test_a_meetings_ledger_loads_as_the_importing_user_and_twice_adds_nothing(tmp_path, form):
    store = tiny_store(tmp_path)
    if form == "xlsx":
        path = write_xlsx(tmp_path / "会議.xlsx", MEETINGS)
    else:
        path = write_csv(tmp_path / "会議.csv", MEETINGS, encoding="cp932" if form == "cp932" else "utf-8")
    report = _import(store, "meetings", path)
    assert report.ok and report.written and report.rows == 3
    assert report.changes[0].by_district == {"T01": {"added": 1, "removed": 0, "updated": 0},
                                             "T02": {"added": 2, "removed": 0, "updated": 0}}
    rows = sorted(store.read_records(CareLayer.MEETINGS), key=lambda r: r["held_on"])
    assert [r["held_on"] for r in rows] == ["2026-04-12", "2026-05-10", "2026-06-07"]
    assert [r["participants"] for r in rows] == [12, 7, 9]  # the roles' sum when not given
    assert [r["households"] for r in rows] == [4, 3, 2]
    assert rows[0]["attendees_welfare_commissioner"] == 3 and rows[1]["district_code"] == "T02"
    full = store.read_full(CareLayer.MEETINGS)
    assert set(full["updated_by"]) == {getpass.getuser()}
    assert "地域セーフティネット会議" in report.format()
    again = _import(store, "meetings", path)
    assert not again.written and again.changes[0].unchanged == 3
    assert len(store.read_records(CareLayer.MEETINGS)) == 3
    counts = care.fiscal_year_counts(store, 2026, municipality=None)
    assert (counts["meetings_held"], counts["participants"], counts["households_discussed"]) == (3, 28, 9)


def test_a_ledger_with_a_bad_date_an_unknown_district_or_a_duplicated_id_loads_nothing(tmp_path):
    store = tiny_store(tmp_path)
    rows = [["会議番号", "開催日", "地区", "参加者数"],
            ["K1", "2026-04-31", "T01", "5"],
            ["K2", "2026-05-01", "北地区", "5"],
            ["K1", "2026-06-01", "T02", "5"],
            ["K3", "2027-01-01", "T02", "-2"]]
    path = write_csv(tmp_path / "ledger.csv", rows)
    with pytest.raises(ValidationError) as info:
        _import(store, "meetings", path)
    where = {(p.file, p.row, p.column) for p in info.value.problems}
    assert ("ledger.csv", 2, "開催日") in where        # no 31 April
    assert ("ledger.csv", 3, "地区") in where          # no such district
    assert ("ledger.csv", 4, "会議番号") in where      # K1 again
    assert ("ledger.csv", 5, "開催日") in where        # in the future
    assert ("ledger.csv", 5, "参加者数") in where      # negative
    assert "何も読み込んでいません" in str(info.value)
    assert CareLayer.MEETINGS not in store.layers()
    missing = write_csv(tmp_path / "no_date.csv", [["地区", "会場"], ["T01", "x"]])
    with pytest.raises(ValidationError) as info:
        _import(store, "meetings", missing)
    assert [(p.row, p.column) for p in info.value.problems] == [(1, "開催日")]


def test_a_stored_record_with_other_content_is_refused(tmp_path):
    store = tiny_store(tmp_path)
    _import(store, "meetings", write_csv(tmp_path / "a.csv", [["会議番号", "開催日", "地区", "参加者数"],
                                                                ["K1", "2026-04-01", "T01", "5"]]))
    changed = write_csv(tmp_path / "b.csv", [["会議番号", "開催日", "地区", "参加者数"],
                                             ["K1", "2026-04-01", "T01", "6"]])
    with pytest.raises(ValidationError) as info:
        _import(store, "meetings", changed)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "会議番号")]
    assert [r["participants"] for r in store.read_records(CareLayer.MEETINGS)] == [5]


def test_a_concerns_ledger_loads_cases_and_their_follow_up(tmp_path):
    store = tiny_store(tmp_path)
    rows = [["番号", "気づいた日", "地区", "世帯", "住所", "気づいた人", "気になること", "緊急度", "内容",
             "対応",
             "担当者", "次回確認日", "状況", "終了日", "終了理由"],
            ["", "令和8年5月1日", "T01", "山田さん宅", "青森市新町一丁目3-7", "ご近所福祉スタッフ",
             "孤立・閉じこもり;見守りが必要",
             "高", "新聞がたまっている", "民生委員が訪問", "民生委員 高橋", "2026-12-01", "対応中", "", ""],
            ["C-2", "2026-06-01", "T02", "佐藤さん宅", "", "田中 一郎", "生活困窮", "中", "=1+2", "", "", "",
             "終了",
             "2026-09-01", "制度・サービスにつながった"]]
    path = write_csv(tmp_path / "気づき.csv", rows)
    report = import_file(store, "concerns", path, today=TODAY)
    assert report.ok and report.written and any("支援の記録" in n for n in report.notes)
    cases = {c["household"]: c for c in store.read_records(CareLayer.CONCERNS)}
    yamada, sato = cases["山田さん宅"], cases["佐藤さん宅"]
    assert yamada["noticed_by_role"] == "neighbourhood_staff" and yamada["noticed_by_name"] is None
    assert yamada["kinds"] == "isolation;watching" and yamada["urgency"] == "high"
    assert yamada["location_precision"] == "town" and yamada["x"] is not None
    assert (sato["concern_id"], sato["status"], sato["close_reason"]) == ("C-2", "closed", "connected")
    assert sato["noticed_by_role"] == "other" and sato["noticed_by_name"] == "田中 一郎"
    assert sato["summary"] == "=1+2"
    [action] = store.read_records(CareLayer.ACTIONS)
    assert action["concern_id"] == yamada["concern_id"] and action["note"] == "民生委員が訪問"
    counts = care.fiscal_year_counts(store, 2026, municipality=None)
    assert (counts["cases_opened"], counts["cases_closed"]) == (2, 1)
    bad = write_csv(tmp_path / "bad.csv", [rows[0], ["", "2026-05-01", "T01", "", "", "", "不明な種類", "",
                                                     "", "",
                                                     "", "", "終了", "", ""]])
    with pytest.raises(ValidationError) as info:
        import_file(store, "concerns", bad, today=TODAY)
    where = {(p.row, p.column) for p in info.value.problems}
    assert {(2, "世帯"), (2, "気になること"), (2, "終了日")} <= where
    assert len(store.read_records(CareLayer.CONCERNS)) == 2


def test_the_exports_load_back_to_the_same_records(demo, tmp_path):
    source = gpkg_copy(demo, tmp_path / "a")
    person = consented(source)[0]
    case = care.record_concern(source, MEMBER, OWN, {
        "household": "山田さん宅", "noticed_on": "2026-11-02", "noticed_by_role": "welfare_commissioner",
        "noticed_by_name": "高橋", "urgency": "medium", "kinds": ["dementia"], "summary": "+火の不始末",
        "person_id": person["person_id"]}, today=TODAY)
    care.record_action(source, COORD, OWN, {"concern_id": case["concern_id"], "acted_on": "2026-11-10",
                                            "kind": "visit", "note": "訪問した"}, today=TODAY)
    care.record_meeting(source, MEMBER, OWN, {"held_on": "2026-11-12", "place": "会館", "attendees_csw": "1",
                                              "attendees_neighbourhood_staff": "5", "summary": "=SUM(1)",
                                              "household": [case["concern_id"]],
                                              care.household_field(case["concern_id"], "discussed"): "1"},
                        today=TODAY)
    files = {}
    for kind, suffix in (("meetings", ".csv"), ("concerns", ".xlsx")):
        header, rows = care.ledger_table(source, STAFF, kind)
        files[kind] = ledgers.write_ledger(tmp_path / f"{kind}{suffix}", header, rows)
        assert oct(files[kind].stat().st_mode & 0o777) == "0o600"
    text = files["meetings"].read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("会議番号,開催日,地区,会場,参加者数") and "'=SUM(1)" in text
    target = gpkg_copy(demo, tmp_path / "b")
    for kind in ("meetings", "concerns"):
        assert import_file(target, kind, files[kind], today=TODAY).written
    keep_m = ("meeting_id", "held_on", "district_code", "place", "participants", "households", "summary",
              "attendees_csw", "attendees_neighbourhood_staff")
    keep_c = ("concern_id", "noticed_on", "district_code", "household", "person_id", "kinds", "urgency",
              "summary", "noticed_by_role", "noticed_by_name", "status", "key_code")
    for layer, keep in ((CareLayer.MEETINGS, keep_m), (CareLayer.CONCERNS, keep_c)):
        before = [{k: r.get(k) for k in keep} for r in source.read_records(layer)]
        after = [{k: r.get(k) for k in keep} for r in target.read_records(layer)]
        assert after == before, layer
    assert [a["note"] for a in target.read_records(CareLayer.ACTIONS)] == ["訪問した"]
    for kind in ("meetings", "concerns"):  # and once more: nothing new
        assert not import_file(target, kind, files[kind], today=TODAY).written


def test_the_import_command_shows_the_changes_then_writes(tmp_path, capsys):
    store = tiny_store(tmp_path)
    path = write_csv(tmp_path / "会議.csv", MEETINGS)
    code = import_command("meetings", path, str(tmp_path / "k.gpkg"), dry_run=True)
    printed = capsys.readouterr().out
    assert code == 0 and "地域セーフティネット会議の記録" in printed and "T02" in printed
    assert CareLayer.MEETINGS not in store.layers()
    assert import_command("会議", path, str(tmp_path / "k.gpkg"), yes=True) == 0
    assert len(store.read_records(CareLayer.MEETINGS)) == 3


def test_the_geocoder_is_the_town_geocoder_in_these_tests():
    # the concerns ledger geocodes like the register import (the shipped town points offline)
    hit = GEOCODER.geocode("青森市新町一丁目3-7")
    assert hit.precision == "town"
