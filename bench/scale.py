"""Benchmark: the analyses of a synthetic nation on Dask, 1 and 2 workers (issue 18, item 5).

    .venv/bin/python bench/scale.py [--scale 1.0] [--runs 3] [--workers 1,2] [--seed 2026]

Builds a **synthetic** nation in memory: the prefecture's 4,385 real small areas (2015 census)
with the shipped stand-in districts and the demo's synthetic register, cooperators and services,
copied 46 times side by side (each copy shifted east/north and given its own prefecture digits,
``01…47``), about 200,000 small areas, 1,840 municipalities and 1,000,000 register rows at
``--scale 1``; ``--scale 0.05`` builds 2 copies, and a scale under one copy (0.0217) a random
selection of the prefecture's municipalities. Shelters and emergency sites are the real GSI
ones of Aomori city plus synthetic ones at a share of the small areas elsewhere. Nothing of it is
real beyond the boundaries and census counts: every row it makes is labelled synthetic.

Then runs :func:`karte.analyse.analyse_on_dask` on a ``LocalCluster`` of 1 and of 2 single-threaded
worker processes (``--runs`` times each; cluster start-up not timed) and prints: wall time
(median, min, max), throughput (municipalities/s, rows/s: small areas + register rows), each
worker's peak memory, the scaling ratio (2 workers ÷ 1), the machine load (``os.getloadavg``)
before and after each run, and a capacity estimate for the whole country (1,741 municipalities)
on N workers. The 1- and 2-worker results are checked to be equal.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.params import AnalysisParams
from karte.analyse import Run, analyse_on_dask, dask_client, partition, result_layers

# the synthetic prefecture is the prefecture demo's (``karte demo --scope prefecture``)
from karte.demo_prefecture import LAYERS, PREFECTURE_DISTRICTS, stack
from karte.demo_prefecture import prefecture_layers as prefecture
from karte.domain.layers import MUNICIPALITY

#: Copies of the prefecture in a whole synthetic nation (46 × 4,385 ≈ 200,000 small areas).
NATION_COPIES = 46
#: Municipalities of Japan (2024), for the capacity estimate.
NATION_MUNICIPALITIES = 1741


# --- the synthetic nation (the prefecture: karte.demo_prefecture.prefecture_layers) -------------

def some_municipalities(layers: dict[str, gpd.GeoDataFrame], areas: int, *,
                        seed: int) -> dict[str, gpd.GeoDataFrame]:
    """``layers`` cut to municipalities drawn at random (seeded: large and small alike) until they
    hold at least ``areas`` small areas."""
    sizes = layers["small_areas"].groupby(MUNICIPALITY).size()
    sizes = sizes.iloc[np.random.default_rng(seed).permutation(len(sizes))]
    keep = set(sizes.index[: int(np.searchsorted(sizes.cumsum().to_numpy(), areas)) + 1])
    return {name: frame[frame[MUNICIPALITY].isin(keep)].reset_index(drop=True)
            for name, frame in layers.items()}


def prefecture_areas() -> pd.DataFrame:
    """The prefecture's small areas (key codes only: the scale's reference)."""
    return pd.read_csv(PREFECTURE_DISTRICTS, dtype=str, usecols=["key_code"])


def nation(base: dict[str, gpd.GeoDataFrame], copies: int) -> dict[str, gpd.GeoDataFrame]:
    """``copies`` copies of the prefecture ``base`` side by side (a grid, 10 km apart), copy k with
    prefecture digits ``01``, ``03``… (``02`` is the original) in every code and id."""
    minx, miny, maxx, maxy = base["small_areas"].total_bounds
    width, height = maxx - minx + 10_000, maxy - miny + 10_000
    columns = math.ceil(math.sqrt(copies))
    prefixes = ["02"] + [f"{p:02d}" for p in range(1, 48) if p != 2]
    out: dict[str, list] = {name: [] for name in LAYERS}
    for k in range(copies):
        pref = prefixes[k]
        dx, dy = (k % columns) * width, (k // columns) * height
        for name, frame in base.items():
            out[name].append(_copy(frame, pref, dx, dy))
    return {name: stack(frames, base[name].crs) for name, frames in out.items()}


def _copy(frame: gpd.GeoDataFrame, pref: str, dx: float, dy: float) -> gpd.GeoDataFrame:
    out = frame.copy()
    if pref == "02":
        return out
    out[MUNICIPALITY] = pref + out[MUNICIPALITY].str[2:]
    if "key_code" in out.columns:
        out["key_code"] = pref + out["key_code"].astype(str).str[2:]
    for col, lead in (("person_id", 1), ("cooperator_id", 1), ("service_id", 1), ("shelter_id", 2),
                      ("site_id", 2)):
        if col in out.columns:
            ids = out[col].astype(str)
            out[col] = ids.str[:lead] + pref + ids.str[lead + 2:]
    if "supporter_ids" in out.columns:
        out["supporter_ids"] = out["supporter_ids"].str.replace(r"(^|;)C02", rf"\1C{pref}", regex=True)
    out["geometry"] = shapely.transform(out.geometry.to_numpy(), lambda xy: xy + np.array([dx, dy]))
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs)


# --- the run --------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident memory (MB); run on each worker."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(parts, params: AnalysisParams, workers: int) -> dict:
    with dask_client(workers=workers) as client:
        client.run(lambda: None)  # every worker up before the clock starts
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        results = analyse_on_dask(client, parts, params)
        seconds = time.perf_counter() - t0
        load_after = os.getloadavg()
        memory = sorted(client.run(peak_rss_mb).values())
    cpu: dict[str, float] = {}
    for r in results.values():
        cpu[r.worker] = cpu.get(r.worker, 0.0) + r.cpu_seconds
    return {"seconds": seconds, "results": results, "memory": memory, "load_before": load_before,
            "load_after": load_after, "task_seconds": sum(r.seconds for r in results.values()),
            "cpu": sorted(cpu.values(), reverse=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="share of the synthetic nation (1 = 46 prefecture copies, ~200,000 small areas)")
    ap.add_argument("--runs", type=int, default=3, help="runs per worker count (median reported)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    copies = max(1, round(NATION_COPIES * args.scale))

    t0 = time.perf_counter()
    base = prefecture(seed=args.seed)
    if NATION_COPIES * args.scale < 1:  # less than one prefecture: some of its municipalities
        base = some_municipalities(base, round(len(base["small_areas"]) * NATION_COPIES * args.scale),
                                   seed=args.seed)
    layers = nation(base, copies)
    share = len(layers["small_areas"]) / (NATION_COPIES * len(prefecture_areas()))
    built = time.perf_counter() - t0
    params = AnalysisParams()
    parts = partition(layers, params=params)
    areas, people = len(layers["small_areas"]), len(layers["register"])
    rows = areas + people
    print(f"synthetic nation (SYNTHETIC: real 2015 small areas of Aomori copied {copies}×; register, "
          f"cooperators, services and most shelters synthetic), built in {built:.1f} s")
    print(f"  {len(parts):,} municipalities, {areas:,} small areas, {people:,} register rows, "
          f"{len(layers['cooperators']):,} cooperators, {len(layers['services']):,} services; "
          f"{os.cpu_count()} cores; python {sys.version.split()[0]}; driver peak {peak_rss_mb():.0f} MB")

    table, reference = {}, None
    for n in counts:
        runs = []
        for i in range(args.runs):
            got = run_once(parts, params, n)
            print(f"  {n} worker(s) run {i + 1}: {got['seconds']:.1f} s, "
                  f"task time {got['task_seconds']:.1f} s, "
                  f"CPU s per worker {', '.join(f'{c:.1f}' for c in got['cpu'])}, "
                  f"load {_load(got['load_before'])} -> {_load(got['load_after'])}, "
                  f"peak MB per worker {', '.join(f'{m:.0f}' for m in got['memory'])}", flush=True)
            same = _layers(got["results"], params)
            if reference is None:
                reference = same
            elif not all(reference[k].equals(same[k]) for k in reference):
                print("  !! results differ between runs")
                return 1
            got.pop("results")
            runs.append(got)
        table[n] = runs

    print("\nworkers  wall s (median [min-max])  municipalities/s  rows/s   peak MB/worker"
          "  load before->after")
    median = {}
    for n, runs in table.items():
        secs = [r["seconds"] for r in runs]
        median[n] = statistics.median(secs)
        mem = max(max(r["memory"]) for r in runs)
        print(f"{n:>7}  {median[n]:8.1f} [{min(secs):.1f}-{max(secs):.1f}]"
              f"  {len(parts) / median[n]:16.2f}  {rows / median[n]:7.0f}  {mem:14.0f}"
              f"  {_load(runs[0]['load_before'])} -> {_load(runs[-1]['load_after'])}")
    one = busiest = 1.0
    if 1 in median and 2 in median:
        ratio = median[1] / median[2]
        print(f"\nscaling ratio (2 workers ÷ 1, throughput): {ratio:.2f}× (target ≥ 1.5× on 2 free cores)")
        # the same on free cores: the work is CPU-bound, so a run lasts as long as its busiest
        # worker's CPU time (the tasks' CPU seconds do not depend on the machine's load)
        one = statistics.median(sum(r["cpu"]) for r in table[1])
        busiest = statistics.median(max(r["cpu"]) for r in table[2])
        print(f"by CPU time (what free cores would give): 1 worker {one:.1f} CPU-s, busiest of 2 workers "
              f"{busiest:.1f} CPU-s -> {one / busiest:.2f}×")
    base = min(median)
    per_row = median[base] * base / rows  # worker-seconds per row, as measured (a loaded machine)
    efficiency = (median[1] / median[2]) / 2 if 1 in median and 2 in median else 1.0
    cpu_row = statistics.median(sum(r["cpu"]) for r in table[base]) / rows  # CPU-seconds per row
    cpu_eff = (one / busiest) / 2 if 1 in median and 2 in median else 1.0
    nation_rows = round(rows / share)
    print(f"\ncapacity estimate, whole country ({NATION_MUNICIPALITIES:,} municipalities, "
          f"~{nation_rows:,} rows: small areas + register):")
    print(f"  as measured here: {per_row * 1e3:.2f} worker-ms per row, {efficiency:.0%} parallel efficiency;"
          f" on free cores: {cpu_row * 1e3:.2f} CPU-ms per row, {cpu_eff:.0%} efficiency")
    print("  workers   as measured   free cores")
    for n in (1, 2, 8, 32, 128):
        eff, free = (1.0, 1.0) if n == 1 else (efficiency, cpu_eff)
        print(f"  {n:>7}  {nation_rows * per_row / (n * eff) / 60:8.1f} min  "
              f"{nation_rows * cpu_row / (n * free) / 60:8.1f} min")
    return 0


def _layers(results, params) -> dict:
    return result_layers(Run(results, 0.0, "", 0), params)


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
