"""``karte demo`` and ``karte build``: make the store's layers and kartes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from karte import demo_prefecture
from karte.build import Inputs, build_demo, keep_products, rebuild, write_outputs
from karte.cli.common import ProgressBar, StoreOpt, err, fail, out, store_at
from karte.domain.errors import KarteError
from karte.domain.history import fiscal_label
from karte.services.history import record_analysis
from karte.services.qgis import write_qgis
from karte.settings import get_settings
from karte.store import GeoPackageStore, open_store

STEP_JA = {
    "read_boundaries": "小地域境界の読み込み",
    "age_bands": "年齢構成",
    "districts": "地区の組み立て",
    "read_shelters": "避難所の読み込み",
    "municipalities": "市町村の割り当て",
    "place_rows": "名簿・資源の市町村",
    "synthetic_data": "デモデータ（合成）の生成",
    "read_store": "名簿・資源の読み込み",
    "base_stats": "基礎情報の集計",
    "assemble": "カルテの作成",
    "history": "年度別の記録",
    "write_store": "ストアへの保存",
    "supporters_demo": "地域福祉サポーターのデモデータ（合成）",
    "coverage": "サロン徒歩圏の解析",
}

FiscalYearOpt = Annotated[int | None, typer.Option(
    "--fiscal-year", help="Fiscal year of the kartes (2026 = 令和8年度; default: KARTE_FISCAL_YEAR, else the "
                          "current fiscal year, April to March); its history rows are written")]


def demo(
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: the workspace)")]
    = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the synthetic data")] = None,
    basemap: Annotated[str, typer.Option(help="gsi_pale (GSI 淡色地図) or none")] = "gsi_pale",
    fiscal_year: Annotated[int | None, typer.Option(
        "--fiscal-year", help="Fiscal year of the demo's kartes (default: that of its data date, 2026)")
    ] = None,
    scope: Annotated[str, typer.Option(
        help="city (Aomori city, the default) or prefecture (all 40 municipalities of Aomori "
             "prefecture, docs/scale.md)")] = "city",
    store: Annotated[str | None, typer.Option(
        "--store", help="With --scope prefecture: GeoPackage path or postgresql+psycopg:// URL "
                        "(default: OUT/karte.gpkg)")] = None,
) -> None:
    """Build the whole Aomori demo: karte.gpkg, overview.html and one karte JSON per district.

    Boundaries, shelters and emergency sites are real; age bands, elderly living alone,
    disabled persons, the register, cooperators and services are synthetic (marked so).
    ``--scope prefecture`` builds every municipality of the prefecture into one store instead
    (:mod:`karte.demo_prefecture`).
    """
    settings = get_settings()
    folder = out_dir or settings.workspace
    if scope not in ("city", "prefecture"):
        fail(f"--scope は city か prefecture です（{scope} が指定されました）")
    if scope == "prefecture":
        _demo_prefecture(store, folder, seed if seed is not None else settings.seed, fiscal_year)
        return
    if store is not None:
        fail("--store は --scope prefecture のときだけ指定できます（市のデモは --out のフォルダに作ります）")
    try:
        store = GeoPackageStore(folder / "karte.gpkg")
        seed = seed if seed is not None else settings.seed
        with ProgressBar(STEP_JA, steps=13) as bar:
            result = build_demo(store, Inputs.shipped(settings.data_dir), seed=seed, report=bar.step,
                                fiscal_year=fiscal_year)
        files = write_outputs(result, folder, basemap=basemap)
        with err.status("分析結果（サロンの徒歩圏・避難支援の空白）を年度別の記録に保存しています…"):
            record_analysis(store, seed=seed)
        with err.status("QGIS のスタイルとプロジェクトを GeoPackage に書き込んでいます…"):
            write_qgis(store.path)
        keep_products(store)  # the records above changed the build's stamp
    except KarteError as exc:
        fail(exc)
    out.print(f"地区数 {len(result.kartes)}、人口 {int(result.city['population']):,} 人、"
              f"要支援者 {int(result.city['support_needers']):,} 人（合成）")
    out.print(f"ストア:     {store.location}")
    out.print("QGIS:       スタイルとプロジェクト「karte」をストアに保存（docs/qgis.md）")
    out.print(f"全体図:     {files['overview']}")
    out.print(f"カルテJSON: {files['kartes']}/ ({len(result.kartes)} 件)")
    out.print(f"年度:       {fiscal_label(result.fiscal_year)}"
              "（それ以前の年度の記録と計画・指標はデモ用の合成データ）")


def _demo_prefecture(target: str | None, folder: Path, seed: int, fiscal_year: int | None) -> None:
    """``karte demo --scope prefecture``: every municipality of the prefecture into one store."""
    try:
        if target is None:
            folder.mkdir(parents=True, exist_ok=True)
        store = open_store(target) if target else GeoPackageStore(folder / "karte.gpkg")
        with ProgressBar(STEP_JA, steps=3) as bar:
            result = demo_prefecture.build_prefecture(store, seed=seed, fiscal_year=fiscal_year,
                                                      report=bar.step)
    except KarteError as exc:
        fail(exc)
    out.print(f"市町村数 {result.municipalities}、地区数 {result.districts}、小地域 {result.small_areas:,}、"
              f"人口 {result.population:,} 人、要支援者 {result.register:,} 人（合成）")
    out.print(f"ストア:     {store.location}")
    out.print("避難所:     青森市は実データ、他の市町村は合成（名前が「（合成）」で始まります）")


def build(
    store: StoreOpt = None,
    district_map: Annotated[Path | None, typer.Option(
        help="Small-area -> district CSV (key_code,district_code,district_name)")] = None,
    district_polygons: Annotated[Path | None, typer.Option(
        help="District polygons (GeoJSON, GeoPackage, Shapefile); statistics are apportioned "
             "by areal interpolation")] = None,
    code_field: Annotated[str, typer.Option(help="District code field of --district-polygons")]
    = "district_code",
    name_field: Annotated[str, typer.Option(help="District name field of --district-polygons")]
    = "district_name",
    age_table: Annotated[Path | None, typer.Option(
        help="e-Stat small-area age CSV (CP932, two header rows); else synthetic age bands")] = None,
    boundaries: Annotated[Path | None, typer.Option(help="Small-area boundaries (e-Stat LOD GeoJSON)")]
    = None,
    fiscal_year: FiscalYearOpt = None,
    census_year: Annotated[int | None, typer.Option(
        "--census-year", help="The census the population figures are from (default: the year the boundary "
                              "file names, else 2015)")] = None,
) -> None:
    """Rebuild every karte from the inputs, keeping the register, cooperators and services
    already in the store."""
    settings = get_settings()
    if district_map and district_polygons:
        fail("--district-map と --district-polygons は同時に指定できません")
    try:
        target = store_at(store)
        inputs = Inputs.shipped(settings.data_dir, district_map=district_map,
                                district_polygons=district_polygons, age_table=age_table,
                                boundaries=boundaries, district_code_field=code_field,
                                district_name_field=name_field)
        if census_year is not None:
            inputs = dataclasses.replace(inputs, census_year=census_year)
        with ProgressBar(STEP_JA, steps=13) as bar:
            result = rebuild(target, inputs, seed=settings.seed, report=bar.step, fiscal_year=fiscal_year)
        with err.status("分析結果（サロンの徒歩圏・避難支援の空白）を年度別の記録に保存しています…"):
            record_analysis(target)
    except KarteError as exc:
        fail(exc)
    out.print(f"{len(result.kartes)} 地区の{fiscal_label(result.fiscal_year)}のカルテを更新しました "
              f"({target.location})")
