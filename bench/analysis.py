"""Benchmark: the analysis layer (gis/) on the whole Aomori city demo.

    .venv/bin/python bench/analysis.py [--runs 7] [--store PATH]

Builds a fresh demo into a temporary folder (or reads ``--store``), then prints the median (and
min/max) wall time over several runs of: the population surface (1/8 JIS mesh), salon coverage
(per piece and per district), evacuation gaps (per person and per district), supporter
suggestions (min-cost flow), candidate salon sites (k = 10) and the outreach ranking. Baseline in
the same run: the same coverage computed the naive way, district by district, with a shapely
distance from every piece to every salon; the coverage time is read as a ratio to it, and the
two answers are checked to be equal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gis.coverage import active_salons, coverage_by_district, salon_coverage
from gis.gaps import evacuation_gaps, gaps_by_district
from gis.mesh import jis_mesh, population_surface
from gis.outreach import outreach_priority, outreach_units
from gis.params import AnalysisParams
from gis.siting import candidate_venues, site_salons
from gis.suggest import suggest_supporters
from karte.domain.schema import VOCABULARY
from karte.store import open_store

LAYERS = ("small_areas", "districts", "register", "cooperators", "services", "shelters",
          "emergency_sites")


def naive_coverage(surface, services, params: AnalysisParams) -> pd.Series:
    """Elderly coverage share per district, one district at a time, every piece to every salon."""
    salons = active_salons(services, vocab=VOCABULARY, min_per_month=params.min_salon_per_month)
    points = surface.set_geometry(surface.geometry.centroid)  # the pieces' centroids (no mask)
    out = {}
    for code, rows in points.groupby("district_code"):
        nearest = np.full(len(rows), np.inf)
        for salon in salons.geometry:
            nearest = np.minimum(nearest, rows.geometry.distance(salon).to_numpy())
        covered = nearest * params.detour_factor <= params.salon_walk_m
        elderly = rows["elderly"].fillna(0).to_numpy()
        out[code] = elderly[covered].sum() / elderly.sum() if elderly.sum() > 0 else np.nan
    return pd.Series(out)


def timed(runs: int, fn):
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    if args.store is None:
        from karte.build import Inputs, build_demo
        from karte.settings import REPO_DATA
        from karte.store import GeoPackageStore

        args.store = Path(tempfile.mkdtemp()) / "karte.gpkg"
        build_demo(GeoPackageStore(args.store), Inputs.shipped(REPO_DATA), seed=2026)
    store = open_store(args.store)
    L = {name: store.read(name) for name in LAYERS}
    params = AnalysisParams()
    venues = candidate_venues({"shelters": L["shelters"], "emergency_sites": L["emergency_sites"]},
                              name_pattern={"shelters": None})

    def surface():
        return population_surface(L["small_areas"], jis_mesh(L["small_areas"], level=params.mesh_level))

    def coverage(surf):
        cov = salon_coverage(surf, L["services"], vocab=VOCABULARY, params=params)
        return cov, coverage_by_district(cov, districts=L["districts"])

    def gaps():
        g = evacuation_gaps(L["register"], L["cooperators"], L["shelters"], L["emergency_sites"],
                            vocab=VOCABULARY, params=params)
        return g, gaps_by_district(g, districts=L["districts"])

    rows = {}
    rows["surface (1/8 mesh)"], surf = timed(args.runs, surface)
    rows["coverage"], (cov, table) = timed(args.runs, lambda: coverage(surf))
    rows["gaps"], (g, _) = timed(args.runs, gaps)
    rows["suggestions"], sug = timed(args.runs, lambda: suggest_supporters(
        L["register"], L["cooperators"], vocab=VOCABULARY, params=params))
    rows["sites (k=10)"], sites = timed(args.runs, lambda: site_salons(cov, venues, k=10, params=params))
    rows["ranking"], _ = timed(args.runs, lambda: outreach_priority(outreach_units(cov, g)))
    naive_times, naive = timed(args.runs, lambda: naive_coverage(surf, L["services"], params))

    same = np.allclose(naive.reindex(table.index).to_numpy(dtype=float),
                       table["coverage_elderly"].to_numpy(dtype=float), equal_nan=True)
    print(f"analysis of the whole city: {len(L['districts'])} districts, {len(surf)} surface pieces, "
          f"{len(L['register'])} support-needers, {len(L['cooperators'])} cooperators "
          f"({args.runs} runs; {os.cpu_count()} CPUs, load average at the end "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())})")
    for name, times in rows.items():
        print(f"  {name:20s} median {statistics.median(times):7.3f} s   "
              f"min {min(times):.3f}  max {max(times):.3f}")
    print(f"  ({len(sug)} suggestions, {len(sites)} of {len(venues)} venues by {sites['method'].iloc[0]})")
    med, base = statistics.median(rows["coverage"]), statistics.median(naive_times)
    print(f"baseline: naive per-district coverage median {base:.3f} s; "
          f"coverage / naive = {med / base:.3f} ({base / med:.0f}x faster); same answer: {same}")
    if not same:
        raise SystemExit("the naive and the fast coverage disagree")


if __name__ == "__main__":
    main()
