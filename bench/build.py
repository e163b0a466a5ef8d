"""Benchmark: a full Aomori city demo build, and its main steps.

    .venv/bin/python bench/build.py [--runs 7]

Prints the median (and min/max) wall time of the whole build and of each step over several runs,
each into a fresh GeoPackage. Baseline in the same run: reading the raw boundary GeoJSON alone
(the floor any build must pay), so the total can be read as a ratio to it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyogrio

from karte.build import Inputs, build_demo
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    inputs = Inputs.shipped(REPO_DATA)
    totals, steps, baseline = [], {}, []
    build_demo(GeoPackageStore(Path(tempfile.mkdtemp()) / "warm.gpkg"), inputs, seed=2026)  # warm-up
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pyogrio.read_dataframe(inputs.boundaries)
        baseline.append(time.perf_counter() - t0)
        store = GeoPackageStore(Path(tempfile.mkdtemp()) / "karte.gpkg")
        t0 = time.perf_counter()
        result = build_demo(store, inputs, seed=2026)
        totals.append(time.perf_counter() - t0)
        for name, sec in result.timings.items():
            steps.setdefault(name, []).append(sec)
    med = statistics.median(totals)
    base = statistics.median(baseline)
    print(f"full city build ({len(result.kartes)} districts, {args.runs} runs)")
    print(f"  total            median {med:7.3f} s   min {min(totals):.3f}  max {max(totals):.3f}")
    for name, values in steps.items():
        print(f"  {name:16s} median {statistics.median(values):7.3f} s")
    print(f"baseline: read boundary GeoJSON median {base:.3f} s; build / baseline = {med / base:.1f}x")


if __name__ == "__main__":
    main()
