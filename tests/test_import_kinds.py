"""The other file kinds: cooperators, services, shelters, small-area statistics (e-Stat CSVs
included) and district definitions (GeoJSON, GeoPackage, zipped Shapefile, KEY_CODE table)."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import pytest
import shapely
from test_import_support import (
    SMALL_KEYS,
    SPLIT_X,
    districts_frame,
    run_import,
    store_with_small_areas,
    tiny_store,
    write_csv,
)

from gis import crs
from karte.domain.errors import InputError
from karte.importing import ImportValidationError, import_file


def _where(store, kind, path, **kw):
    with pytest.raises(ImportValidationError) as info:
        run_import(store, kind, path, **kw)
    return [(p.row, p.column) for p in info.value.problems]


# --- cooperators, services, shelters ---------------------------------------------------------

def test_cooperators(tmp_path):
    rows = [["協力者番号", "区分", "氏名", "電話番号", "住所", "できる支援", "支援可能人数", "地区"],
            ["C1", "民生委員", "協力 一郎", "０１７－０００－０００１", "青森市新町1-1",
             "見守り、避難支援", "２", ""],
            ["C2", "消防団", "協力 二郎", "090-000-0002", "", "除雪", "", "東地区"],
            ["C3", "町会", "協力 三郎", "1770001234", "青森市本町1-1", "見守り", "1", ""],   # lost 0
            ["C4", "市長", "協力 四郎", "", "", "", "", ""],                                 # role, district
            ["C1", "民生委員", "協力 五郎", "", "青森市本町1-1", "送迎", "x", ""]]            # dup, capacity
    store = tiny_store(tmp_path)
    assert _where(store, "cooperators", write_csv(tmp_path / "c.csv", rows, encoding="cp932")) == [
        (4, "電話番号"), (5, "区分"), (5, "地区"), (6, "支援可能人数"), (6, "協力者番号")]
    del rows[3:]
    report = run_import(store, "cooperators", write_csv(tmp_path / "c.csv", rows))
    coop = store.read("cooperators").set_index("cooperator_id")
    assert coop.loc["C1", "phone"] == "017-000-0001"
    assert coop.loc["C1", "help_kinds"] == "watching;evacuation"
    assert int(coop.loc["C1", "capacity"]) == 2
    assert coop.loc["C1", "district_code"] == "T01"
    assert coop.loc["C2", "district_code"] == "T02"            # by name, no location
    assert coop.loc["C2", "location_precision"] == "none"
    assert report.precision == {"town": 1, "none": 1}


def test_services(tmp_path):
    rows = [["番号", "種類", "名称", "実施主体", "会場", "住所", "頻度", "日程", "連絡先", "対象"],
            ["V1", "サロン", "ふれあいサロン", "地区社協", "新町会館", "青森市新町1-1", "月1回",
             "毎月第2火曜 10:00〜", "017-000-0000", "高齢者"],
            ["V2", "体操", "いきいき体操", "町会", "本町会館", "青森市本町1-1", "毎週", "", "", ""],
            ["V3", "カラオケ", "歌う会", "町会", "", "青森市本町1-1", "週3回", "", "", ""]]
    store = tiny_store(tmp_path)
    assert _where(store, "services", write_csv(tmp_path / "s.csv", rows)) == [(4, "種類"), (4, "頻度")]
    del rows[3]
    run_import(store, "services", write_csv(tmp_path / "s.csv", rows))
    serv = store.read("services").set_index("service_id")
    assert list(serv["kind"]) == ["salon", "exercise"]
    assert list(serv["frequency"]) == ["monthly", "weekly"]
    assert list(serv["district_code"]) == ["T01", "T02"]


def test_shelters_gsi_headers(tmp_path):
    rows = [["共通ID", "施設・場所名", "住所", "受入対象者", "備考", "緯度", "経度"],
            ["E1", "新町小学校", "青森市新町1-1", "", "", "", ""],
            ["E2", "本町ホーム", "", "高齢者", "", "40.8266", "140.7522"],
            ["E3", "どこか", "", "", "", "", ""]]                                   # no location
    store = tiny_store(tmp_path)
    assert _where(store, "shelters", write_csv(tmp_path / "h.csv", rows)) == [(4, "住所")]
    del rows[3]
    run_import(store, "shelters", write_csv(tmp_path / "h.csv", rows))
    sh = store.read("shelters").set_index("shelter_id")
    assert list(sh["welfare"]) == [False, True]
    assert "district_code" not in sh.columns


# --- small-area statistics -------------------------------------------------------------------

def test_plain_statistics_update_only_the_listed_areas(tmp_path):
    rows = [["KEY_CODE", "町丁・字", "人口", "世帯数", "一人暮らし高齢者"],
            [SMALL_KEYS[0], "新町１丁目", "１２０", "60", "5"],
            [SMALL_KEYS[2], "本町１丁目", "*", "X", "-"]]
    store = store_with_small_areas(tmp_path)
    report = run_import(store, "stats", write_csv(tmp_path / "p.csv", rows, encoding="cp932"))
    assert report.changes[0].table() == [("T01", 0, 0, 1), ("T02", 0, 0, 1)]
    small = store.read("small_areas").set_index("key_code")
    assert int(small.loc[SMALL_KEYS[0], "population"]) == 120
    assert int(small.loc[SMALL_KEYS[1], "population"]) == 200          # not in the file: kept
    assert small.isna().loc[SMALL_KEYS[2], "population"]                # concealed: null, never 0
    assert bool(small.loc[SMALL_KEYS[2], "concealed"])
    assert int(small.loc[SMALL_KEYS[0], "elderly_alone"]) == 5


def test_statistics_problems(tmp_path):
    rows = [["小地域コード", "人口"], ["02201999999", "1"], [SMALL_KEYS[0], "abc"], [SMALL_KEYS[0], "3"]]
    store = store_with_small_areas(tmp_path)
    assert _where(store, "stats", write_csv(tmp_path / "p.csv", rows)) == [
        (2, "小地域コード"), (3, "人口"), (4, "小地域コード")]


AGES = [(0, 4), (5, 9), (10, 14)] + [(a, a + 4) for a in range(15, 100, 5)]


def _estat(path, rows, encoding="cp932"):
    codes = ["KEY_CODE", "HYOSYO", "CITYNAME", "NAME", "HTKSYORI", "HTKSAKI", "GASSAN", "T000849001"]
    codes += [f"T000849{i:03d}" for i in range(2, len(AGES) + 3)] + ["T000849099"]
    labels = ["", "", "", "", "", "", "", "総数、年齢「不詳」含む"]
    labels += [f"総数{lo}～{hi}歳" for lo, hi in AGES] + ["総数１００歳以上", "男の総数"]
    lines = [",".join(codes), ",".join(labels)]
    for key, total, cells in rows:
        lines.append(",".join([key, "1", "青森市", "どこか", "", "", "", total, *cells, "0"]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def test_estat_age_table_cp932_with_concealed_cells(tmp_path):
    n = len(AGES) + 1
    concealed = ["１"] * n
    concealed[15] = "X"                                 # 75-79 concealed -> 75+ null
    rows = [("02201", "999", ["9"] * n),                # the city total row: skipped
            ("022010010", "999", ["9"] * n),            # a 大字 total row: skipped
            (SMALL_KEYS[0], "21", ["1"] * n),
            (SMALL_KEYS[1], "*", concealed)]
    store = store_with_small_areas(tmp_path)
    report = run_import(store, "stats", _estat(tmp_path / "tblT000849C02201.csv", rows))
    assert report.encoding == "cp932"
    assert any("2 行" in n for n in report.notes)
    assert [w.column for w in report.warnings] == [None]            # one note for the unused columns
    small = store.read("small_areas").set_index("key_code")
    a = small.loc[SMALL_KEYS[0]]
    assert [int(a[b]) for b in ("age_0_14", "age_15_64", "age_65_74", "age_75_plus")] == [3, 10, 2, 6]
    assert int(a["population"]) == 21 and not a["synthetic_age"]
    b = small.loc[SMALL_KEYS[1]]
    assert int(b["age_65_74"]) == 2 and small.isna().loc[SMALL_KEYS[1], "age_75_plus"]
    assert small.isna().loc[SMALL_KEYS[1], "population"] and bool(b["concealed"])
    assert bool(small.loc[SMALL_KEYS[2], "synthetic_age"])          # not in the file


def test_estat_bad_cell_has_its_row_and_code(tmp_path):
    n = len(AGES) + 1
    cells = ["1"] * n
    cells[4] = "abc"
    store = store_with_small_areas(tmp_path)
    path = _estat(tmp_path / "t.csv", [(SMALL_KEYS[0], "21", ["1"] * n), (SMALL_KEYS[1], "21", cells)],
                  encoding="utf-8")
    assert _where(store, "stats", path) == [(4, "T000849006")]


def test_statistics_need_small_areas(tmp_path):
    with pytest.raises(InputError, match="small_areas"):
        run_import(tiny_store(tmp_path), "stats", write_csv(tmp_path / "p.csv", [["KEY_CODE", "人口"]]))


# --- districts -------------------------------------------------------------------------------

def _districts_file(tmp_path):
    frame = districts_frame().rename(columns={"district_code": "地区コード", "district_name": "地区名"})
    return frame.drop(columns="small_areas").to_crs(crs.WGS84)


def test_districts_from_geojson_relocate_small_areas(tmp_path):
    store = store_with_small_areas(tmp_path)
    frame = _districts_file(tmp_path)
    frame.loc[1, "地区コード"] = "E01"                # rename T02 -> E01
    path = tmp_path / "d.geojson"
    frame.to_file(path, driver="GeoJSON")
    report = run_import(store, "districts", path)
    assert report.changes[0].table() == [("E01", 1, 0, 0), ("T02", 0, 1, 0)]
    small = store.read("small_areas").set_index("key_code")
    assert list(small["district_code"]) == ["T01", "T01", "E01"]
    dist = store.read("districts")
    assert list(dist["district_code"]) == ["E01", "T01"] and list(dist["small_areas"]) == [1, 2]
    assert set(store.read("district_map")["district_code"]) == {"T01", "E01"}


def test_districts_from_geopackage_layer(tmp_path):
    store = tiny_store(tmp_path)
    path = tmp_path / "d.gpkg"
    _districts_file(tmp_path).to_file(path, layer="地区", driver="GPKG")
    report = run_import(store, "districts", path, sheet="地区")
    assert not report.changed                          # the same two districts as the store holds


def _shapefile_zip(tmp_path, *, cpg: bool, prj: bool, encoding: str):
    folder = tmp_path / "shp"
    folder.mkdir()
    frame = _districts_file(tmp_path).rename(columns={"地区コード": "CODE", "地区名": "NAME"})
    frame.loc[0, "NAME"] = "浪岡地区"
    frame.to_file(folder / "districts.shp", encoding=encoding)
    zpath = tmp_path / "districts.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in folder.iterdir():
            if (f.suffix == ".cpg" and not cpg) or (f.suffix == ".prj" and not prj):
                continue
            zf.write(f, f"districts/{f.name}")
    return zpath


@pytest.mark.parametrize(("cpg", "encoding"), [(True, "UTF-8"), (True, "CP932"), (False, "CP932"),
                                                (False, "UTF-8")])
def test_districts_from_zipped_shapefile(tmp_path, cpg, encoding):
    store = tiny_store(tmp_path)
    report = run_import(store, "districts", _shapefile_zip(tmp_path, cpg=cpg, prj=True, encoding=encoding))
    assert report.written
    assert store.read("districts").set_index("district_code").loc["T01", "district_name"] == "浪岡地区"
    assert any(".cpg" in (w.message_ja or "") for w in report.warnings) == (not cpg)


def test_zipped_shapefile_without_prj_is_refused(tmp_path):
    store = tiny_store(tmp_path)
    with pytest.raises(ImportValidationError) as info:
        run_import(store, "districts", _shapefile_zip(tmp_path, cpg=True, prj=False, encoding="UTF-8"))
    assert ".prj" in info.value.problems[0].message_ja


def test_district_polygon_problems(tmp_path):
    frame = _districts_file(tmp_path)
    frame.loc[1, "地区コード"] = "T01"
    frame.loc[1, "地区名"] = ""
    path = tmp_path / "d.geojson"
    frame.to_file(path, driver="GeoJSON")
    assert _where(tiny_store(tmp_path), "districts", path) == [(2, "地区コード"), (2, "地区名")]


def test_districts_from_a_key_code_table(tmp_path):
    store = store_with_small_areas(tmp_path)
    rows = [["KEY_CODE", "地区コード", "地区名"], [SMALL_KEYS[0], "A", "甲地区"],
            [SMALL_KEYS[1], "B", "乙地区"], [SMALL_KEYS[2], "B", "乙地区"]]
    report = run_import(store, "districts", write_csv(tmp_path / "m.csv", rows))
    assert report.written
    dist = store.read("districts").set_index("district_code")
    assert list(dist.index) == ["A", "B"] and list(dist["small_areas"]) == [1, 2]
    assert shapely.get_num_geometries(dist.geometry.iloc[1]) >= 1
    bad = [rows[0], [SMALL_KEYS[0], "A", "甲地区"], [SMALL_KEYS[0], "A", "丙地区"], ["0220199", "B", "乙"]]
    assert _where(store, "districts", write_csv(tmp_path / "bad.csv", bad)) == [
        (None, "KEY_CODE"), (3, "KEY_CODE"), (3, "地区名"), (4, "KEY_CODE")]


def test_new_districts_move_the_register(tmp_path):
    from test_import_support import register_rows

    store = tiny_store(tmp_path)
    run_import(store, "register", write_csv(tmp_path / "r.csv", register_rows(3)))
    shifted = gpd.GeoDataFrame(
        {"district_code": ["T01", "T02"], "district_name": ["西", "東"]},
        geometry=[shapely.box(-30000, 70000, SPLIT_X + 1000, 110000),
                  shapely.box(SPLIT_X + 1000, 70000, 10000, 110000)], crs=crs.METRIC)
    path = tmp_path / "d.geojson"
    shifted.to_crs(crs.WGS84).to_file(path, driver="GeoJSON")
    report = run_import(store, "districts", path)
    moved = {c.layer: c for c in report.changes}
    assert moved["register"].updated == 2             # 本町 and 浜田 now lie west of the new line
    assert set(store.read("register")["district_code"]) == {"T01"}
    # districts that leave a registered person outside every district are refused
    shifted.iloc[:1].to_crs(crs.WGS84).to_file(tmp_path / "one.geojson", driver="GeoJSON")
    shifted2 = gpd.GeoDataFrame({"district_code": ["X"], "district_name": ["X"]},
                                geometry=[shapely.box(0, 70000, 10000, 110000)], crs=crs.METRIC)
    shifted2.to_crs(crs.WGS84).to_file(tmp_path / "far.geojson", driver="GeoJSON")
    with pytest.raises(ImportValidationError) as info:
        run_import(store, "districts", tmp_path / "far.geojson")
    assert "どの地区にも入りません" in info.value.problems[0].message_ja


def test_geo_file_problems_explain_that_rows_are_features(tmp_path):
    from karte.importing.api import ImportValidationError

    frame = _districts_file(tmp_path)
    frame.loc[1, "地区名"] = ""
    path = tmp_path / "d.geojson"
    frame.to_file(path, driver="GeoJSON")
    with pytest.raises(ImportValidationError) as info:
        import_file(tiny_store(tmp_path), "districts", path)
    text = info.value.report.format()
    assert "N 番目の地物" in text and "d.geojson 2行目 列「地区名」" in text
    ok = _districts_file(tmp_path)
    ok.to_file(tmp_path / "ok.geojson", driver="GeoJSON")
    assert "番目の地物" not in import_file(tiny_store(tmp_path), "districts", tmp_path / "ok.geojson",
                                           dry_run=True).format()
