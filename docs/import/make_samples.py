# ruff: noqa: E501  (sample rows read better on one line each)
"""Write the sample files of docs/import/ in UTF-8 and CP932 (run from the repository root).

Every person, phone number and service here is fictional (phone numbers use the unassigned 000
exchange). The files show the forms the importer accepts: Japanese headers, era dates, full-width
digits, 有/無 and ○/×, consent words, addresses without coordinates and a row with coordinates.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

SAMPLES: dict[str, list[list[str]]] = {
    "register": [
        ["番号", "氏名", "フリガナ", "住所", "生年月日", "要介護度", "障害種別", "障害等級", "高齢者のみ世帯",
         "難病", "乳幼児", "医療機器", "移動", "同意", "同意日", "支援者", "個別避難計画", "避難所", "緯度", "経度"],
        ["P0001", "佐藤 ハナ", "サトウ ハナ", "青森市新町一丁目3-7", "昭和15年3月2日", "要介護２", "", "", "有",
         "無", "無", "", "介助歩行", "同意", "R6.4.1", "C0001", "作成済", "", "", ""],
        ["P0002", "工藤 キヨ", "ｸﾄﾞｳ ｷﾖ", "青森市本町１丁目２－３", "S8.11.30", "要介護4", "", "", "○",
         "×", "×", "在宅酸素", "寝たきり", "条例", "", "C0002;C0003", "作成中", "", "", ""],
        ["P0003", "木村 勇", "キムラ イサム", "青森市浜田1-2-3", "1938/7/15", "", "身体", "2級", "無",
         "無", "無", "", "車いす", "未回答", "", "", "未作成", "", "", ""],
        ["P0004", "成田 陽菜", "ナリタ ヒナ", "青森市浪岡大字浪岡字稲村101", "令和5年1月20日", "", "", "", "無",
         "無", "有", "", "", "同意", "令和6年5月1日", "", "未作成", "", "", ""],
        ["P0005", "三上 茂", "ミカミ シゲル", "", "1941-12-01", "要支援1", "", "", "はい",
         "いいえ", "いいえ", "", "自立", "不同意", "2024-06-10", "", "未作成", "", "40.8266", "140.7522"],
    ],
    "cooperators": [
        ["協力者番号", "区分", "氏名", "電話番号", "住所", "できる支援", "支援可能人数"],
        ["C0001", "民生委員・児童委員", "斎藤 恵子", "017-000-0001", "青森市新町二丁目1", "見守り、避難支援", "2"],
        ["C0002", "消防団員", "中村 健一", "090-000-0002", "青森市本町二丁目5", "避難支援;除雪", "3"],
        ["C0003", "地域福祉サポーター", "鈴木 陽子", "０１７－０００－０００３", "青森市浜田2丁目4", "見守り、移送",
         "1"],
    ],
    "services": [
        ["番号", "種類", "名称", "実施主体", "会場", "住所", "頻度", "日程", "連絡先", "対象"],
        ["V0001", "サロン", "新町ふれあいサロン", "地区社協", "新町会館", "青森市新町一丁目5", "月1回",
         "毎月第2火曜 10:00〜12:00", "017-000-1000", "高齢者"],
        ["V0002", "雪かき", "冬季の雪かき支援", "町会", "", "青森市本町1丁目", "随時", "12月〜3月", "017-000-1001",
         "高齢者・障がい者"],
        ["V0003", "体操", "いきいき体操教室", "地区社協", "浜田市民館", "青森市浜田1丁目8", "毎週", "水曜 10:00〜",
         "017-000-1002", "どなたでも"],
    ],
    "shelters": [
        ["共通ID", "施設・場所名", "住所", "受入対象者", "備考", "緯度", "経度"],
        ["X0220100001", "新町小学校（サンプル）", "青森市新町一丁目1", "", "", "", ""],
        ["X0220100002", "本町ケアホーム（サンプル）", "青森市本町二丁目2", "高齢者", "福祉避難所", "40.8266", "140.7522"],
    ],
    "stats": [
        ["KEY_CODE", "町丁・字", "人口", "世帯数", "0〜14歳", "15〜64歳", "65〜74歳", "75歳以上", "一人暮らし高齢者"],
        ["02201055106", "小柳６丁目", "９９６", "420", "110", "560", "150", "176", "40"],
        ["02201125004", "富田４丁目", "1,436", "640", "160", "830", "210", "236", "*"],
        ["02201037001", "青柳１丁目", "X", "X", "X", "X", "X", "X", "X"],
    ],
}


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def estat_sample() -> str:
    """An e-Stat small-area age table (tblT000849C02201 layout): two header rows, concealed cells."""
    ages = [(0, 4), (5, 9), (10, 14)] + [(a, a + 4) for a in range(15, 100, 5)]
    codes = ["KEY_CODE", "HYOSYO", "CITYNAME", "NAME", "HTKSYORI", "HTKSAKI", "GASSAN", "T000849001"]
    codes += [f"T000849{i:03d}" for i in range(2, len(ages) + 3)]
    labels = ["", "", "", "", "", "", "", "総数、年齢「不詳」含む"]
    labels += [f"総数{lo}～{hi}歳" for lo, hi in ages] + ["総数100歳以上"]
    rows = [codes, labels,
            ["02201", "1", "青森市", "青森市", "", "", "", "287648", *["-"] * (len(ages) + 1)],
            ["02201055106", "4", "青森市", "小柳６丁目", "", "", "", "996",
             "30", "38", "42", *["40"] * 10, "60", "58", "40", "18", "0", "0", "0"],
            ["02201037001", "4", "青森市", "青柳１丁目", "1", "", "", "*", *["*"] * (len(ages) + 1)]]
    return _csv(rows)


def district_map() -> str:
    text = (REPO / "data" / "districts" / "aomori_standin_districts.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return _csv([["KEY_CODE", "地区コード", "地区名"], *rows[1:]])


def district_polygons() -> None:
    """The stand-in districts as a boundary file (GeoJSON is UTF-8 by definition), simplified."""
    from gis.districts import dissolve_districts
    from karte.districts import read_mapping
    from karte.sources import read_small_areas

    small = read_small_areas(REPO / "data" / "boundaries" / "aomori_city_02201_small_areas_2015_estat_lod.geojson")
    mapping = read_mapping(REPO / "data" / "districts" / "aomori_standin_districts.csv", small)
    small = small.merge(mapping[["key_code", "district_code"]], on="key_code")
    districts = dissolve_districts(small, mapping)
    districts["geometry"] = districts.geometry.simplify(30)
    out = districts.rename(columns={"district_code": "地区コード", "district_name": "地区名"})
    out[["地区コード", "地区名", "geometry"]].to_crs("EPSG:4326").to_file(
        HERE / "districts.geojson", driver="GeoJSON", COORDINATE_PRECISION=6)


def main() -> None:
    texts = {kind: _csv(rows) for kind, rows in SAMPLES.items()}
    texts["estat_age"] = estat_sample()
    texts["districts_map"] = district_map()
    for name, text in texts.items():
        (HERE / f"{name}.utf8.csv").write_text(text, encoding="utf-8", newline="")
        (HERE / f"{name}.cp932.csv").write_bytes(text.encode("cp932"))
    district_polygons()


if __name__ == "__main__":
    main()
