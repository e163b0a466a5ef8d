"""The analyses per municipality as Dask tasks (``karte analyse``, issue 18 item 4).

The build snapshot (:mod:`karte.snapshot`) runs the analyses over one store in one process:
salon coverage with the uncovered cells, evacuation-support gaps with the supporter load,
supporter suggestions and the outreach ranking. This module runs *the same functions*
(:mod:`karte.analysis`, :mod:`gis.suggest`, :mod:`gis.outreach`, called as
:mod:`karte.services.outreach` calls them) once per municipality, each municipality one task, on a
``distributed`` cluster: a :class:`~distributed.LocalCluster` on this machine by default, or the
scheduler of a real cluster (``dask scheduler`` / ``dask worker``, ``docs/scale.md``).

Municipalities are the natural partitions: the register is kept by the municipality (災害対策基本法
第49条の10), district codes are unique within one, and every figure the pages print is the
municipality's. Each task gets (:func:`partition`):

* the municipality's small areas, districts, register (with the plan status the plans give,
  :func:`karte.snapshot.with_plan_status`, as the snapshot applies it) and cooperators;
* the salons, shelters and emergency sites within reach of its small areas, whatever
  municipality they are in (a salon across the border covers both sides, as within a city): every
  facility inside the small areas' bounding box widened by the longest straight-line reach
  (:func:`reach_m`). A person's ``shelter_m`` beyond every reach may therefore differ from a
  whole-prefecture run (the nearest shelter out of reach is not looked for); whether it is within
  reach does not.

Supporters and suggestions stay within the municipality (its register names its own
cooperators: ids are unique within a municipality only).

:func:`analyse_municipality` is pure (inputs in, results out); the in-process path
(:func:`analyse_in_process`) and the Dask path (:func:`analyse_on_dask`) call it on the same
partitions, so their results are equal, bit for bit (``tests/test_analyse.py``). The results are
written back to the store as three layers of counts (:data:`RESULT_LAYERS`, no personal row: the
per-person gap flags and the suggested pairs stay in memory, as in the snapshot, because a layer
the registry does not declare personal has no row-level security).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs
from gis.coverage import salon_coverage
from gis.mesh import jis_mesh, population_surface
from gis.outreach import outreach_priority, outreach_units
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from karte import municipalities as munis
from karte.analysis import (
    Coverage,
    analyse_coverage,
    city_coverage,
    counting_salons,
    current_params,
    district_groups,
    evacuation_gaps,
)
from karte.domain.drills import PLANS
from karte.domain.errors import InputError, StoreError
from karte.domain.layers import MUNICIPALITY, Layer
from karte.domain.schema import VOCABULARY
from karte.snapshot import plan_statuses, with_plan_status
from karte.store.base import Store

#: The layers a run reads (as the store's trusted user, like the build snapshot).
INPUT_LAYERS = (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES,
                Layer.SHELTERS, Layer.EMERGENCY_SITES)
#: The layers a run writes: per district (coverage with the uncovered area, gap counts), per small
#: area (the outreach ranking) and per municipality (totals). Counts only.
DISTRICTS_LAYER = "analysis_districts"
OUTREACH_LAYER = "analysis_outreach"
MUNICIPALITIES_LAYER = "analysis_municipalities"
RESULT_LAYERS = (DISTRICTS_LAYER, OUTREACH_LAYER, MUNICIPALITIES_LAYER)

#: Tasks kept in flight per worker: enough to keep every worker busy while the driver ships the
#: next municipality, few enough that a national run never holds every partition on the workers.
IN_FLIGHT_PER_WORKER = 2
#: Widening of the reach boxes (metres), for coordinates rounded by a store.
REACH_MARGIN_M = 1.0


# --- partitions --------------------------------------------------------------------------------------

@dataclass
class MunicipalityInputs:
    """What one municipality's task gets (EPSG:6678 frames, rows in store order)."""

    code: str
    small_areas: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    register: gpd.GeoDataFrame
    cooperators: gpd.GeoDataFrame
    #: the services within reach (salons of a neighbour count)
    services: gpd.GeoDataFrame
    shelters: gpd.GeoDataFrame
    emergency_sites: gpd.GeoDataFrame

    @property
    def rows(self) -> int:
        """Small areas plus register rows: the size a task's work grows with."""
        return len(self.small_areas) + len(self.register)


def reach_m(params: AnalysisParams) -> float:
    """The longest straight-line distance any analysis looks for a facility: the walking reach to
    a salon, an emergency site or a welfare shelter divided by the detour factor (metres)."""
    longest = max(params.salon_walk_m, params.site_walk_m, params.welfare_m)
    return longest / params.detour_factor + REACH_MARGIN_M


def read_inputs(store: Store) -> dict[str, gpd.GeoDataFrame]:
    """The input layers of a run, read whole as the store's trusted user; the register carries
    the plan status its plans give (the snapshot's rule). Raises
    :class:`~karte.domain.errors.StoreError` naming a missing layer."""
    present = set(store.layers())
    missing = [str(name) for name in INPUT_LAYERS if str(name) not in present]
    if missing:
        raise StoreError(f"{store.location} に分析に必要なレイヤがありません: {', '.join(missing)}。"
                         "先に karte demo か karte build を実行してください")
    layers = {str(name): store.read(name) for name in INPUT_LAYERS}
    if PLANS in present:
        layers[Layer.REGISTER] = with_plan_status(layers[Layer.REGISTER], plan_statuses(store.read(PLANS)))
    return layers


def partition(layers: dict[str, gpd.GeoDataFrame], *, params: AnalysisParams,
              municipalities: Iterable[str] | None = None) -> list[MunicipalityInputs]:
    """The inputs of every municipality (or of ``municipalities``), sorted by code.

    Rows are split by ``municipality_code`` (a row without one belongs to no task); the
    facilities within :func:`reach_m` of each municipality's small areas are added to its task.
    Raises :class:`~karte.domain.errors.InputError` for a municipality the store does not hold.
    """
    small = layers[Layer.SMALL_AREAS]
    for name in (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.REGISTER, Layer.COOPERATORS):
        if MUNICIPALITY not in layers[name].columns:
            raise InputError(f"レイヤ {name} に {MUNICIPALITY} 列がありません"
                             "（karte build で作り直してください）")
    held = sorted(str(c) for c in pd.unique(small[MUNICIPALITY].dropna()))
    codes = held if municipalities is None else sorted({str(c) for c in municipalities})
    unknown = [c for c in codes if c not in held]
    if unknown:
        raise InputError(f"市区町村コード {', '.join(unknown)} はストアにありません"
                         f"（あるのは {', '.join(held[:10])}{' ほか' if len(held) > 10 else ''}）")
    rows = {name: _positions(layers[name]) for name in
            (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.REGISTER, Layer.COOPERATORS)}
    facilities = {name: _tree(layers[name]) for name in
                  (Layer.SERVICES, Layer.SHELTERS, Layer.EMERGENCY_SITES)}
    reach = reach_m(params)
    out = []
    for code in codes:
        own = {name: _take(layers[name], rows[name].get(code)) for name in rows}
        box = shapely.box(*own[Layer.SMALL_AREAS].total_bounds).buffer(reach, join_style="mitre")
        near = {name: _within(layers[name], *tree, box) for name, tree in facilities.items()}
        out.append(MunicipalityInputs(
            code=code, small_areas=own[Layer.SMALL_AREAS], districts=own[Layer.DISTRICTS],
            register=own[Layer.REGISTER], cooperators=own[Layer.COOPERATORS],
            services=near[Layer.SERVICES], shelters=near[Layer.SHELTERS],
            emergency_sites=near[Layer.EMERGENCY_SITES]))
    return out


def _positions(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Municipality code -> row positions (ascending: store order is kept)."""
    if not len(frame):
        return {}
    groups = frame.groupby(frame[MUNICIPALITY].astype(object), sort=False).indices
    return {str(k): v for k, v in groups.items()}


def _take(frame: gpd.GeoDataFrame, positions: np.ndarray | None) -> gpd.GeoDataFrame:
    return frame.iloc[positions if positions is not None else np.array([], dtype=int)]


def _tree(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, shapely.STRtree]:
    """The positions of the located rows (the others are nobody's nearest anyway) and their tree."""
    geoms = frame.geometry.to_numpy()
    located = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    return located, shapely.STRtree(geoms[located])


def _within(frame: gpd.GeoDataFrame, located: np.ndarray, tree: shapely.STRtree, box) -> gpd.GeoDataFrame:
    """The located rows of ``frame`` inside ``box``, in store order."""
    if not len(located):
        return frame.iloc[0:0]
    return frame.iloc[np.sort(located[tree.query(box, predicate="intersects")])]


# --- one municipality ----------------------------------------------------------------------------------

@dataclass
class MunicipalityResult:
    """One municipality's analyses: what the snapshot and the outreach service derive for a city.

    ``person_gaps``, ``load`` and ``suggestions`` name persons (ids only): they stay in memory.
    """

    code: str
    #: salon coverage per district (:class:`karte.analysis.Coverage`) and the municipality's shares
    coverage: dict[str, Coverage]
    shares: dict[str, float | None]
    #: gap counts and rates per district plus a ``"city"`` row (the municipality's)
    district_gaps: pd.DataFrame
    person_gaps: pd.DataFrame = field(repr=False)
    load: pd.DataFrame = field(repr=False)
    suggestions: pd.DataFrame = field(repr=False)
    #: the outreach ranking of its small areas (counts), sorted by rank
    ranking: pd.DataFrame = field(repr=False)
    #: small areas, districts, register rows and counting salons of the task's inputs
    sizes: dict[str, int] = field(default_factory=dict)
    #: wall seconds of the task and the process that ran it (not part of the result's equality)
    seconds: float = field(default=0.0, compare=False)
    #: CPU seconds of the worker process meanwhile (its share of a busy machine's cores shows as
    #: wall seconds well above these)
    cpu_seconds: float = field(default=0.0, compare=False)
    worker: str = field(default="", compare=False)


def analyse_municipality(inputs: MunicipalityInputs, params: AnalysisParams) -> MunicipalityResult:
    """Every analysis of one municipality, as the snapshot and the outreach service compute them
    for a city (pure: a Dask task)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    districts = inputs.districts
    codes = sorted(str(c) for c in districts["district_code"])
    coverage: dict[str, Coverage] = {}
    for group in district_groups(districts, codes):            # Snapshot.coverage
        coverage.update(analyse_coverage(inputs.small_areas, inputs.services, group, params=params))
    person_gaps, district_gaps, load = evacuation_gaps(        # Snapshot.load
        inputs.register, inputs.cooperators, inputs.shelters, inputs.emergency_sites, districts,
        params=params)
    suggestions = suggest_supporters(inputs.register, inputs.cooperators, vocab=VOCABULARY,
                                     params=params)            # outreach._suggest (city staff)
    ranking = _ranking(inputs.small_areas, inputs.services, person_gaps, params)
    sizes = {"small_areas": len(inputs.small_areas), "districts": len(districts),
             "register": len(inputs.register), "cooperators": len(inputs.cooperators),
             "salons": int((counting_salons(inputs.services, params)[MUNICIPALITY].astype(object)
                            == inputs.code).sum()) if MUNICIPALITY in inputs.services.columns else 0}
    return MunicipalityResult(
        code=inputs.code, coverage=coverage, shares=city_coverage(list(coverage.values())),
        district_gaps=district_gaps,
        person_gaps=pd.DataFrame(person_gaps.drop(columns=person_gaps.geometry.name)),
        load=load, suggestions=suggestions, ranking=ranking, sizes=sizes,
        seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - cpu0, worker=_worker())


def _worker() -> str:
    """The Dask worker running this task (its address), else this process."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not in a Dask task: the in-process path
        return f"{os.uname().nodename}:{os.getpid()}"


def _ranking(small: gpd.GeoDataFrame, services: gpd.GeoDataFrame, person_gaps: gpd.GeoDataFrame,
             params: AnalysisParams) -> pd.DataFrame:
    """The outreach ranking of the small areas (:func:`karte.services.outreach._rank`'s steps)."""
    if small.empty:
        return pd.DataFrame()
    surface = population_surface(small, jis_mesh(small, level=params.mesh_level))
    covered = salon_coverage(surface, services, vocab=VOCABULARY, params=params)
    ranked = outreach_priority(outreach_units(covered, person_gaps, by="key_code"))
    for col in ("elderly_alone", "uncovered_elderly"):
        ranked[col] = ranked[col].round().astype(int)
    return ranked


# --- running them ----------------------------------------------------------------------------------------

@dataclass
class Run:
    """One run: the results by municipality code, where and how long."""

    results: dict[str, MunicipalityResult]
    seconds: float
    where: str
    workers: int
    #: municipality code -> name (from the small areas' full names)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(r.sizes.get("small_areas", 0) + r.sizes.get("register", 0) for r in self.results.values())


Progress = Callable[[int, int], None]


def analyse_in_process(parts: list[MunicipalityInputs], params: AnalysisParams, *,
                       progress: Progress | None = None) -> dict[str, MunicipalityResult]:
    """The reference path: every municipality here, one after the other."""
    out = {}
    for i, part in enumerate(parts, start=1):
        try:
            out[part.code] = analyse_municipality(part, params)
        except (ValueError, KeyError) as exc:
            raise _failed(part.code, exc) from exc
        if progress:
            progress(i, len(parts))
    return out


def analyse_on_dask(client, parts: list[MunicipalityInputs], params: AnalysisParams, *,
                    progress: Progress | None = None) -> dict[str, MunicipalityResult]:
    """Every municipality as one task on ``client``'s cluster (largest first, a bounded number in
    flight: each partition is shipped when a worker is about to need it)."""
    from distributed import as_completed

    workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    queue = sorted(parts, key=lambda p: (-p.rows, p.code))
    window = max(2, IN_FLIGHT_PER_WORKER * workers)
    run = uuid.uuid4().hex[:8]

    submitted = []

    def submit(part: MunicipalityInputs):
        submitted.append(client.submit(analyse_municipality, part, params,
                                       key=f"analyse-{part.code}-{run}", pure=False))
        return submitted[-1]

    first = [submit(p) for p in queue[:window]]
    pending = as_completed(first, with_results=True, raise_errors=False)
    rest = iter(queue[window:])
    out: dict[str, MunicipalityResult] = {}
    for future, result in pending:
        if future.status == "error":
            error = future.exception()
            client.cancel([f for f in submitted if not f.done()])
            raise _failed(str(future.key).split("-")[1], error) from error
        out[result.code] = result
        future.release()
        nxt = next(rest, None)
        if nxt is not None:
            pending.add(submit(nxt))
        if progress:
            progress(len(out), len(parts))
    return dict(sorted(out.items()))


def _failed(code: str, exc: BaseException) -> InputError:
    """A task's error as the user reads it: which municipality, and what was wrong."""
    return InputError(f"市区町村 {code} の分析に失敗しました（入力データを確認してください）: "
                      f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, workers: int | None = None,
                processes: bool = True) -> Iterator:
    """A client of the cluster at ``scheduler`` (``tcp://host:8786``), or of a new
    :class:`~distributed.LocalCluster` of ``workers`` single-threaded worker processes (default:
    one per core), closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise InputError(f"Dask スケジューラ {scheduler} に接続できません（{exc}）") from exc
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def analyse(store: Store, *, municipalities: Iterable[str] | None = None, scheduler: str | None = None,
            workers: int | None = None, params: AnalysisParams | None = None, processes: bool = True,
            in_process: bool = False, write: bool = True, client=None,
            progress: Progress | None = None) -> Run:
    """Read the store, run every municipality's analyses (on Dask unless ``in_process``), write the
    result layers back (:func:`write_results`) and return the run.

    ``client`` is an open Dask client to use; otherwise one is opened (:func:`dask_client` with
    ``scheduler``, ``workers`` and ``processes``). ``params`` defaults to those in force
    (:func:`karte.analysis.current_params`, the season).
    """
    params = params or current_params()
    layers = read_inputs(store)
    parts = partition(layers, params=params, municipalities=municipalities)
    names = munis.names(layers[Layer.SMALL_AREAS])
    t0 = time.perf_counter()
    if in_process:
        results, where, n = analyse_in_process(parts, params, progress=progress), "in-process", 1
    elif client is not None:
        results = analyse_on_dask(client, parts, params, progress=progress)
        where, n = _where(client), len(client.scheduler_info(n_workers=-1).get("workers", {}))
    else:
        with dask_client(scheduler, workers=workers, processes=processes) as opened:
            results = analyse_on_dask(opened, parts, params, progress=progress)
            where, n = _where(opened), len(opened.scheduler_info(n_workers=-1).get("workers", {}))
    run = Run(results, time.perf_counter() - t0, where, n, {c: names.get(c, "") for c in results})
    if write:
        write_results(store, run, params)
    return run


def _where(client) -> str:
    return str(getattr(client.scheduler, "address", "") or client.scheduler_info().get("address", ""))


# --- the result layers -------------------------------------------------------------------------------------

def result_layers(run: Run, params: AnalysisParams) -> dict[str, pd.DataFrame]:
    """The run as the three count layers (:data:`RESULT_LAYERS`), keyed by ``municipality_code``
    and sorted; no person and no cooperator id."""
    districts, outreach, totals = [], [], []
    for code, r in sorted(run.results.items()):
        gaps = r.district_gaps.drop(index="city", errors="ignore")
        suggested = (r.suggestions.groupby("district_code").size() if len(r.suggestions)
                     else pd.Series(dtype=int))
        for dcode in sorted(set(r.coverage) | set(gaps.index)):
            cov = r.coverage.get(dcode, Coverage(dcode))
            row = {MUNICIPALITY: code, "district_code": dcode, "elderly": cov.elderly,
                   "covered_elderly": cov.covered_elderly, "uncovered_elderly": cov.uncovered_elderly,
                   "age_75_plus": cov.age_75_plus, "covered_75_plus": cov.covered_75_plus,
                   "uncovered_75_plus": cov.uncovered_75_plus, "uncovered_cells": cov.cells}
            if dcode in gaps.index:
                row.update({k: _number(gaps.at[dcode, k]) for k in gaps.columns})  # ints stay ints
            row["suggested"] = int(suggested.get(dcode, 0))
            row["geometry"] = cov.area
            districts.append(row)
        if len(r.ranking):
            ranked = r.ranking.copy()
            ranked.insert(0, MUNICIPALITY, code)
            outreach.append(ranked)
        city = r.district_gaps.loc["city"] if "city" in r.district_gaps.index else pd.Series(dtype=float)
        totals.append({
            MUNICIPALITY: code, "municipality_name": run.names.get(code, ""), **r.sizes,
            "elderly": sum(c.elderly for c in r.coverage.values()),
            "uncovered_elderly": r.shares["uncovered_elderly"],
            "uncovered_elderly_share": r.shares["uncovered_elderly_share"],
            "uncovered_75_plus": r.shares["uncovered_75_plus"],
            "uncovered_75_plus_share": r.shares["uncovered_75_plus_share"],
            "persons": int(city.get("persons", 0)), "at_risk": int(city.get("at_risk", 0)),
            "suggested": len(r.suggestions),
            "overloaded_supporters": int(r.load["overloaded"].sum()) if len(r.load) else 0,
            "winter": bool(params.winter), "salon_walk_m": float(params.salon_walk_m),
        })
    frame = pd.DataFrame(districts)
    geometry = frame.pop("geometry") if len(frame) else pd.Series([], dtype=object)
    return {
        DISTRICTS_LAYER: gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(list(geometry), crs=crs.METRIC)),
        OUTREACH_LAYER: (pd.concat(outreach, ignore_index=True) if outreach else pd.DataFrame()),
        MUNICIPALITIES_LAYER: pd.DataFrame(totals),
    }


def _number(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    return value


def write_results(store: Store, run: Run, params: AnalysisParams) -> dict[str, pd.DataFrame]:
    """Write the run's layers (one atomic :meth:`Store.write`): the rows of the municipalities
    analysed replace theirs, the other municipalities' rows already in the store are kept (a run
    with ``--municipality`` updates that one). Returns the layers as written."""
    new = result_layers(run, params)
    present = set(store.layers())
    done = set(run.results)
    merged = {}
    for name, frame in new.items():
        if name in present:
            old = store.read(name)
            if MUNICIPALITY in old.columns:
                old = old[~old[MUNICIPALITY].astype(object).isin(done)]
                frame = _concat(old, frame)
        keys = [MUNICIPALITY, *(["district_code"] if name == DISTRICTS_LAYER else []),
                *(["rank", "key_code"] if name == OUTREACH_LAYER else [])]
        if len(frame) and all(k in frame.columns for k in keys):
            frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        merged[name] = frame
    store.write(merged)
    return merged


def _concat(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if not len(old):
        return new
    if not len(new):
        return old
    out = pd.concat([old, new], ignore_index=True)
    if isinstance(new, gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry=new.geometry.name, crs=new.crs)
    return out
