"""Benchmark: the PostGIS store against the GeoPackage store, in the same run.

    eval "$(KARTE_PG_DATABASE=karte_bench bash scripts/setup_postgis.sh)"
    .venv/bin/python bench/store.py --url "$KARTE_TEST_APP_DATABASE_URL" [--runs 5] [--pref-runs 3]

Aomori city (564 small areas, 42 districts), per store, interleaved run by run:

* **load**: write the whole demo (every layer, as ``karte demo`` leaves it) into the store;
* **build**: ``rebuild``, i.e. read the register, cooperators and services back from the store,
  rebuild every karte and write every layer again.

Then the whole prefecture on PostGIS (and on GeoPackage for reference): 4,385 real small areas
(``data/boundaries/aomori_pref_02_small_areas_2015_estat_lod.geojson``), districts of at least
5,500 people cut within each municipality (Aomori city keeps its stand-in districts), and the
synthetic register, cooperators and services generated at the demo's rates: ``build_demo`` (load)
then ``rebuild`` (build). Only Aomori city's shelters are shipped, so the prefecture's register
is assigned to those (the store work does not depend on it). Prints medians with min and max,
and the ratios PostGIS/GeoPackage and prefecture/city (all measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from karte.build import Inputs, build_demo, rebuild
from karte.settings import REPO_DATA
from karte.sources import read_small_areas
from karte.store import GeoPackageStore
from karte.store.postgis import PostGISStore

PREFECTURE = REPO_DATA / "boundaries" / "aomori_pref_02_small_areas_2015_estat_lod.geojson"
SEED = 2026


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.3f} s   (min {min(values):.3f}, max {max(values):.3f})"


def prefecture_inputs(folder: Path) -> Inputs:
    """Inputs for the whole prefecture, with a district mapping written to ``folder``."""
    small = read_small_areas(PREFECTURE)
    city = pd.read_csv(REPO_DATA / "districts" / "aomori_standin_districts.csv", dtype=str)
    rows = [city[city["key_code"].isin(small["key_code"])]]
    rest = small[~small["key_code"].isin(city["key_code"])].sort_values("key_code")
    for muni, areas in rest.groupby(rest["key_code"].str[:5], sort=True):
        town = str(areas["fullname"].iloc[0]).split("/")[-2]
        label, people, codes = 1, 0.0, []
        for key, pop in zip(areas["key_code"], areas["population"].fillna(0), strict=True):
            codes.append((key, label))
            people += float(pop)
            if people >= 5500:
                label, people = label + 1, 0.0
        last = label if people > 0 else label - 1  # fold a small remainder into the last district
        rows.append(pd.DataFrame({
            "key_code": [k for k, _ in codes],
            "district_code": [f"M{muni}-{min(n, max(last, 1)):02d}" for _, n in codes],
            "district_name": [f"（仮）{town}{min(n, max(last, 1))}地区" for _, n in codes],
        }))
    mapping = pd.concat(rows, ignore_index=True)
    path = folder / "prefecture_districts.csv"
    mapping.to_csv(path, index=False)
    print(f"prefecture: {len(small):,} small areas, {mapping['district_code'].nunique()} districts, "
          f"population {int(small['population'].sum()):,}")
    return Inputs.shipped(REPO_DATA, boundaries=PREFECTURE, district_map=path)


def city(url: str, runs: int, tmp: Path) -> dict[str, float]:
    """Times the city demo on both stores; returns the PostGIS medians (load, build)."""
    inputs = Inputs.shipped(REPO_DATA)
    demo_store = GeoPackageStore(tmp / "demo.gpkg")
    build_demo(demo_store, inputs, seed=SEED)
    demo = {name: demo_store.read(name) for name in demo_store.layers()}
    pg = PostGISStore(url)
    times = {(kind, step): [] for kind in ("gpkg", "postgis") for step in ("load", "build", "total")}
    store_steps = {kind: {"read_store": [], "write_store": []} for kind in ("gpkg", "postgis")}
    for run in range(runs + 1):  # the first run warms caches and the pool, and is not counted
        for kind in ("gpkg", "postgis"):
            store = pg if kind == "postgis" else GeoPackageStore(tmp / f"run{run}.gpkg")
            load, _ = timed(lambda store=store: store.write(demo))
            build, result = timed(lambda store=store: rebuild(store, inputs, seed=SEED))
            if run == 0:
                continue
            times[(kind, "load")].append(load)
            times[(kind, "build")].append(build)
            times[(kind, "total")].append(load + build)
            for step in ("read_store", "write_store"):
                store_steps[kind][step].append(result.timings[step])
    pg.close()
    reg = len(demo["register"])
    print(f"Aomori city demo: {len(result.kartes)} districts, register {reg:,}, "
          f"cooperators {len(demo['cooperators']):,}; {runs} runs each, interleaved")
    for step in ("load", "build", "total"):
        g, p = times[("gpkg", step)], times[("postgis", step)]
        print(f"  {step:6s} GeoPackage {summary(g)}")
        ratio = statistics.median(p) / statistics.median(g)
        print(f"  {'':6s} PostGIS    {summary(p)}   PostGIS/GeoPackage {ratio:.2f}x")
    for kind in ("gpkg", "postgis"):
        steps = ", ".join(f"{s} {statistics.median(v):.3f} s" for s, v in store_steps[kind].items())
        print(f"  inside build, {kind:7s}: {steps}")
    return {step: statistics.median(times[("postgis", step)]) for step in ("load", "build")}


def prefecture(url: str, runs: int, tmp: Path, city_pg: dict[str, float]) -> None:
    inputs = prefecture_inputs(tmp)
    pg = PostGISStore(url)
    out: dict[str, tuple] = {kind: ([], [], {"write_store": [], "read_store": []}, None)
                             for kind in ("postgis", "gpkg")}
    for run in range(runs):  # interleaved, so load on the machine hits both stores alike
        for kind in ("postgis", "gpkg"):
            loads, builds, steps, _ = out[kind]
            store = pg if kind == "postgis" else GeoPackageStore(tmp / f"pref{run}.gpkg")
            load, result = timed(lambda store=store: build_demo(store, inputs, seed=SEED))
            build, again = timed(lambda store=store: rebuild(store, inputs, seed=SEED))
            loads.append(load)
            builds.append(build)
            steps["write_store"].append(again.timings["write_store"])
            steps["read_store"].append(again.timings["read_store"])
            out[kind] = (loads, builds, steps, result)
    result = out["postgis"][3]
    reg = result.store.read("register")
    pg.close()
    print(f"Aomori prefecture: {len(result.kartes)} districts, register {len(reg):,} "
          f"(synthetic), {runs} run(s) each, interleaved")
    for kind, label in (("postgis", "PostGIS"), ("gpkg", "GeoPackage")):
        loads, builds, steps, _ = out[kind]
        print(f"  {label:10s} build_demo (generate + load) {summary(loads)}")
        print(f"  {'':10s} rebuild (read, build, write)  {summary(builds)}   "
              f"store read {statistics.median(steps['read_store']):.3f} s, "
              f"store write {statistics.median(steps['write_store']):.3f} s")
    pg_load, pg_build = (statistics.median(v) for v in out["postgis"][:2])
    gp_load, gp_build = (statistics.median(v) for v in out["gpkg"][:2])
    print(f"  PostGIS/GeoPackage: build_demo {pg_load / gp_load:.2f}x, rebuild {pg_build / gp_build:.2f}x")
    print(f"  prefecture/city on PostGIS: rebuild {pg_build / city_pg['build']:.1f}x "
          f"(city rebuild median {city_pg['build']:.3f} s, same run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("KARTE_TEST_APP_DATABASE_URL")
                        or os.environ.get("KARTE_DATABASE_URL"),
                        help="postgresql+psycopg:// URL of the application role karte_app")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pref-runs", type=int, default=3)
    parser.add_argument("--no-prefecture", action="store_true")
    args = parser.parse_args()
    if not args.url:
        parser.error("no database: pass --url or set KARTE_TEST_APP_DATABASE_URL")
    start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        city_pg = city(args.url, args.runs, Path(tmp))
        if not args.no_prefecture:
            prefecture(args.url, args.pref_runs, Path(tmp), city_pg)
    print(f"machine: {os.cpu_count()} CPUs, load average {start:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end (other work on the machine slows both stores alike)")


if __name__ == "__main__":
    main()
