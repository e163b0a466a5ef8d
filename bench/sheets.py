"""Benchmark: printed district sheets (地区シート), the whole-city batch of each edition.

    .venv/bin/python bench/sheets.py [--runs 5] [--store karte.gpkg]

Builds the demo into a temporary folder (unless --store is given), then times
``render_batch`` for every district: store read, salon-coverage analysis (not cached between
runs), access log, rendering on the worker processes and the merged PDF with its contents.
Prints per edition the median seconds per sheet and per page on both cores and on one, the
pages and bytes per sheet, and the ratio to QGIS Atlas's 0.08 s per A4 page (a 40-page district
atlas exported in 3.2 s on one core of this kind of machine).
"""

from __future__ import annotations

import argparse
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


def _batch(store, edition: str, workers: int) -> tuple[float, dict]:
    clear_analysis_cache()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(stage, done, total):
        if done == total:
            stages[stage] = time.perf_counter() - t0

    out = Path(tempfile.mkdtemp())
    result = render_batch(store, None, edition=edition, access=cli_access("bench"), out=out,
                          workers=workers, progress=progress)
    total = time.perf_counter() - t0
    return total, {"result": result, "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    store = GeoPackageStore(args.store) if args.store else _demo_store()
    _batch(store, "public", 2)  # warm-up: imports, font parsing, page cache
    print(f"whole-city batch, median of {args.runs} runs "
          f"(QGIS Atlas reference: {QGIS_ATLAS_S_PER_PAGE:.3f} s/page, one core)")
    print(f"{'edition':13s} {'cores':>5s} {'s/batch':>8s} {'s/sheet':>8s} {'s/page':>7s} "
          f"{'pages/sheet':>11s} {'KB/sheet':>8s} {'merged MB':>9s} {'vs QGIS':>8s}   stages (s)")
    for edition in ("public", "confidential", "drill"):
        for workers in (2, 1):
            times, last = [], None
            for _ in range(args.runs):
                seconds, last = _batch(store, edition, workers)
                times.append(seconds)
            res = last["result"]
            n = len(res.pages)
            pages = sum(res.pages.values())
            med = statistics.median(times)
            per_page = med / pages
            kb = statistics.mean(res.sizes.values()) / 1024
            stages = "  ".join(f"{k} {v:.2f}" for k, v in last["stages"].items())
            print(f"{edition:13s} {workers:5d} {med:8.2f} {med / n:8.3f} {per_page:7.4f} "
                  f"{pages / n:11.1f} {kb:8.0f} {res.merged.stat().st_size / 1e6:9.1f} "
                  f"{QGIS_ATLAS_S_PER_PAGE / per_page:7.1f}x   {stages}")


if __name__ == "__main__":
    main()
