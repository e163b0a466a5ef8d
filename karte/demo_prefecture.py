"""The prefecture demo: all 40 municipalities of Aomori prefecture in one store (issue 18, item 2).

``karte demo --scope prefecture`` builds it; ``bench/scale.py`` copies the same synthetic
prefecture into a synthetic nation. What is real and what is not:

* **real**: the prefecture's 4,385 small areas and their census counts (2015,
  ``data/boundaries/aomori_pref_02_small_areas_2015_estat_lod.geojson``); Aomori city's designated
  shelters and emergency sites (GSI);
* **stand-in** (shipped, reproducible: ``data/districts/aomori_pref_standin_districts.csv``): the
  districts of every municipality, codes unique within a municipality, names starting ``（仮）``;
* **synthetic**: the age bands, the register, cooperators and services of every municipality
  (sized by its population, as the city demo), and the shelters and emergency sites of the 39
  municipalities other than Aomori city (named ``（合成）…``, note ``synthetic``).

Every row carries its ``municipality_code``. District codes repeat across municipalities (``S01``
in each), so everything keyed by district (base statistics, kartes) is computed one municipality
at a time and the results stacked; the layers go to the store in one atomic ``Store.write``.

:func:`prefecture_layers` and :func:`prefecture_kartes` do no I/O but reading the shipped files;
:func:`build_prefecture` writes the store.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.districts import dissolve_districts
from karte import agebands, history, municipalities, sources, synthetic
from karte.assemble import assemble_kartes, kartes_frame
from karte.assemble import fiscal_year as fiscal_year_of
from karte.basestats import base_stats, district_counts
from karte.census import reconcile
from karte.domain.layers import MUNICIPALITY, Layer
from karte.settings import REPO_DATA
from karte.store.base import Store

PREFECTURE_AREAS = REPO_DATA / "boundaries" / "aomori_pref_02_small_areas_2015_estat_lod.geojson"
PREFECTURE_DISTRICTS = REPO_DATA / "districts" / "aomori_pref_standin_districts.csv"
SHELTERS = REPO_DATA / "shelters" / "aomori_022012_designated_shelters_gsi.geojson"
SITES = REPO_DATA / "shelters" / "aomori_022012_emergency_evacuation_sites_gsi.geojson"
#: The municipality whose shelters and sites are real (the others get synthetic ones).
REAL_SHELTERS = "02201"
#: The layers :func:`prefecture_layers` returns.
LAYERS = ("small_areas", "districts", "register", "cooperators", "services", "shelters",
          "emergency_sites")
#: Layers of the prefecture demo that are synthetic (the store's ``synthetic_layers``); the
#: shelters and sites are synthetic outside :data:`REAL_SHELTERS` only (``synthetic_facilities``).
SYNTHETIC_LAYERS = ("register", "cooperators", "services")


def prefecture_layers(*, seed: int = 2026, codes: list[str] | None = None,
                      data_date: dt.date = synthetic.DEMO_DATA_DATE,
                      boundaries: Path = PREFECTURE_AREAS, district_map: Path = PREFECTURE_DISTRICTS,
                      shelters: Path = SHELTERS, sites: Path = SITES) -> dict[str, gpd.GeoDataFrame]:
    """The prefecture's (or ``codes``') layers as the build writes them: real small areas with
    synthetic age bands and the stand-in districts, synthetic register, cooperators, services;
    real shelters and sites of Aomori city, synthetic ones elsewhere. Ids carry the
    municipality code (``P02204000001``), so they are unique across municipalities too."""
    small = sources.read_small_areas(boundaries)
    if codes is not None:
        small = small[small[MUNICIPALITY].isin(codes)].reset_index(drop=True)
    bands = agebands.synthetic_age_bands(small, seed=seed)
    for col in bands.columns:
        small[col] = bands[col]
    small["synthetic_age"] = True
    mapping = pd.read_csv(district_map, dtype=str, keep_default_na=False)
    real_shelters = sources.read_shelters(shelters)
    real_sites = sources.read_emergency_sites(sites)
    real_shelters.insert(1, MUNICIPALITY, REAL_SHELTERS)
    real_sites.insert(1, MUNICIPALITY, REAL_SHELTERS)
    out: dict[str, list] = {name: [] for name in LAYERS}
    rng = np.random.default_rng(seed)
    for i, (code, areas) in enumerate(small.groupby(MUNICIPALITY, sort=True)):
        own = mapping[mapping[MUNICIPALITY] == code]
        areas = areas.merge(own[["key_code", "district_code"]], on="key_code", how="left")
        areas = gpd.GeoDataFrame(areas, geometry="geometry", crs=small.crs)
        districts = dissolve_districts(areas, own[["key_code", "district_code", "district_name"]])
        districts.insert(1, MUNICIPALITY, code)
        if code == REAL_SHELTERS:
            m_shelters, m_sites = real_shelters, real_sites
        else:
            m_shelters, m_sites = synthetic_shelters(areas, code, rng)
        demo = synthetic.generate(areas, districts, m_shelters, m_sites, seed=seed + i, data_date=data_date)
        register, cooperators, services = demo.register, demo.cooperators, demo.services
        register["person_id"] = "P" + code + register["person_id"].str[1:]
        register["supporter_ids"] = register["supporter_ids"].str.replace(r"(^|;)C", rf"\1C{code}",
                                                                          regex=True)
        cooperators["cooperator_id"] = "C" + code + cooperators["cooperator_id"].str[1:]
        services["service_id"] = "V" + code + services["service_id"].str[1:]
        for frame in (register, cooperators, services):
            if MUNICIPALITY in frame.columns:
                frame[MUNICIPALITY] = code
            else:
                frame.insert(1, MUNICIPALITY, code)
        for name, frame in (("small_areas", areas), ("districts", districts), ("register", register),
                            ("cooperators", cooperators), ("services", services),
                            ("shelters", m_shelters), ("emergency_sites", m_sites)):
            out[name].append(frame)
    return {name: stack(frames, small.crs) for name, frames in out.items()}


def synthetic_shelters(areas: gpd.GeoDataFrame, code: str, rng: np.random.Generator):
    """Synthetic shelters (one per 4 small areas, a fifth of them welfare shelters) and emergency
    sites (one per 2 small areas, every hazard flag drawn) at the small areas' inner points,
    named ``（合成）…`` with the note ``synthetic``."""
    points = areas.geometry.representative_point().to_numpy()
    n = len(points)
    pick = np.sort(rng.choice(n, size=max(1, n // 4), replace=False))
    shelters = gpd.GeoDataFrame({
        "shelter_id": [f"SH{code}{k:04d}" for k in range(1, len(pick) + 1)], MUNICIPALITY: code,
        "name": [f"（合成）避難所{k}" for k in range(1, len(pick) + 1)], "address": "",
        "welfare": rng.random(len(pick)) < 0.2, "accepts": "", "note": "synthetic"},
        geometry=points[pick], crs=areas.crs)
    pick = np.sort(rng.choice(n, size=max(1, n // 2), replace=False))
    sites = gpd.GeoDataFrame({
        "site_id": [f"ES{code}{k:04d}" for k in range(1, len(pick) + 1)], MUNICIPALITY: code,
        "name": [f"（合成）避難場所{k}" for k in range(1, len(pick) + 1)], "address": ""},
        geometry=points[pick], crs=areas.crs)
    for hazard in ("flood", "landslide", "storm_surge", "earthquake", "tsunami", "fire", "inland_flood",
                   "volcano"):
        sites[f"hazard_{hazard}"] = rng.random(len(pick)) < 0.7
    sites["note"] = "synthetic"
    return shelters, sites


def stack(frames: list[gpd.GeoDataFrame], crs) -> gpd.GeoDataFrame:
    """The frames one under the other, as one GeoDataFrame in ``crs``."""
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs)


def district_map(layers: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    """The ``district_map`` layer: key code, municipality, district code and name."""
    names = layers["districts"][[MUNICIPALITY, "district_code", "district_name"]]
    small = pd.DataFrame(layers["small_areas"][["key_code", MUNICIPALITY, "district_code"]])
    return small.merge(names, on=[MUNICIPALITY, "district_code"], how="left")[
        ["key_code", MUNICIPALITY, "district_code", "district_name"]]


def prefecture_kartes(layers: dict[str, gpd.GeoDataFrame], meta: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``kartes`` layer and the base statistics (one row per municipality and district),
    computed one municipality at a time (district codes repeat across municipalities)."""
    names = municipalities.names(layers["small_areas"])
    frames, stats_all = [], []
    for code, districts in layers["districts"].groupby(MUNICIPALITY, sort=True):
        own = {name: frame[frame[MUNICIPALITY] == code] for name, frame in layers.items()
               if name != "districts"}
        # a district with no register row: karte.assemble.register_summary sums an empty mapped
        # text column, which pandas 3 types as text (the sum is ''): hand it object columns
        register = own["register"].astype({c: object for c in ("consent", "supporter_ids")})
        counts = district_counts(own["small_areas"], districts=districts)
        stats, city = base_stats(counts, register)
        kartes = assemble_kartes(districts=districts, stats=stats, city=city, register=register,
                                 cooperators=own["cooperators"], services=own["services"],
                                 shelters=own["shelters"], emergency_sites=own["emergency_sites"],
                                 meta=meta, municipality_names=names)
        reconcile.frames_sources(own["small_areas"]).attach(kartes)
        frames.append(kartes_frame(kartes))
        stats_all.append(stats.reset_index().assign(**{MUNICIPALITY: code}))
    return pd.concat(frames, ignore_index=True), pd.concat(stats_all, ignore_index=True)


@dataclass
class PrefectureResult:
    """What :func:`build_prefecture` wrote: the counts it reports, and each step's seconds."""

    municipalities: int
    districts: int
    small_areas: int
    register: int
    population: int
    timings: dict[str, float] = field(default_factory=dict)


def build_prefecture(store: Store, *, seed: int, data_date: dt.date | None = None,
                     fiscal_year: int | None = None, codes: list[str] | None = None,
                     report: Callable[[str], None] | None = None) -> PrefectureResult:
    """Build the prefecture demo (or only the municipalities ``codes``) into ``store`` (every
    layer replaced in one write).

    The demo's history years, plans and supporter ledger (``karte demo --scope city``) are not
    made for the prefecture: the kartes of the fiscal year only.
    """
    timings: dict[str, float] = {}

    def step(name: str, fn):
        if report:
            report(name)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        return out

    data_date = data_date or synthetic.DEMO_DATA_DATE
    year = fiscal_year if fiscal_year is not None else fiscal_year_of(data_date)
    layers = step("synthetic_data", lambda: prefecture_layers(seed=seed, codes=codes, data_date=data_date))
    meta_text, meta = _meta(data_date, year)
    kartes, stats = step("assemble", lambda: prefecture_kartes(layers, meta))
    step("write_store", lambda: store.write({
        Layer.SMALL_AREAS: layers["small_areas"],
        Layer.DISTRICTS: layers["districts"],
        Layer.DISTRICT_MAP: district_map(layers),
        Layer.SHELTERS: layers["shelters"],
        Layer.EMERGENCY_SITES: layers["emergency_sites"],
        Layer.REGISTER: layers["register"],
        Layer.COOPERATORS: layers["cooperators"],
        Layer.SERVICES: layers["services"],
        Layer.KARTES: kartes,
        Layer.META: meta_frame(meta_text),
    }))
    return PrefectureResult(
        municipalities=int(layers["small_areas"][MUNICIPALITY].nunique()), districts=len(kartes),
        small_areas=len(layers["small_areas"]), register=len(layers["register"]),
        population=int(stats["population"].sum()), timings=timings)


def _meta(data_date: dt.date, year: int) -> tuple[dict[str, str], dict]:
    """The ``meta`` layer's text and the karte's meta block (as ``karte.build`` makes them)."""
    flags = ["age_bands", *SYNTHETIC_LAYERS, "elderly_alone", "disabled"]
    built_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    dated = history.source_meta(census_year=history.SHIPPED_CENSUS_YEAR, census_file=PREFECTURE_AREAS.name,
                                age_table=None, synthetic_layers=list(SYNTHETIC_LAYERS),
                                data_date=data_date, fiscal_year=year)
    text = {**dated, "data_date": data_date.isoformat(), "fiscal_year": str(year), "built_at": built_at,
            "synthetic": json.dumps(flags), "synthetic_layers": json.dumps(list(SYNTHETIC_LAYERS)),
            "by_polygon": "false", "districts_standin": "true", "scope": "prefecture",
            # shelters and emergency sites: real in Aomori city only, synthetic elsewhere
            "synthetic_facilities": json.dumps({"real_in": [REAL_SHELTERS], "elsewhere": "synthetic"})}
    meta = {"data_date": text["data_date"], "fiscal_year": year, "built_at": built_at, "synthetic": flags,
            "districts_standin": True, "by_polygon": False, "sources": history.sources_block(text)}
    return text, meta


def meta_frame(meta: dict[str, str]) -> pd.DataFrame:
    """The ``meta`` layer (key, value), keys sorted."""
    keys = sorted(meta)
    return pd.DataFrame({"key": keys, "value": [str(meta[k]) for k in keys]})


__all__ = ["LAYERS", "PREFECTURE_AREAS", "PREFECTURE_DISTRICTS", "REAL_SHELTERS", "PrefectureResult",
           "build_prefecture", "district_map", "meta_frame", "prefecture_kartes", "prefecture_layers",
           "stack", "synthetic_shelters"]
