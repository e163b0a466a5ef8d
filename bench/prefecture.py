"""Benchmark: the prefecture demo against the city demo on PostGIS, in the same run (issue 18, item 2).

    set -a; . .venv/karte-postgis.env; set +a      # or: eval "$(bash scripts/setup_postgis.sh)"
    .venv/bin/python bench/prefecture.py [--url URL] [--runs 3]

Times, interleaved run by run on the same PostGIS database (so load on the machine hits both alike):

* **city**: ``karte demo`` (``build_demo`` of Aomori city, 564 small areas, 42 districts: real
  boundaries and shelters, synthetic register, cooperators, services, history years, plans and
  supporters) into the store;
* **prefecture**: ``karte demo --scope prefecture`` (``build_prefecture``: 40 municipalities,
  4,385 small areas, 197 districts) into the same store.

Prints each run, the medians with min and max, the steps of the prefecture build, the ratio
prefecture ÷ city (issue 18: at most 8×, the areas' ratio being 4,385 / 564 = 7.8×) and the machine
load (``os.getloadavg``) before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from karte.build import Inputs, build_demo
from karte.demo_prefecture import build_prefecture
from karte.settings import REPO_DATA
from karte.store.postgis import PostGISStore

SEED = 2026
#: issue 18: the prefecture build takes at most this many times the city build
LIMIT = 8.0


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("KARTE_TEST_APP_DATABASE_URL")
                    or os.environ.get("KARTE_DATABASE_URL"),
                    help="postgresql+psycopg:// URL of the application role karte_app (a migrated database)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.url:
        ap.error("no database: pass --url or set KARTE_TEST_APP_DATABASE_URL")
    store = PostGISStore(args.url)
    inputs = Inputs.shipped(REPO_DATA)
    times: dict[str, list[float]] = {"city": [], "prefecture": []}
    steps: dict[str, list[float]] = {}
    print(f"machine: {os.cpu_count()} CPUs, load {_load()} at start; {args.runs} run(s) each, interleaved")
    for run in range(args.runs):
        for kind in ("city", "prefecture"):
            before = _load()
            t0 = time.perf_counter()
            if kind == "city":
                build_demo(store, inputs, seed=SEED)
            else:
                result = build_prefecture(store, seed=SEED)
                for name, secs in result.timings.items():
                    steps.setdefault(name, []).append(secs)
            seconds = time.perf_counter() - t0
            times[kind].append(seconds)
            print(f"  run {run + 1} {kind:10s} {seconds:7.1f} s   load {before} -> {_load()}", flush=True)
    store.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    for kind, values in times.items():
        print(f"{kind:10s} median {med[kind]:7.1f} s (min {min(values):.1f}, max {max(values):.1f})")
    parts = ", ".join(f"{k} {statistics.median(v):.1f} s" for k, v in steps.items())
    print(f"prefecture steps (median): {parts}")
    ratio = med["prefecture"] / med["city"]
    print(f"prefecture ÷ city: {ratio:.2f}× (limit {LIMIT:.0f}×; small areas 4,385 / 564 = 7.8×) -> "
          f"{'OK' if ratio <= LIMIT else 'OVER'}")
    print(f"load at end {_load()}")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
