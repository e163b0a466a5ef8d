"""Benchmark: a full Aomori city demo build, and its main steps.

    .venv/bin/python bench/build.py [--runs 7]

Prints the median (and min/max) wall time of the whole build and of each step over several runs,
each into a fresh GeoPackage. Baseline in the same run: reading the raw boundary GeoJSON alone
(the floor any build must pay), so the total can be read as a ratio to it.

History (issue 12): the same runs also time a build that keeps no history at all against one into
a store already holding ten fiscal years of history for its 42 districts (nine earlier years and
the one it replaces: 430 rows read, merged and written back), alternating the two, and print the
ratio of their medians and the median of the ratios of each pair (the target: at most 1.10; the
pairs alternate which build goes first, so a load that comes and goes weighs on both), the same
ratio in CPU time of this process (what other processes on a shared machine disturb least), and
the history step's own share of the build.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyogrio

from karte.build import Inputs, build_demo
from karte.domain.history import HistoryLayer
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

#: Years of history the "with history" build finds in its store (including the one it rewrites).
HISTORY_YEARS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    inputs = Inputs.shipped(REPO_DATA)
    totals, steps, baseline = [], {}, []
    without, with_history, pairs, cpu_without, cpu_with = [], [], [], [], []
    build_demo(GeoPackageStore(_fresh()), inputs, seed=2026)  # warm-up
    template = GeoPackageStore(_fresh())  # ten years of history to start the "with" builds from
    build_demo(template, inputs, seed=2026, history_years=HISTORY_YEARS - 1, plans=False)
    ten_years = template.read(HistoryLayer.HISTORY)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pyogrio.read_dataframe(inputs.boundaries)
        baseline.append(time.perf_counter() - t0)
        store = GeoPackageStore(_fresh())
        t0 = time.perf_counter()
        result = build_demo(store, inputs, seed=2026)
        totals.append(time.perf_counter() - t0)
        for name, sec in result.timings.items():
            steps.setdefault(name, []).append(sec)
        # the history's cost: no history at all, against ten years of it (same inputs, no plan layers)
        order = (False, True) if len(pairs) % 2 == 0 else (True, False)
        pair, cpu = {}, {}
        for keep in order:
            store = GeoPackageStore(_fresh())
            if keep:
                store.write({str(HistoryLayer.HISTORY): ten_years})
            t0, c0 = time.perf_counter(), time.process_time()
            build_demo(store, inputs, seed=2026, history_years=0, plans=False, keep_history=keep)
            pair[keep], cpu[keep] = time.perf_counter() - t0, time.process_time() - c0
            if keep:
                assert len(store.read(HistoryLayer.HISTORY)) == len(ten_years)
        without.append(pair[False])
        with_history.append(pair[True])
        pairs.append(pair[True] / pair[False])
        cpu_without.append(cpu[False])
        cpu_with.append(cpu[True])
    med = statistics.median(totals)
    base = statistics.median(baseline)
    print(f"full city build ({len(result.kartes)} districts, {args.runs} runs)")
    print(f"  total            median {med:7.3f} s   min {min(totals):.3f}  max {max(totals):.3f}")
    for name, values in steps.items():
        print(f"  {name:16s} median {statistics.median(values):7.3f} s")
    print(f"baseline: read boundary GeoJSON median {base:.3f} s; build / baseline = {med / base:.1f}x")
    a, b = statistics.median(without), statistics.median(with_history)
    print(
        f"history: build without history median {a:.3f} s; with {HISTORY_YEARS} years of history for "
        f"{len(result.kartes)} districts ({len(ten_years)} rows) median {b:.3f} s; ratio of medians "
        f"{b / a:.3f}, median of the pairs' ratios {statistics.median(pairs):.3f} (target <= 1.10)"
    )
    ca, cb = statistics.median(cpu_without), statistics.median(cpu_with)
    print(f"history, CPU time of the build process (steadier on a shared machine): without {ca:.3f} s, "
          f"with {cb:.3f} s, ratio {cb / ca:.3f}")
    history_step = statistics.median(steps["history"])
    print(f"history step of the demo build: median {history_step:.3f} s, "
          f"{history_step / med:.1%} of the build")


def _fresh() -> Path:
    return Path(tempfile.mkdtemp()) / "karte.gpkg"


if __name__ == "__main__":
    main()
