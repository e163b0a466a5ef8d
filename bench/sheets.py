"""Benchmark: printed district sheets (地区シート), the whole-city batch of each edition.

    .venv/bin/python bench/sheets.py [--runs 5] [--store karte.gpkg]

Builds the demo into a temporary folder (unless --store is given), then times
``render_batch`` for every district: store read, salon-coverage analysis (not cached between
runs), access log, rendering on the worker processes and the merged PDF with its contents.
One core and two cores are measured in the same run, alternating, so both see the same machine.

Prints per edition and core count the median wall seconds per batch, per sheet and per page,
the CPU seconds per page (this process and its workers: what the batch costs whatever else the
machine is doing), the pages and kilobytes per sheet, the one-core/two-core ratio, and the
ratio to QGIS Atlas's 0.08 s per A4 page (a 40-page district atlas exported in 3.2 s on one core
of this kind of machine, from the issue; QGIS is not installed here, so that figure is quoted,
not measured). The load average is printed before and after: other work on the machine makes
wall times longer, CPU times much less so.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from karte.render.sheets import clear_analysis_cache, cli_access, render_batch
from karte.store import GeoPackageStore

QGIS_ATLAS_S_PER_PAGE = 3.2 / 40


def _demo_store() -> GeoPackageStore:
    from karte.build import Inputs, build_demo
    from karte.settings import REPO_DATA

    store = GeoPackageStore(Path(tempfile.mkdtemp()) / "karte.gpkg")
    build_demo(store, Inputs.shipped(REPO_DATA), seed=2026)
    return store


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _batch(store, edition: str, workers: int):
    """One whole-city batch from a cold analysis: (wall s, CPU s, result)."""
    clear_analysis_cache()
    out = Path(tempfile.mkdtemp())
    c0, t0 = _cpu(), time.perf_counter()
    result = render_batch(store, None, edition=edition, access=cli_access("bench"), out=out,
                          workers=workers)
    return time.perf_counter() - t0, _cpu() - c0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    store = GeoPackageStore(args.store) if args.store else _demo_store()
    _batch(store, "public", 2)  # warm-up: imports, font parsing, page cache
    load = os.getloadavg()
    print(f"whole-city batch, median of {args.runs} runs; {os.cpu_count()} cores; load average "
          f"{load[0]:.1f} before")
    print("QGIS Atlas reference (issue 7, not measured here: QGIS is not installed): "
          f"{QGIS_ATLAS_S_PER_PAGE:.3f} s per A4 page on one core")
    print(f"{'edition':13s} {'cores':>5s} {'procs':>5s} {'s/batch':>8s} {'s/sheet':>8s} "
          f"{'s/page':>7s} {'CPU s/page':>10s} {'pages/sheet':>11s} {'KB/sheet':>8s} "
          f"{'merged MB':>9s} {'1c/2c':>6s} {'vs QGIS':>8s}")
    for edition in ("public", "confidential", "drill"):
        runs: dict[int, list] = {2: [], 1: []}
        for _ in range(args.runs):
            for workers in (2, 1):  # alternate, so both see the same load
                runs[workers].append(_batch(store, edition, workers))
        medians = {w: statistics.median(r[0] for r in rs) for w, rs in runs.items()}
        for workers in (2, 1):
            wall = medians[workers]
            cpu = statistics.median(r[1] for r in runs[workers])
            res = runs[workers][-1][2]
            n = len(res.pages)
            pages = sum(res.pages.values())
            kb = statistics.mean(res.sizes.values()) / 1024
            ratio = f"{medians[1] / medians[2]:6.2f}" if workers == 2 else f"{'':6s}"
            print(f"{edition:13s} {workers:5d} {res.processes:5d} {wall:8.2f} {wall / n:8.3f} "
                  f"{wall / pages:7.4f} {cpu / pages:10.4f} {pages / n:11.1f} {kb:8.0f} "
                  f"{res.merged.stat().st_size / 1e6:9.1f} {ratio} "
                  f"{QGIS_ATLAS_S_PER_PAGE / (wall / pages):7.1f}x")
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} after. 'vs QGIS': QGIS Atlas's s/page ÷ ours (wall); "
          "above 1 is faster than QGIS. '1c/2c': one core's wall time ÷ two cores'.")


if __name__ == "__main__":
    main()
