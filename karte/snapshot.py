"""The build snapshot: what one build of the store holds and everything derived from it, once.

A :class:`Snapshot` is read from the store when its stamp (:meth:`karte.store.base.Store.stamp`)
is new: the kartes, the public layers, and the city-wide analyses (evacuation-support gaps, supporter
load, salon coverage) with the district measures built on them. Web routes, views, sheets and the
command line all take it from :func:`current`; nothing else in karte caches build data, and a
write to any snapshot layer, by any process, changes the stamp and so retires the snapshot
everywhere on the next request.

Personal rows: the analyses need the whole register and roster, so the snapshot reads them as
the store's trusted user and keeps them in memory (never on disk). They never leave it as rows:
a service that shows persons reads them from the store as the viewer (the store filters and
logs) and joins what the snapshot derived for them (:meth:`Snapshot.person_flags`), so what a
user sees is decided by the store's access rules, not by this cache.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs
from gis.overlay import locate_points
from gis.params import AnalysisParams
from karte.analysis import (
    Coverage,
    analyse_coverage,
    catchment_radius,
    city_coverage,
    counting_salons,
    current_params,
    district_groups,
    evacuation_gaps,
)
from karte.domain.errors import StoreError
from karte.domain.gaps import ANALYSED
from karte.domain.layers import Layer
from karte.domain.schema import is_standin
from karte.store.base import Store

#: Census count columns of the small areas served on the web.
SMALL_AREA_COUNTS = ("population", "households", "age_0_14", "age_15_64", "age_65_74", "age_75_plus",
                     "elderly_alone", "disabled")
#: The public layers a snapshot derives (``Snapshot.layer``), in map order (bottom to top).
PUBLIC_LAYERS = ("districts", "small_areas", "coverage", "catchments", "shelters", "emergency_sites",
                 "services")

CoverageMapper = Callable[[Callable[[list[str]], dict[str, Coverage]], list[list[str]]],
                          Iterable[dict[str, Coverage]]]


@dataclass
class Snapshot:
    """One build of a store, read once, with the analyses run on it (see the module docstring).

    The frames are EPSG:6678 and must not be changed by callers (they are shared by every
    request of this process).
    """

    stamp: str
    location: str
    params: AnalysisParams
    meta: dict[str, str]
    kartes: dict[str, dict]
    districts: gpd.GeoDataFrame
    small_areas: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    shelters: gpd.GeoDataFrame
    emergency_sites: gpd.GeoDataFrame
    #: counting salons (held at least ``params.min_salon_per_month``)
    salons: gpd.GeoDataFrame
    #: evacuation-support gap counts and rates per district, plus a ``"city"`` row (no persons)
    district_gaps: pd.DataFrame
    #: per cooperator_id: ``load`` (persons assigned), ``capacity``, ``spare``, ``overloaded``
    supporter_load: pd.DataFrame
    #: what the analyses derived per person, indexed by person_id (personal: join, never list)
    _person_flags: pd.DataFrame
    #: the register and roster as the trusted pipeline read them: for the analyses only
    _register: gpd.GeoDataFrame = field(repr=False)
    _cooperators: gpd.GeoDataFrame = field(repr=False)
    _coverage: tuple[dict[str, Coverage], dict] | None = field(default=None, repr=False)
    _layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)
    _memo: dict[tuple, object] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- reading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, store: Store, *, stamp: str, params: AnalysisParams | None = None) -> Snapshot:
        """Read the store's build (as its trusted user) and run the gap analysis."""
        params = params or AnalysisParams()
        table = store.read(Layer.KARTES)
        kartes = {code: json.loads(raw) for code, raw in zip(table["district_code"], table["karte_json"],
                                                              strict=True)}
        districts = store.read(Layer.DISTRICTS)
        services = store.read(Layer.SERVICES)
        shelters = store.read(Layer.SHELTERS)
        sites = store.read(Layer.EMERGENCY_SITES)
        register = store.read(Layer.REGISTER)
        cooperators = store.read(Layer.COOPERATORS)
        person_gaps, district_gaps, load = evacuation_gaps(register, cooperators, shelters, sites,
                                                           districts, params=params)
        return cls(
            stamp=stamp, location=store.location, params=params, meta=store.meta(), kartes=kartes,
            districts=districts, small_areas=store.read(Layer.SMALL_AREAS), services=services,
            shelters=shelters, emergency_sites=sites, salons=counting_salons(services, params),
            district_gaps=district_gaps, supporter_load=load, _person_flags=_person_flags(person_gaps),
            _register=register, _cooperators=cooperators)

    @property
    def codes(self) -> list[str]:
        """Every district code, sorted."""
        return sorted(self.kartes)

    def karte(self, code: str) -> dict:
        """A fresh copy of district ``code``'s stored karte (callers may change it)."""
        return json.loads(json.dumps(self.kartes[code], ensure_ascii=False))

    def district_name(self, code: str) -> str:
        return self.kartes[code]["district"]["name"]

    # -- analyses ------------------------------------------------------------------------------

    def coverage(self, mapper: CoverageMapper | None = None) -> tuple[dict[str, Coverage], dict]:
        """(salon coverage of every district, the city's shares), computed once.

        ``mapper(function, groups)`` runs ``function`` over the district groups, in any order
        (a process pool's ``imap_unordered``: the sheet batch spreads the analysis over its
        workers); default: here, one group after the other.
        """
        with self._lock:
            if self._coverage is None:
                groups = district_groups(self.districts, self.codes)
                analyse = self.coverage_of
                parts = mapper(analyse, groups) if mapper is not None else map(analyse, groups)
                results: dict[str, Coverage] = {}
                for part in parts:
                    results.update(part)
                self._coverage = (results, city_coverage(list(results.values())))
            return self._coverage

    def coverage_of(self, codes: list[str]) -> dict[str, Coverage]:
        """Salon coverage of the districts ``codes`` (one group of :func:`district_groups`)."""
        return analyse_coverage(self.small_areas, self.services, codes, params=self.params)

    def person_flags(self, person_ids: Iterable) -> pd.DataFrame:
        """What the analyses found for these persons, one row each in the order given (NaN for an
        unknown id): one boolean per gap kind, ``gaps``, ``at_risk``, ``gap_kinds`` (the kinds
        joined by ``;``), ``needs_care``, ``supporter_m`` and ``shelter_m`` (walking metres,
        whole). Call it with the ids of rows the viewer was given by the store."""
        return self._person_flags.reindex(pd.Index([str(p) for p in person_ids]))

    def person_flag(self, person_id) -> dict:
        """:meth:`person_flags` of one person as a dict (empty for an unknown id)."""
        with self._lock:
            if "_flag_records" not in self._memo:
                table = self._person_flags
                columns = {c: table[c].tolist() for c in table.columns}
                self._memo["_flag_records"] = {
                    pid: {c: columns[c][i] for c in columns} for i, pid in enumerate(table.index)}
            return self._memo["_flag_records"].get(str(person_id), {})

    def assigned(self, cooperator_id) -> int:
        """How many support-needers the register assigns to this cooperator (0 if none)."""
        with self._lock:
            if "_assigned" not in self._memo:
                table = self.supporter_load
                self._memo["_assigned"] = (dict(zip(table.index.astype(str), table["load"].tolist(),
                                                    strict=True)) if len(table) else {})
            return int(self._memo["_assigned"].get(str(cooperator_id), 0))

    def analysis_inputs(self) -> dict[str, gpd.GeoDataFrame]:
        """The whole register and roster, as the analyses read them (outreach suggestions run on
        every person; what is shown of them is filtered by the viewer's own read)."""
        return {"register": self._register, "cooperators": self._cooperators}

    def memo(self, key: tuple, compute: Callable[[], object]):
        """``compute()`` once for this snapshot and ``key``: derived public data only (a page's
        map, a layer in another CRS). Never personal rows."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = compute()
        with self._lock:
            return self._memo.setdefault(key, value)

    # -- the public layers with the district measures -------------------------------------------

    def layer(self, name: str) -> gpd.GeoDataFrame:
        """A public layer as the web serves it, before suppression (:data:`PUBLIC_LAYERS`).

        Every layer has ``district_code`` (``None`` for a point outside every district), the key
        column first, geometry last (EPSG:6678). Added columns: ``districts``: ``standin`` and
        the measures (``population``, ``elderly``, ``elderly_rate``, ``support_needers``,
        ``at_risk``, ``gap_rate``, ``salons``, ``uncovered_elderly``, ``uncovered_share``);
        ``small_areas``: ``elderly``, ``elderly_rate``; ``coverage``: one row per district with
        uncovered elderly (``cells``, ``elderly``, ``uncovered_elderly``, ``uncovered_75_plus``,
        their shares); ``catchments``: circles of the counting salons (``radius_m``).
        """
        if name not in PUBLIC_LAYERS:
            raise KeyError(name)
        with self._lock:
            if name not in self._layers:
                self._layers[name] = getattr(self, f"_make_{name}")()
            return self._layers[name]

    def _make_districts(self) -> gpd.GeoDataFrame:
        d = self.districts
        coverages, _ = self.coverage()
        gaps = self.district_gaps
        small = self.small_areas
        elderly = (pd.to_numeric(small["age_65_74"], errors="coerce")
                   + pd.to_numeric(small["age_75_plus"], errors="coerce"))
        by_district = pd.DataFrame({"district_code": small["district_code"], "elderly": elderly,
                                    "population": pd.to_numeric(small["population"], errors="coerce")}
                                   ).groupby("district_code").sum(min_count=1)
        salons = self.salons["district_code"].value_counts()
        rows = []
        for r in d.itertuples():
            code = r.district_code
            cov = coverages.get(code)
            pop = by_district["population"].get(code)
            eld = by_district["elderly"].get(code)
            persons = int(gaps.loc[code, "persons"]) if code in gaps.index else 0
            at_risk = int(gaps.loc[code, "at_risk"]) if code in gaps.index else 0
            rows.append({
                "district_code": code, "district_name": r.district_name,
                "standin": is_standin(r.district_name),
                "small_areas": None if _missing(r.small_areas) else int(r.small_areas),
                "area_km2": round(r.geometry.area / 1e6, 2),
                "population": _int(pop), "elderly": _int(eld), "elderly_rate": ratio(eld, pop),
                "support_needers": persons, "at_risk": at_risk, "gap_rate": ratio(at_risk, persons),
                "salons": int(salons.get(code, 0)),
                "uncovered_elderly": round(cov.uncovered_elderly) if cov else None,
                "uncovered_share": ratio(cov.uncovered_elderly, cov.elderly) if cov else None,
            })
        return gpd.GeoDataFrame(rows, geometry=list(d.geometry), crs=d.crs)

    def _make_small_areas(self) -> gpd.GeoDataFrame:
        s = self.small_areas
        keep = ["key_code", "name", "district_code", *SMALL_AREA_COUNTS, "concealed"]
        out = s[[c for c in keep if c in s.columns]].copy()
        pop = pd.to_numeric(s["population"], errors="coerce")
        eld = (pd.to_numeric(s["age_65_74"], errors="coerce")
               + pd.to_numeric(s["age_75_plus"], errors="coerce"))
        out["elderly_rate"] = [ratio(e, p) for e, p in zip(eld, pop, strict=True)]
        out["elderly"] = eld.round().astype("Int64")
        return gpd.GeoDataFrame(out, geometry=s.geometry.values, crs=s.crs)

    def _make_shelters(self) -> gpd.GeoDataFrame:
        return self._located(self.shelters, "shelter_id")

    def _make_emergency_sites(self) -> gpd.GeoDataFrame:
        return self._located(self.emergency_sites, "site_id")

    def _make_services(self) -> gpd.GeoDataFrame:
        return geometry_last(self.services.copy())

    def _make_catchments(self) -> gpd.GeoDataFrame:
        salons = self.salons
        radius = catchment_radius(self.params)
        salons = salons[salons.geometry.notna() & ~salons.geometry.is_empty]
        frame = pd.DataFrame({"service_id": salons["service_id"].to_numpy(),
                              "name": salons["name"].to_numpy(), "venue": salons["venue"].to_numpy(),
                              "frequency": salons["frequency"].to_numpy(),
                              "district_code": salons["district_code"].to_numpy(),
                              "radius_m": round(radius, 1)})
        return gpd.GeoDataFrame(frame, geometry=salons.geometry.buffer(radius, 32).to_numpy(),
                                crs=salons.crs)

    def _make_coverage(self) -> gpd.GeoDataFrame:
        coverages, _ = self.coverage()
        columns = ("district_code", "cells", "elderly", "uncovered_elderly", "uncovered_75_plus",
                   "uncovered_elderly_share", "uncovered_75_plus_share")
        rows, geoms = [], []
        for code in sorted(coverages):
            cov = coverages[code]
            if cov.area is None or shapely.is_empty(cov.area):
                continue
            rows.append({"district_code": code, "cells": cov.cells, "elderly": round(cov.elderly),
                         "uncovered_elderly": round(cov.uncovered_elderly),
                         "uncovered_75_plus": round(cov.uncovered_75_plus),
                         "uncovered_elderly_share": ratio(cov.uncovered_elderly, cov.elderly),
                         "uncovered_75_plus_share": ratio(cov.uncovered_75_plus, cov.age_75_plus)})
            geoms.append(cov.area)
        if not rows:
            return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=crs.METRIC),
                                    crs=crs.METRIC)
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs.METRIC)

    def _located(self, points: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
        out = points.copy()
        out["district_code"] = locate_points(points, self.districts, "district_code").to_numpy()
        cols = [key] + [c for c in out.columns if c not in (key, out.geometry.name)]
        return geometry_last(out[[*cols, out.geometry.name]])


def _person_flags(gaps: pd.DataFrame) -> pd.DataFrame:
    kinds = [k for k in ANALYSED if k in gaps.columns]
    table = pd.DataFrame(gaps[["needs_care", "supporter_m", "shelter_m", *kinds, "gaps", "at_risk"]])
    table[["supporter_m", "shelter_m"]] = table[["supporter_m", "shelter_m"]].round(0)
    table["gap_kinds"] = [";".join(k for k, on in zip(kinds, row, strict=True) if on)
                          for row in gaps[kinds].to_numpy(dtype=bool)]
    table.index = pd.Index(gaps["person_id"].astype(str).to_numpy(), name="person_id")
    return table


# --- the one cache ---------------------------------------------------------------------------------

_CACHE: dict[str, Snapshot] = {}
_LOADING: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def current(store: Store) -> Snapshot:
    """The snapshot of the store's current build: kept while :meth:`Store.stamp` and the
    analysis parameters in force (:func:`karte.analysis.current_params`) are unchanged, read
    again (once, whatever the number of threads asking) when either changes.

    Raises :class:`~karte.domain.errors.StoreError` for an empty store.
    """
    stamp = store.stamp()
    params = current_params()
    snap = _CACHE.get(store.location)
    if snap is not None and snap.stamp == stamp and snap.params == params:
        return snap
    if not stamp:
        raise StoreError("ストアが空です。karte demo か karte build を先に実行してください")
    with _GUARD:
        lock = _LOADING.setdefault(store.location, threading.Lock())
    with lock:
        snap = _CACHE.get(store.location)
        if snap is not None and snap.stamp == stamp and snap.params == params:
            return snap
        for _ in range(3):  # a write between the stamp and the reads: read again
            snap = Snapshot.load(store, stamp=stamp, params=params)
            after = store.stamp()
            if after == stamp:
                break
            stamp = after
        _CACHE[store.location] = snap
        return snap


def clear() -> None:
    """Forget every snapshot (tests and benchmarks that time a cold start)."""
    with _GUARD:
        _CACHE.clear()


# --- small helpers shared by the services ----------------------------------------------------------

def geometry_last(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    g = frame.geometry.name
    return frame[[c for c in frame.columns if c != g] + [g]]


def ratio(a, b):
    """``a / b`` rounded to 4 places; None when either is missing or ``b`` is 0."""
    if _missing(a) or _missing(b) or not b:
        return None
    return round(float(a) / float(b), 4)


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float | np.floating) and np.isnan(v))


def _int(v):
    return None if _missing(v) else round(float(v))
