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

**The plan status is derived from the plans** (``evacuation_plans``, :mod:`karte.domain.drills`):
a person with an individual evacuation plan in karte has that plan's status (作成済 / 作成中), a
person without one the ``plan_status`` the city imported with its register. The snapshot applies
it once, before the analyses (so the 個別避難計画が未作成・作成中 gap follows the plans), to the
kartes' counts by plan status, and to every register row a service shows
(:meth:`Snapshot.plan_status_of`, joined by :mod:`karte.services.personal`). The plans and the
disaster modes (``disaster_modes``) are snapshot layers: writing one changes the stamp. A new
snapshot keeps the previous one's salon coverage when the small areas, services and districts
are unchanged (a plan saved does not cost a coverage analysis).

**The salon coverage is kept in the store** (:data:`COVERAGE_LAYER`, aggregate figures and the
uncovered areas, no persons): the first snapshot that computes it (the build does, right after
writing its layers) writes it there, keyed by a digest of what it depends on (the small areas,
services and districts as read, the district codes, the analysis parameters, the municipality of
the view, :data:`COVERAGE_VERSION`), and a snapshot of another process reads it instead of
analysing again (:class:`Kept`). Any change of those inputs, or of the season's
parameters, gives another key, so a kept coverage is used for exactly the inputs it was computed
from; writing it changes no stamp (the layer is no snapshot layer). Other products derived once
per build (a suppression plan) are kept the same way, keyed by the stamp (:meth:`Snapshot.kept`,
:data:`PRODUCTS_LAYER`).

**The gap analysis runs when first needed** (:meth:`Snapshot._analysed`), on the frames the
snapshot read at its stamp: person flags and supporter load need it, the district counts
(:attr:`Snapshot.district_gaps`, the city's row included) are a kept product of the build
(:data:`DISTRICT_GAPS_PRODUCT`: counts and rates per district, no persons, as the kartes layer
holds its counts), so a cold process that prints one public sheet or page analyses nobody. The
person-level results stay in the process's memory only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
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
from karte.domain.drills import MODES, PLANS, first_plans
from karte.domain.errors import KarteError, StoreError
from karte.domain.gaps import ANALYSED
from karte.domain.layers import MUNICIPALITY, Layer
from karte.domain.schema import PLAN_STATUS_JA, PlanStatus, is_standin
from karte.store.base import Store
from karte.store.scoped import unscoped

#: Census count columns of the small areas served on the web.
SMALL_AREA_COUNTS = ("population", "households", "age_0_14", "age_15_64", "age_65_74", "age_75_plus",
                     "elderly_alone", "disabled")
#: The public layers a snapshot derives (``Snapshot.layer``), in map order (bottom to top).
PUBLIC_LAYERS = ("districts", "small_areas", "coverage", "catchments", "shelters", "emergency_sites",
                 "services")

#: The store layer that keeps the salon coverage of each build (:class:`Kept`).
COVERAGE_LAYER = "coverage_analysis"
#: Part of a kept coverage's key: raise it when the coverage analysis changes its results, and
#: every kept coverage is computed again.
COVERAGE_VERSION = 1
#: The store layer that keeps what :meth:`Snapshot.kept` derived once per build (JSON text).
PRODUCTS_LAYER = "build_products"
#: The product (:meth:`Snapshot.kept`) that keeps :attr:`Snapshot.district_gaps`: raise its
#: version when the gap analysis changes its results.
DISTRICT_GAPS_PRODUCT = "district-gaps:v1"

_log = logging.getLogger(__name__)

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
    #: the register and roster as the trusted pipeline read them: for the analyses only
    _register: gpd.GeoDataFrame = field(repr=False)
    _cooperators: gpd.GeoDataFrame = field(repr=False)
    #: the plan status of every person with a plan in karte, by (municipality, person_id)
    _plan_status: dict[tuple, str] = field(default_factory=dict, repr=False)
    #: the disaster-mode rows (``disaster_modes``), as the trusted pipeline read them
    disaster_modes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    #: the evacuation-support gap analysis of every person, run when first needed (:meth:`_analysed`)
    _gaps: GapAnalysis | None = field(default=None, repr=False)
    _coverage: tuple[dict[str, Coverage], dict] | None = field(default=None, repr=False)
    #: where the coverage is kept between processes (None: in this process only)
    _kept: Kept | None = field(default=None, repr=False)
    _layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)
    _memo: dict[tuple, object] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- reading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, store: Store, *, stamp: str, params: AnalysisParams | None = None) -> Snapshot:
        """Read the store's build (as its trusted user). The gap analysis runs when first asked
        for (:meth:`_analysed`), on these frames: what a snapshot holds is read here, at one stamp."""
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
        present = set(store.layers())
        plan_status = plan_statuses(store.read(PLANS)) if PLANS in present else {}
        imported = register["plan_status"].copy() if "plan_status" in register.columns else None
        register = with_plan_status(register, plan_status)
        if imported is not None and plan_status:
            _recount_plans(kartes, register, imported)
        return cls(
            stamp=stamp, location=store.location, params=params, meta=store.meta(), kartes=kartes,
            districts=districts, small_areas=store.read(Layer.SMALL_AREAS), services=services,
            shelters=shelters, emergency_sites=sites, salons=counting_salons(services, params),
            _register=register, _cooperators=cooperators, _plan_status=plan_status,
            disaster_modes=store.read(MODES) if MODES in present else pd.DataFrame())

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

    @property
    def district_gaps(self) -> pd.DataFrame:
        """Evacuation-support gap counts and rates per district, plus a ``"city"`` row (no
        persons): kept in the store for this build (:meth:`kept`), so a process that prints one
        public sheet or page reads the city's figures instead of analysing every person (the
        analysis's, kept for the next process, when they are not kept yet)."""
        return self.kept(DISTRICT_GAPS_PRODUCT, lambda: self._analysed().district_gaps,
                         encode=frame_text, decode=frame_of_text)

    def gaps_at_hand(self, *, persons: bool = False) -> None:
        """Have :attr:`district_gaps` (with ``persons``, every person's gaps too) at hand now: a
        batch asks before it forks its workers, which then inherit them instead of each reading
        or analysing them again."""
        if persons:
            self._analysed()
        self.district_gaps  # noqa: B018 - read for its effect: decoded or analysed, and kept

    @property
    def supporter_load(self) -> pd.DataFrame:
        """Per cooperator_id: ``load`` (persons assigned), ``capacity``, ``spare``, ``overloaded``."""
        return self._analysed().supporter_load

    def _analysed(self) -> GapAnalysis:
        """The gap analysis of every person, run once on the snapshot's own frames when first
        needed (person flags, supporter load, or district counts not kept in the store yet).
        Personal: it stays in this process's memory."""
        with self._lock:
            if self._gaps is None:
                person_gaps, district_gaps, load = evacuation_gaps(
                    self._register, self._cooperators, self.shelters, self.emergency_sites, self.districts,
                    params=self.params)
                self._gaps = GapAnalysis(district_gaps=district_gaps, supporter_load=load,
                                         person_flags=_person_flags(person_gaps))
            return self._gaps

    def coverage(self, mapper: CoverageMapper | None = None) -> tuple[dict[str, Coverage], dict]:
        """(salon coverage of every district, the city's shares), computed once per build: read
        from the store when kept there for this build's inputs, else analysed here and kept.

        ``mapper(function, groups)`` runs ``function`` over the district groups, in any order
        (a process pool's ``imap_unordered``: the sheet batch spreads the analysis over its
        workers); default: here, one group after the other.
        """
        with self._lock:
            if not self.has_coverage():
                groups = district_groups(self.districts, self.codes)
                analyse = self.coverage_of
                parts = mapper(analyse, groups) if mapper is not None else map(analyse, groups)
                results: dict[str, Coverage] = {}
                for part in parts:
                    results.update(part)
                self._set_coverage(results)
                if self._kept is not None:
                    self._kept.write(self, results)
            return self._coverage

    def has_coverage(self) -> bool:
        """Is the salon coverage at hand without an analysis (computed by this process, or kept
        in the store for this build's inputs: then read now)?"""
        with self._lock:
            if self._coverage is None and self._kept is not None:
                kept = self._kept.read(self)
                if kept is not None:
                    self._set_coverage(kept)
            return self._coverage is not None

    def _set_coverage(self, results: dict[str, Coverage]) -> None:
        self._coverage = (results, city_coverage(list(results.values())))

    def coverage_of(self, codes: list[str]) -> dict[str, Coverage]:
        """Salon coverage of the districts ``codes`` (one group of :func:`district_groups`)."""
        return analyse_coverage(self.small_areas, self.services, codes, params=self.params)

    def person_flags(self, person_ids: Iterable) -> pd.DataFrame:
        """What the analyses found for these persons, one row each in the order given (NaN for an
        unknown id): one boolean per gap kind, ``gaps``, ``at_risk``, ``gap_kinds`` (the kinds
        joined by ``;``), ``needs_care``, ``supporter_m`` and ``shelter_m`` (walking metres,
        whole). Call it with the ids of rows the viewer was given by the store."""
        return self._analysed().person_flags.reindex(pd.Index([str(p) for p in person_ids]))

    def person_flag(self, person_id) -> dict:
        """:meth:`person_flags` of one person as a dict (empty for an unknown id)."""
        with self._lock:
            if "_flag_records" not in self._memo:
                table = self._analysed().person_flags
                columns = {c: table[c].tolist() for c in table.columns}
                self._memo["_flag_records"] = {
                    pid: {c: columns[c][i] for c in columns} for i, pid in enumerate(table.index)}
            return self._memo["_flag_records"].get(str(person_id), {})

    def plan_status_of(self, person_id, municipality=None, imported=None) -> str | None:
        """The person's plan status: their plan's, when they have a plan in karte, else
        ``imported`` (the register row's own ``plan_status``, the city's value)."""
        found = self._plan_status.get((municipality, str(person_id)))
        if found is None and municipality is not None:
            found = self._plan_status.get((None, str(person_id)))
        return found if found is not None else imported

    def has_plan(self, person_id, municipality=None) -> bool:
        """Does the person have an individual evacuation plan in karte?"""
        return ((municipality, str(person_id)) in self._plan_status
                or (None, str(person_id)) in self._plan_status)

    def disaster_districts(self, municipality: str | None, now: dt.datetime | None = None) -> frozenset[str]:
        """The districts of ``municipality`` in disaster mode at ``now`` (default: now): started,
        not stopped by hand, before their end time (:func:`active_modes`)."""
        modes = active_modes(self.disaster_modes, now)
        if not len(modes) or municipality is None:
            return frozenset()
        if MUNICIPALITY in modes.columns:
            modes = modes[modes[MUNICIPALITY].astype(object) == municipality]
        return frozenset(str(c) for c in modes["district_code"].dropna())

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

    def kept(self, name: str, compute: Callable[[], object], *, encode: Callable[[object], str],
             decode: Callable[[str], object]):
        """:meth:`memo` of ``compute()`` that other processes share: kept in the store
        (:data:`PRODUCTS_LAYER`) for this build (its stamp, the parameters in force, the view's
        municipality), so a cold process decodes it instead of computing it (a suppression plan:
        0.2-0.4 s). ``encode`` turns the value into text (JSON), ``decode`` back. Derived public
        data only (never personal rows: the store's layer is no personal layer)."""
        def load():
            text = self._kept.product(self, name) if self._kept is not None else None
            if text is not None:
                try:
                    return decode(text)
                except (ValueError, TypeError, KeyError) as exc:  # written by another version
                    _log.warning("kept %s not decoded: %s", name, exc)
            value = compute()
            if self._kept is not None:
                self._kept.write_product(self, name, encode(value))
            return value

        return self.memo(("kept", name), load)

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


@dataclass(frozen=True)
class GapAnalysis:
    """What :func:`karte.analysis.evacuation_gaps` derived from one snapshot."""

    #: counts and rates per district and the ``"city"`` row (no persons)
    district_gaps: pd.DataFrame
    #: per cooperator_id (:attr:`Snapshot.supporter_load`)
    supporter_load: pd.DataFrame
    #: what the analyses derived per person, indexed by person_id (personal: join, never list)
    person_flags: pd.DataFrame


def frame_text(frame: pd.DataFrame) -> str:
    """``frame`` (numbers and text, a named index) as JSON text that :func:`frame_of_text` gives
    back equal, values and dtypes (floats by their shortest exact repr; NaN as null)."""
    columns = {str(c): [None if _missing(v) else v for v in frame[c].tolist()] for c in frame.columns}
    return json.dumps({"index": frame.index.tolist(), "index_name": frame.index.name,
                       "columns": columns, "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()}},
                      ensure_ascii=False, allow_nan=False)


def frame_of_text(text: str) -> pd.DataFrame:
    """The frame :func:`frame_text` wrote."""
    data = json.loads(text)
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data["columns"].items()})
    frame = frame.astype(data["dtypes"])
    frame.index = pd.Index(data["index"], name=data["index_name"])
    return frame


def _person_flags(gaps: pd.DataFrame) -> pd.DataFrame:
    kinds = [k for k in ANALYSED if k in gaps.columns]
    table = pd.DataFrame(gaps[["needs_care", "supporter_m", "shelter_m", *kinds, "gaps", "at_risk"]])
    table[["supporter_m", "shelter_m"]] = table[["supporter_m", "shelter_m"]].round(0)
    table["gap_kinds"] = [";".join(k for k, on in zip(kinds, row, strict=True) if on)
                          for row in gaps[kinds].to_numpy(dtype=bool)]
    table.index = pd.Index(gaps["person_id"].astype(str).to_numpy(), name="person_id")
    return table


# --- the one cache ---------------------------------------------------------------------------------

_CACHE: dict[tuple, Snapshot] = {}
_LOADING: dict[tuple, threading.Lock] = {}
_GUARD = threading.Lock()
#: location -> (stamp, when checked, the municipalities of that build) (:func:`municipalities`)
_MUNICIPALITIES: dict[str, tuple[str, float, dict[str, str]]] = {}
#: Seconds between two checks of the stamp by :func:`municipalities`.
MUNICIPALITIES_TTL_S = 1.0


def current(store: Store) -> Snapshot:
    """The snapshot of the store's current build: kept while :meth:`Store.stamp` and the
    analysis parameters in force (:func:`karte.analysis.current_params`) are unchanged, read
    again (once, whatever the number of threads asking) when either changes. A store limited to
    one municipality (:class:`karte.store.scoped.MunicipalityView`) has its own snapshot.

    Raises :class:`~karte.domain.errors.StoreError` for an empty store.
    """
    stamp = store.stamp()
    params = current_params()
    key = (store.location, store.municipality)
    snap = _CACHE.get(key)
    if snap is not None and snap.stamp == stamp and snap.params == params:
        return snap
    if not stamp:
        raise StoreError("ストアが空です。karte demo か karte build を先に実行してください")
    with _GUARD:
        lock = _LOADING.setdefault(key, threading.Lock())
    with lock:
        snap = _CACHE.get(key)
        if snap is not None and snap.stamp == stamp and snap.params == params:
            return snap
        previous = _CACHE.get(key)
        for _ in range(3):  # a write between the stamp and the reads: read again
            snap = Snapshot.load(store, stamp=stamp, params=params)
            after = store.stamp()
            if after == stamp:
                break
            stamp = after
        if previous is not None:
            _carry_over(previous, snap)
        snap._kept = Kept(store)
        _CACHE[key] = snap
        return snap


def municipalities(store: Store) -> dict[str, str]:
    """The municipalities of the store's build, code -> name (``02201`` -> ``青森市``), in code
    order, read from the kartes when the build stamp changes; empty for an empty store or a build
    whose kartes name no municipality (a view of one municipality names that one only). More than
    one: pages show one municipality at a time (:class:`karte.store.scoped.MunicipalityView`).

    Asked on every web request, so the stamp is checked at most once per
    :data:`MUNICIPALITIES_TTL_S` (a rebuild that adds a municipality shows within that time): the
    request's own snapshot check (:func:`current`) is its one stamp query."""
    now = time.monotonic()
    found = _MUNICIPALITIES.get(store.location)
    if found is not None and now - found[1] < MUNICIPALITIES_TTL_S:
        return found[2]
    stamp = store.stamp()
    if found is not None and found[0] == stamp:
        with _GUARD:
            _MUNICIPALITIES[store.location] = (stamp, now, found[2])
        return found[2]
    names: dict[str, str] = {}
    if stamp:
        for raw in store.read(Layer.KARTES)["karte_json"]:
            own = (json.loads(raw).get("district") or {}).get("municipality") or {}
            if own.get("code"):
                names.setdefault(str(own["code"]), own.get("name") or str(own["code"]))
    names = dict(sorted(names.items()))
    with _GUARD:
        _MUNICIPALITIES[store.location] = (stamp, now, names)
    return names


def _carry_over(old: Snapshot, new: Snapshot) -> None:
    """Give ``new`` the salon coverage ``old`` computed when what it depends on (small areas,
    services, districts, the parameters) is unchanged: writing a plan or switching a disaster mode
    changes the stamp, and must not cost the city's coverage analysis again."""
    if old._coverage is None or old.params != new.params:
        return
    for name in ("small_areas", "services", "districts"):
        a, b = getattr(old, name), getattr(new, name)
        if a.shape != b.shape or list(a.columns) != list(b.columns) or not a.equals(b):
            return
    with new._lock:
        if new._coverage is None:
            new._coverage = old._coverage


class Kept:
    """What a build's snapshot keeps in the store for other processes (see the module docstring):
    the salon coverage (:data:`COVERAGE_LAYER`, one row per district, its uncovered area as the
    geometry, keyed by a digest of its inputs) and derived products (:data:`PRODUCTS_LAYER`, one
    row per product as JSON text, keyed by the stamp: :meth:`Snapshot.kept`).

    The rows of every municipality's view of a store share the layers (``municipality_code``: the
    view's, empty for the whole store); writing one view's rows keeps the others'. A store that
    refuses the write (read-only file, a user without the right) keeps nothing: the result stays
    in this process and the next one computes it again.
    """

    def __init__(self, store: Store):
        self.store = store
        self._key: str | None = None
        self._read = False
        self._products: dict[str, str] | None = None

    def key(self, snap: Snapshot) -> str:
        """The digest of everything the coverage of ``snap`` depends on."""
        if self._key is None:
            digest = hashlib.sha256(repr((COVERAGE_VERSION, snap.params, self.store.municipality,
                                          snap.codes)).encode())
            for frame in (snap.small_areas, snap.services, snap.districts):
                _fingerprint(digest, frame)
            self._key = digest.hexdigest()
        return self._key

    def read(self, snap: Snapshot) -> dict[str, Coverage] | None:
        """The coverage kept for ``snap``'s inputs, or None (the store is asked once)."""
        if self._read:
            return None
        self._read = True
        rows = self._rows(COVERAGE_LAYER)
        if rows is None:
            return None
        try:
            rows = rows[(rows["key"] == self.key(snap)).to_numpy(dtype=bool)]
            if not len(rows) or set(rows["district_code"]) != set(snap.codes):
                return None
            return {r.district_code: _coverage_of_row(r) for r in rows.itertuples()}
        except (KeyError, AttributeError) as exc:  # an older or foreign layer: analyse
            _log.warning("kept salon coverage not read from %s: %s", self.store.location, exc)
            return None

    def write(self, snap: Snapshot, results: dict[str, Coverage]) -> None:
        """Keep ``results`` for ``snap``'s inputs (replacing this view's earlier rows)."""
        codes = sorted(results)
        areas = [results[c].area for c in codes]
        frame = gpd.GeoDataFrame({
            "district_code": codes, MUNICIPALITY: [self.store.municipality] * len(codes),
            "key": [self.key(snap)] * len(codes),
            **{name: [float(getattr(results[c], name)) for c in codes]
               for name in ("elderly", "covered_elderly", "age_75_plus", "covered_75_plus")},
            "cells": [int(results[c].cells) for c in codes],
            # the store keeps every area as a MultiPolygon: a Polygon is given back as one
            "polygon": [a is not None and a.geom_type == "Polygon" for a in areas],
        }, geometry=gpd.GeoSeries(areas, crs=crs.METRIC))
        self._replace(COVERAGE_LAYER, frame, lambda old: self._others(old))

    def product(self, snap: Snapshot, name: str) -> str | None:
        """The product ``name`` kept for ``snap``'s build (its stamp and parameters), or None."""
        if self._products is None:
            rows = self._rows(PRODUCTS_LAYER)
            build = self._build(snap)
            try:
                mine = rows[(rows["build"] == build).to_numpy(dtype=bool)] if rows is not None else []
                self._products = dict(zip(mine["product"], mine["value"], strict=True)) if len(mine) else {}
            except KeyError as exc:  # a foreign layer: compute
                _log.warning("kept products not read from %s: %s", self.store.location, exc)
                self._products = {}
        return self._products.get(name)

    def write_product(self, snap: Snapshot, name: str, value: str) -> None:
        """Keep the product ``name`` of ``snap``'s build (replacing this view's earlier one)."""
        build = self._build(snap)
        frame = pd.DataFrame({MUNICIPALITY: [self.store.municipality], "product": [name], "build": [build],
                              "value": [value]})

        def keep(old: pd.DataFrame) -> np.ndarray:  # other views' rows, this build's other products
            same_build = (old["build"] == build).to_numpy(dtype=bool)
            same_product = (old["product"] == name).to_numpy(dtype=bool)
            return self._others(old) | (same_build & ~same_product)

        self._replace(PRODUCTS_LAYER, frame, keep)
        if self._products is not None:
            self._products[name] = value

    def _build(self, snap: Snapshot) -> str:
        return hashlib.sha256(repr((snap.stamp, snap.params, self.store.municipality)).encode()).hexdigest()

    def _others(self, old: pd.DataFrame) -> np.ndarray:
        """Rows of ``old`` that belong to another municipality's view."""
        scope = self.store.municipality or ""
        return (old[MUNICIPALITY].fillna("").astype(str) != scope).to_numpy(dtype=bool)

    def _rows(self, layer: str) -> pd.DataFrame | None:
        try:
            return self.store.read(layer) if layer in self.store.layers() else None
        except KarteError as exc:
            _log.warning("%s not read from %s: %s", layer, self.store.location, exc)
            return None

    def _replace(self, layer: str, frame: pd.DataFrame, keep: Callable[[pd.DataFrame], np.ndarray]) -> None:
        """Write ``frame`` with the rows of the layer ``keep(old)`` selects."""
        target = unscoped(self.store)
        try:
            if layer in target.layers():
                old = target.read(layer)
                if MUNICIPALITY in old.columns and set(frame.columns) <= set(old.columns):
                    kept = old[keep(old)]
                    if len(kept):
                        frame = pd.concat([kept[list(frame.columns)], frame], ignore_index=True)
            target.write({layer: frame})
        except KarteError as exc:
            _log.warning("%s not kept in %s: %s", layer, self.store.location, exc)


def _coverage_of_row(row) -> Coverage:
    area = row.geometry
    if area is not None and area.is_empty:
        area = None
    if area is not None and bool(row.polygon) and area.geom_type == "MultiPolygon" and len(area.geoms) == 1:
        area = area.geoms[0]
    return Coverage(str(row.district_code), elderly=float(row.elderly),
                    covered_elderly=float(row.covered_elderly), age_75_plus=float(row.age_75_plus),
                    covered_75_plus=float(row.covered_75_plus), cells=int(row.cells), area=area)


def _fingerprint(digest, frame: pd.DataFrame) -> None:
    """Feed ``frame`` (columns, types, values, geometries as WKB, row order) to ``digest``."""
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    digest.update(repr((list(frame.columns), [str(t) for t in frame.dtypes])).encode())
    attributes = pd.DataFrame(frame.drop(columns=[geometry]) if geometry else frame)
    digest.update(pd.util.hash_pandas_object(attributes, index=False).to_numpy().tobytes())
    if geometry:
        for wkb in shapely.to_wkb(frame.geometry.values):
            digest.update(b"-" if wkb is None else len(wkb).to_bytes(8, "little") + wkb)


def clear() -> None:
    """Forget every snapshot (tests and benchmarks that time a cold start)."""
    with _GUARD:
        _CACHE.clear()
        _MUNICIPALITIES.clear()


# --- plans and disaster modes -----------------------------------------------------------------------

def plan_statuses(plans: pd.DataFrame) -> dict[tuple, str]:
    """(municipality, person_id) -> the plan's status, for plans with a known status (one plan
    per person: :func:`karte.domain.drills.first_plans`)."""
    if not len(plans) or "person_id" not in plans.columns or "status" not in plans.columns:
        return {}
    columns = [c for c in ("plan_id", MUNICIPALITY, "person_id", "status") if c in plans.columns]
    rows = pd.DataFrame(plans[columns]).astype(object).where(plans[columns].notna(), None).to_dict("records")
    known = set(PlanStatus._value2member_map_)
    return {(p.get(MUNICIPALITY), str(p["person_id"])): str(p["status"]) for p in first_plans(rows)
            if p.get("status") in known and p.get("person_id") is not None}


def with_plan_status(register: pd.DataFrame, plan_status: dict[tuple, str]) -> pd.DataFrame:
    """``register`` with ``plan_status`` taken from the plans where a person has one (a copy;
    the frame itself when nobody has a plan)."""
    if not plan_status or not len(register) or "person_id" not in register.columns:
        return register
    municipalities = (register[MUNICIPALITY].astype(object).tolist() if MUNICIPALITY in register.columns
                      else [None] * len(register))
    imported = register["plan_status"].astype(object).tolist() if "plan_status" in register.columns \
        else [None] * len(register)
    derived = []
    for m, p, own in zip(municipalities, register["person_id"].astype(str), imported, strict=True):
        hit = plan_status.get((m, p))
        if hit is None:
            hit = plan_status.get((None, p))
        derived.append(own if hit is None else hit)
    out = register.copy()
    out["plan_status"] = pd.Series(derived, index=register.index, dtype=object)
    return out


def _recount_plans(kartes: dict[str, dict], register: pd.DataFrame, imported: pd.Series) -> None:
    """Move the kartes' counts by plan status (``register.by_plan``) from each person's imported
    status to their plan's (only people whose status the plans change are moved, so the karte's
    totals stay as the build counted them)."""
    changed = register["plan_status"].astype(object) != imported.astype(object)
    if not changed.any():
        return
    for code, old, new in zip(register.loc[changed, "district_code"], imported[changed],
                              register.loc[changed, "plan_status"], strict=True):
        karte = kartes.get(code)
        block = (karte or {}).get("register", {}).get("by_plan")
        if not block:
            continue
        rows = {row["key"]: row for row in block}
        if old in rows and rows[old]["count"] > 0:
            rows[old]["count"] -= 1
        if new not in rows and new in PlanStatus._value2member_map_:
            rows[new] = {"key": new, "label": PLAN_STATUS_JA[PlanStatus(new)], "count": 0}
            block.append(rows[new])
        if new in rows:
            rows[new]["count"] += 1


def active_modes(modes: pd.DataFrame, now: dt.datetime | None = None) -> pd.DataFrame:
    """The rows of ``disaster_modes`` in force at ``now`` (UTC, default now): started at or before
    it, not stopped by hand, and before their end time when they have one. The same rule as
    ``karte.disaster_districts()`` in PostGIS."""
    if not len(modes) or "started_at" not in modes.columns:
        return modes.iloc[0:0] if len(modes.columns) else modes
    now = now or dt.datetime.now(dt.UTC)
    keep = []
    for started, ends, stopped in zip(modes["started_at"], modes.get("ends_at", [None] * len(modes)),
                                      modes.get("stopped_at", [None] * len(modes)), strict=True):
        start, end = _instant(started), _instant(ends)
        keep.append(start is not None and start <= now and not _text(stopped)
                    and (not _text(ends) or (end is not None and end > now)))
    return modes[np.asarray(keep, dtype=bool)]


def _instant(value) -> dt.datetime | None:
    """An ISO time (``2027-03-01T09:00:00+00:00``) as an aware datetime (UTC when it names no zone)."""
    text = _text(value)
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _text(value) -> str:
    return "" if value is None or _missing(value) else str(value).strip()


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
