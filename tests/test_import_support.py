"""Shared helpers for the importer tests: a tiny store, and CSV/xlsx writers.

The tiny store holds two hand-made districts that split central Aomori at x = -7400 m
(EPSG:6678): T01 (west: 新町一丁目, 古川一丁目 …) and T02 (east: 本町一丁目, 浜田一丁目 …).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import shapely

from gis import crs
from karte.importing import import_file
from karte.importing.geocode import TownGeocoder
from karte.store import GeoPackageStore

TODAY = dt.date(2026, 10, 1)
SPLIT_X = -7400.0
GEOCODER = TownGeocoder.from_file()

REGISTER_HEADER = ["番号", "氏名", "フリガナ", "住所", "生年月日", "要介護度", "同意", "同意日",
                   "個別避難計画", "高齢者のみ世帯"]


def districts_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"district_code": ["T01", "T02"], "district_name": ["（仮）西地区", "（仮）東地区"],
         "small_areas": [0, 0]},
        geometry=[shapely.MultiPolygon([shapely.box(-30000, 70000, SPLIT_X, 110000)]),
                  shapely.MultiPolygon([shapely.box(SPLIT_X, 70000, 10000, 110000)])],
        crs=crs.METRIC)


def tiny_store(tmp_path: Path) -> GeoPackageStore:
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"districts": districts_frame()})
    return store


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    text = "\r\n".join(",".join(_quote(c) for c in row) for row in rows) + "\r\n"
    path.write_bytes(text.encode(encoding))
    return path


def _quote(cell: str) -> str:
    cell = str(cell)
    if any(c in cell for c in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_xlsx(path: Path, rows: list[list], *, sheet: str = "名簿", first_sheet: str | None = None) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    if first_sheet:
        ws.title = first_sheet
        ws.append(["これは説明のシートです"])
        ws = book.create_sheet(sheet)
    else:
        ws.title = sheet
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def register_row(pid: str, *, name: str = "青森 花子", kana: str = "アオモリ ハナコ",
                 address: str = "青森市新町一丁目3-7", birth: str = "1940-03-02", care: str = "要介護1",
                 consent: str = "同意", consent_date: str = "R6.4.1", plan: str = "作成済",
                 alone: str = "有") -> list[str]:
    return [pid, name, kana, address, birth, care, consent, consent_date, plan, alone]


def run_import(store, kind: str, path: Path, **kw):
    """``import_file`` with the tests' fixed geocoder and date."""
    return import_file(store, kind, path, geocoder=GEOCODER, today=TODAY, **kw)


def run_register(store, path: Path, **kw):
    return run_import(store, "register", path, **kw)


def register_rows(n: int = 3) -> list[list[str]]:
    addresses = ["青森市新町一丁目3-7", "青森市本町１丁目２－３", "青森市浜田1-2-3"]
    return [REGISTER_HEADER] + [register_row(f"P{i:03d}", address=addresses[i % 3]) for i in range(1, n + 1)]


def test_tiny_store_has_two_districts(tmp_path):
    store = tiny_store(tmp_path)
    got = store.read("districts")
    assert list(got["district_code"]) == ["T01", "T02"]
    assert got.crs == crs.METRIC


SMALL_KEYS = ("02201001001", "02201001002", "02201002001")


def small_areas_frame() -> gpd.GeoDataFrame:
    """Three small areas: two in T01 (west of the split), one in T02."""
    return gpd.GeoDataFrame(
        {"key_code": list(SMALL_KEYS), "name": ["新町１丁目", "古川１丁目", "本町１丁目"],
         "population": [100, 200, 300], "households": [50, 90, 150], "concealed": [False] * 3,
         "age_0_14": [10, 20, 30], "age_15_64": [50, 100, 150], "age_65_74": [20, 40, 60],
         "age_75_plus": [20, 40, 60], "synthetic_age": [True] * 3,
         "district_code": ["T01", "T01", "T02"]},
        geometry=[shapely.MultiPolygon([shapely.box(-30000, 70000, -15000, 110000)]),
                  shapely.MultiPolygon([shapely.box(-15000, 70000, SPLIT_X, 110000)]),
                  shapely.MultiPolygon([shapely.box(SPLIT_X, 70000, 10000, 110000)])],
        crs=crs.METRIC)


def store_with_small_areas(tmp_path: Path) -> GeoPackageStore:
    store = tiny_store(tmp_path)
    store.write({"small_areas": small_areas_frame()})
    return store
