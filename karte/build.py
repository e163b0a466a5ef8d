"""The build pipeline: inputs -> cleaned layers -> kartes -> store (and demo outputs).

``build_demo`` generates the synthetic register, cooperators and services; ``rebuild`` keeps the
ones already in the store (imported from real files) and recomputes everything derived.
Each step is timed (``BuildResult.timings``) for the progress display and ``bench/build.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gis.districts import dissolve_districts
from gis.overlay import locate_points
from karte import (
    agebands,
    districts,
    history,
    history_demo,
    municipalities,
    snapshot,
    sources,
    synthetic,
    synthetic_supporters,
)
from karte.assemble import assemble_kartes, fiscal_year, kartes_frame
from karte.basestats import base_stats, district_counts
from karte.census import reconcile
from karte.domain.errors import InputError, NotFoundError
from karte.domain.history import HistoryLayer
from karte.domain.layers import MUNICIPALITY, Layer
from karte.domain.schema import AGE_BANDS
from karte.render.overview import write_overview
from karte.services import suppression
from karte.settings import get_settings
from karte.store.base import Store


@dataclass(frozen=True)
class Inputs:
    """Where the build reads from. :meth:`shipped` gives the repository's real Aomori data."""

    boundaries: Path
    shelters: Path
    emergency_sites: Path
    district_map: Path | None = None
    district_polygons: Path | None = None
    district_code_field: str = "district_code"
    district_name_field: str = "district_name"
    age_table: Path | None = None
    #: The census the population figures are from (default: the year the boundary file names,
    #: e.g. ``…_2015_estat_lod.geojson``, else the shipped data's 2015).
    census_year: int | None = None

    @property
    def census(self) -> int:
        """The census year of the population figures (see :attr:`census_year`)."""
        return self.census_year or history.census_year_of(self.boundaries) or history.SHIPPED_CENSUS_YEAR

    @classmethod
    def shipped(cls, data_dir: Path, **overrides) -> Inputs:
        base = {
            "boundaries": data_dir / "boundaries" / "aomori_city_02201_small_areas_2015_estat_lod.geojson",
            "shelters": data_dir / "shelters" / "aomori_022012_designated_shelters_gsi.geojson",
            "emergency_sites": data_dir / "shelters" / "aomori_022012_emergency_evacuation_sites_gsi.geojson",
            "district_map": data_dir / "districts" / "aomori_standin_districts.csv",
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        if overrides.get("district_polygons") is not None and "district_map" not in overrides:
            base["district_map"] = None
        return cls(**base)


@dataclass
class Base:
    """The real, non-personal layers every karte stands on."""

    small_areas: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    district_map: pd.DataFrame
    shelters: gpd.GeoDataFrame
    emergency_sites: gpd.GeoDataFrame
    by_polygon: bool
    synthetic_age: bool


@dataclass
class BuildResult:
    store: Store
    kartes: dict[str, dict]
    stats: pd.DataFrame
    city: pd.Series
    base: Base
    timings: dict[str, float] = field(default_factory=dict)
    fiscal_year: int | None = None


class Steps:
    """Times named steps and reports them to an optional callback (progress display)."""

    def __init__(self, report: Callable[[str], None] | None = None):
        self.report = report
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.report:
            self.report(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0


def load_base(inputs: Inputs, *, seed: int, steps: Steps | None = None) -> Base:
    steps = steps or Steps()
    with steps("read_boundaries"):
        small = sources.read_small_areas(inputs.boundaries)
    with steps("age_bands"):
        if inputs.age_table is not None:
            table = agebands.read_estat_age_table(inputs.age_table)
            small = small.join(table, on="key_code")
            synthetic_age = False
            # no real table for these two either: keep the model's figures, marked synthetic
            extra = agebands.synthetic_age_bands(small, seed=seed)[["elderly_alone", "disabled"]]
        else:
            extra = agebands.synthetic_age_bands(small, seed=seed)
            synthetic_age = True
        for col in extra.columns:
            small[col] = extra[col]
        small["synthetic_age"] = synthetic_age
        for band in AGE_BANDS:
            small[band] = small[band].astype("Int64")
    with steps("districts"):
        if inputs.district_polygons is not None:
            dist = districts.read_district_polygons(
                inputs.district_polygons, code=inputs.district_code_field,
                name=inputs.district_name_field)
            points = small.set_geometry(small.geometry.representative_point())
            small["district_code"] = locate_points(points, dist, "district_code")
            mapping = small[["key_code", "district_code"]].merge(
                dist[["district_code", "district_name"]], on="district_code", how="left")
            dist["small_areas"] = small["district_code"].value_counts().reindex(
                dist["district_code"]).fillna(0).astype(int).to_numpy()
            by_polygon = True
        else:
            mapping = districts.read_mapping(inputs.district_map, small)
            small = small.merge(mapping[["key_code", "district_code"]], on="key_code", how="left")
            dist = dissolve_districts(small, mapping)
            by_polygon = False
    with steps("read_shelters"):
        shelters = sources.read_shelters(inputs.shelters)
        sites = sources.read_emergency_sites(inputs.emergency_sites)
    with steps("municipalities"):
        dist = _with_municipality(dist, municipalities.of_districts(dist, small))
        mapping = _with_municipality(mapping, municipalities.of_key_codes(mapping["key_code"]))
        shelters = municipalities.stamp(shelters, small)
        sites = municipalities.stamp(sites, small)
    return Base(small, dist, mapping, shelters, sites, by_polygon, synthetic_age)


def _with_municipality(frame: pd.DataFrame, codes: pd.Series) -> pd.DataFrame:
    """``frame`` with ``municipality_code`` right after its first column."""
    out = frame.drop(columns=[MUNICIPALITY], errors="ignore")
    out.insert(1, MUNICIPALITY, codes.to_numpy())
    return out


def build_demo(store: Store, inputs: Inputs, *, seed: int, data_date: dt.date | None = None,
               fiscal_year: int | None = None, history_years: int = synthetic.DEMO_HISTORY_YEARS,
               plans: bool = True, keep_history: bool = True,
               report: Callable[[str], None] | None = None) -> BuildResult:
    """Build the whole demo: real base layers plus synthetic register, cooperators, services.

    ``fiscal_year`` (default: the fiscal year of ``data_date``) is the karte's year; the demo also
    keeps ``history_years`` earlier fiscal years of synthetic history (labelled synthetic) and,
    with ``plans``, Aomori's plan goals with demo marks, indicators and targets
    (:mod:`karte.history_demo`), so every trend and plan view has something to show.
    """
    steps = Steps(report)
    base = load_base(inputs, seed=seed, steps=steps)
    data_date = data_date or synthetic.DEMO_DATA_DATE
    year = fiscal_year if fiscal_year is not None else fiscal_year_of(data_date)
    with steps("synthetic_data"):
        demo = synthetic.generate(base.small_areas, base.districts, base.shelters,
                                  base.emergency_sites, seed=seed, data_date=data_date)
    flags = ["register", "cooperators", "services"]

    def demo_years(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        earlier = synthetic.synthetic_history(rows, years=history_years, seed=seed)
        extra = history_demo.demo_layers(base.districts, earlier_and_now=pd.concat([earlier, rows]),
                                          fiscal_year=year, seed=seed) if plans else {}
        return earlier, extra

    result = _finish(store, base, demo.register, demo.cooperators, demo.services, steps,
                     data_date=data_date, synthetic_layers=flags, fiscal_year=year,
                     census_year=inputs.census, census_file=inputs.boundaries.name,
                     age_table=inputs.age_table.name if inputs.age_table else None, demo_years=demo_years,
                     keep_history=keep_history)
    with steps("supporters_demo"):
        # 地域福祉サポーター, requests, dispatches and points drawn from the register and roster just
        # written (an existing points ledger is kept: it is append-only)
        synthetic_supporters.write_demo(store, seed=seed, data_date=data_date)
    return result


def rebuild(store: Store, inputs: Inputs, *, seed: int, fiscal_year: int | None = None,
            report: Callable[[str], None] | None = None) -> BuildResult:
    """Rebuild from the inputs, keeping the register, cooperators and services in the store.

    ``fiscal_year`` (default: ``KARTE_FISCAL_YEAR``, else the current fiscal year, April to March)
    is the karte's year: the history row of every district for that year is written (replacing
    that year's, keeping every other year's).
    """
    steps = Steps(report)
    base = load_base(inputs, seed=seed, steps=steps)
    with steps("read_store"):
        meta = store.meta()
        layers = {n: store.read(n) for n in (Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES)}
    for name, frame in layers.items():  # district lines may have changed: relocate
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            located = locate_points(frame.to_crs(base.districts.crs), base.districts, "district_code")
            frame["district_code"] = located.where(located.notna(), frame["district_code"])
        layers[name] = frame
    data_date = dt.date.fromisoformat(meta.get("data_date", dt.date.today().isoformat()))
    flags = [f for f in json.loads(meta.get("synthetic_layers", "[]"))
             if f in ("register", "cooperators", "services")]
    year = fiscal_year if fiscal_year is not None else default_fiscal_year()
    imported = {layer: meta[f"{layer}_as_of"] for layer in ("register", "cooperators", "services")
                if meta.get(f"{layer}_as_of")}
    kept = {key: meta[key] for key in meta if key.startswith("import_")}
    return _finish(store, base, layers[Layer.REGISTER], layers[Layer.COOPERATORS],
                   layers[Layer.SERVICES], steps, data_date=data_date, synthetic_layers=flags,
                   fiscal_year=year, census_year=inputs.census, census_file=inputs.boundaries.name,
                   age_table=inputs.age_table.name if inputs.age_table else None, imported=imported,
                   kept_meta=kept)


def default_fiscal_year(today: dt.date | None = None) -> int:
    """The fiscal year a build is for unless told: ``KARTE_FISCAL_YEAR``, else the current fiscal
    year (April to March)."""
    configured = get_settings().fiscal_year
    return int(configured) if configured else history.current_fiscal_year(today)


def fiscal_year_of(day: dt.date) -> int:
    """The fiscal year (年度) ``day`` falls in."""
    return fiscal_year(day)


def _finish(store, base: Base, register, cooperators, services, steps: Steps, *,
            data_date: dt.date, synthetic_layers: list[str], fiscal_year: int, census_year: int,
            census_file: str | None = None, age_table: str | None = None,
            imported: dict[str, str] | None = None, kept_meta: dict[str, str] | None = None,
            demo_years: Callable[[pd.DataFrame], tuple[pd.DataFrame, dict[str, pd.DataFrame]]] | None = None,
            keep_history: bool = True) -> BuildResult:
    if not 1989 <= int(fiscal_year) <= 2100:
        raise InputError(f"年度 {fiscal_year} は範囲外です（1989〜2100年度）")
    synthetic_flags = list(synthetic_layers)
    if base.synthetic_age:
        synthetic_flags = ["age_bands", *synthetic_flags]
    synthetic_flags = [*synthetic_flags, "elderly_alone", "disabled"]
    meta = {
        "data_date": data_date.isoformat(),
        "fiscal_year": int(fiscal_year),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "synthetic": synthetic_flags,
        "districts_standin": bool(base.districts["district_name"].str.startswith("（仮）").any()),
        "by_polygon": base.by_polygon,
    }
    # every figure's source and reference date (karte.history.sources_block reads them back)
    dated = history.source_meta(census_year=census_year, census_file=census_file, age_table=age_table,
                                synthetic_layers=synthetic_layers, data_date=data_date,
                                fiscal_year=fiscal_year, imported=imported)
    meta_text = {**(kept_meta or {}), **dated, "districts_standin": json.dumps(meta["districts_standin"]),
                 "synthetic": json.dumps(synthetic_flags), "data_date": meta["data_date"],
                 "built_at": meta["built_at"]}
    meta["sources"] = history.sources_block(meta_text)
    with steps("place_rows"):
        register = municipalities.stamp(register, base.small_areas, districts=base.districts)
        cooperators = municipalities.stamp(cooperators, base.small_areas, districts=base.districts)
        services = municipalities.stamp(services, base.small_areas, districts=base.districts)
    with steps("base_stats"):
        counts = district_counts(base.small_areas, districts=base.districts,
                                 by_polygon=base.by_polygon)
        stats, city = base_stats(counts, register)
    with steps("assemble"):
        kartes = assemble_kartes(districts=base.districts, stats=stats, city=city,
                                 register=register, cooperators=cooperators, services=services,
                                 shelters=base.shelters, emergency_sites=base.emergency_sites,
                                 meta=meta, municipality_names=municipalities.names(base.small_areas))
        reconcile.store_sources(store, base.small_areas).attach(kartes)
    layers_of_years: dict[str, pd.DataFrame] = {}
    with steps("history"):
        if keep_history:
            rows = history.history_rows(kartes, fiscal_year=fiscal_year, meta=meta_text,
                                        salons=history.salons_by_district(services),
                                        supporters=history.supporters_by_district(register, cooperators),
                                        sources=meta["sources"], recorded_at=meta["built_at"])
            if demo_years is not None:
                earlier, extra = demo_years(rows)
                rows = pd.concat([earlier, rows], ignore_index=True)
                layers_of_years.update(extra)
            before = store.read(HistoryLayer.HISTORY) if HistoryLayer.HISTORY in store.layers() else None
            layers_of_years[str(HistoryLayer.HISTORY)] = history.merge_history(before, rows)
    with steps("write_store"):
        store.write({
            Layer.SMALL_AREAS: base.small_areas,
            Layer.DISTRICTS: base.districts,
            Layer.DISTRICT_MAP: pd.DataFrame(base.district_map),
            Layer.SHELTERS: base.shelters,
            Layer.EMERGENCY_SITES: base.emergency_sites,
            Layer.REGISTER: register,
            Layer.COOPERATORS: cooperators,
            Layer.SERVICES: services,
            Layer.KARTES: kartes_frame(kartes),
            Layer.META: _meta_frame({
                **meta_text, "fiscal_year": str(meta["fiscal_year"]),
                "synthetic_layers": json.dumps(synthetic_layers), "by_polygon": json.dumps(base.by_polygon),
            }),
            **layers_of_years,
        })
    with steps("coverage"):
        keep_products(store)
    return BuildResult(store, kartes, stats, city, base, steps.timings, fiscal_year=int(fiscal_year))


def keep_products(store: Store) -> None:
    """Work out once and keep in the store what every process would otherwise derive first from
    the store's current build (:mod:`karte.snapshot`): the salon coverage, the gap counts per
    district (no persons) and the suppression plan at the configured threshold. The last step of
    a build, and again after anything that writes the build's layers after it (``karte demo``
    records the analysis by year), since the products are kept per build stamp."""
    snap = snapshot.current(store)
    snap.coverage()
    snap.gaps_at_hand()
    suppression.plan(snap, get_settings().suppress_max)


#: The ``meta`` keys every build writes first (what older readers expect), then the rest sorted.
_META_ORDER = ("data_date", "fiscal_year", "built_at", "synthetic", "synthetic_layers", "by_polygon")


def _meta_frame(meta: dict[str, str]) -> pd.DataFrame:
    keys = [k for k in _META_ORDER if k in meta] + sorted(k for k in meta if k not in _META_ORDER)
    return pd.DataFrame({"key": keys, "value": [str(meta[k]) for k in keys]})


def write_outputs(result: BuildResult, out: Path, *, basemap: str = "gsi_pale") -> dict[str, Path]:
    """Write the demo's file outputs beside the store: overview map and karte JSON files."""
    out.mkdir(parents=True, exist_ok=True)
    services = result.store.read(Layer.SERVICES)
    overview = write_overview(out / "overview.html", districts=result.base.districts,
                              stats=result.stats, services=services,
                              shelters=result.base.shelters, basemap=basemap,
                              synthetic=result.base.synthetic_age)
    folder = out / "kartes"
    folder.mkdir(exist_ok=True)
    for code, karte in result.kartes.items():
        (folder / f"{code}.json").write_text(json.dumps(karte, ensure_ascii=False, indent=1),
                                             encoding="utf-8")
    return {"overview": overview, "kartes": folder}


def read_karte(store: Store, code: str) -> dict:
    table = store.read(Layer.KARTES)
    hit = table[table["district_code"] == code]
    if hit.empty:
        known = ", ".join(sorted(table["district_code"])[:5])
        raise NotFoundError(f"地区 {code} はありません (例: {known} …)")
    return json.loads(hit.iloc[0]["karte_json"])
