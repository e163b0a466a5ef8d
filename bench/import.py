"""Benchmark: importing a 20,000-row support-need register (CP932 CSV) with offline geocoding.

    .venv/bin/python bench/import.py [--rows 20000] [--runs 5]

Builds the Aomori demo store once, writes a fictional register whose addresses are spread over the
shipped town points in the forms coordinators type (一丁目 / 1丁目 / 1-2-3, 大字・字, full-width
digits, era dates), then times ``import_file`` (read, validate, geocode, place, diff, reassemble
the kartes, one atomic write) into a fresh copy of the store, several times, and prints the
median. The validation alone (``dry_run``) is timed beside it.

Baselines, measured in the same run and interleaved with it (so machine load hits all alike):

* the same file read by ``pandas.read_csv`` (decoding and splitting only: the floor);
* the same register with latitude/longitude columns (the whole import without geocoding).

The ratios against them show what validation and geocoding cost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from karte.build import Inputs, build_demo
from karte.importing import import_file
from karte.importing.geocode import TOWN_POINTS, TownGeocoder
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

HEADER = ["番号", "氏名", "フリガナ", "住所", "生年月日", "要介護度", "高齢者のみ世帯", "同意", "同意日",
          "個別避難計画", "移動"]
KANJI = "〇一二三四五六七八九"


def _address(rng: random.Random, point: dict) -> str:
    town, koaza = point["town"], point["koaza"]
    if koaza:
        return f"青森市{town}字{koaza}{rng.randint(1, 300)}"
    if town.endswith("丁目") and rng.random() < 0.5:  # 新町一丁目 -> 新町1-3-7 or 新町１丁目３－７
        base, n = town[:-3], KANJI.index(town[-3])
        if rng.random() < 0.5:
            return f"青森市{base}{n}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        return f"青森県青森市{base}{chr(0xFF10 + n)}丁目{rng.randint(1, 9)}－{rng.randint(1, 9)}"
    return f"青森市{town}{rng.randint(1, 40)}番地{rng.randint(1, 20)}"


def write_register(path: Path, rows: int, seed: int = 7, *, coordinates: bool = False) -> None:
    """The fictional register; ``coordinates`` adds 緯度/経度 (the town point of each address), so
    the importer places rows without geocoding (the same rows, addresses and values otherwise)."""
    rng = random.Random(seed)
    points = json.loads(TOWN_POINTS.read_text(encoding="utf-8"))
    lines = [",".join(HEADER + (["緯度", "経度"] if coordinates else []))]
    for i in range(1, rows + 1):
        year = rng.randint(1927, 1960)
        birth = (f"昭和{year - 1925}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日" if rng.random() < 0.5
                 else f"{year}/{rng.randint(1, 12)}/{rng.randint(1, 28)}")
        point = rng.choice(points)
        cells = [
            f"P{i:06d}", "青森 太郎", "アオモリ タロウ", _address(rng, point), birth,
            rng.choice(["", "要支援1", "要介護２", "要介護3"]), rng.choice(["有", "無", "○", "×"]),
            rng.choice(["同意", "不同意", "未回答", "条例"]), rng.choice(["", "R6.4.1", "2024/5/1"]),
            rng.choice(["作成済", "作成中", "未作成"]), rng.choice(["自立", "車いす", "介助歩行", ""]),
        ]
        if coordinates:
            cells += [f"{float(point['lat']):.6f}", f"{float(point['lng']):.6f}"]
        lines.append(",".join(cells))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.3f} s   (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="karte-bench-import-"))
    base = folder / "base.gpkg"
    build_demo(GeoPackageStore(base), Inputs.shipped(REPO_DATA), seed=2026)
    csv_path, coords_path = folder / "register.csv", folder / "register_coords.csv"
    write_register(csv_path, args.rows)
    write_register(coords_path, args.rows, coordinates=True)
    wall: dict[str, list[float]] = {"read": [], "coords": [], "full": [], "dry": []}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    load = os.getloadavg()
    for run in range(args.runs + 1):                        # the first run warms caches, not counted
        coords_store = GeoPackageStore(shutil.copy(base, folder / f"coords{run}.gpkg"))
        store = GeoPackageStore(shutil.copy(base, folder / f"run{run}.gpkg"))
        steps = {
            "read": lambda: pd.read_csv(csv_path, encoding="cp932", dtype=str, keep_default_na=False),
            "coords": lambda s=coords_store: import_file(s, "register", coords_path,
                                                         geocoder=TownGeocoder.from_file()),
            # a fresh geocoder each time: no cached addresses
            "dry": lambda s=store: import_file(s, "register", csv_path, geocoder=TownGeocoder.from_file(),
                                               dry_run=True),
            "full": lambda s=store: import_file(s, "register", csv_path, geocoder=TownGeocoder.from_file()),
        }
        results = {}
        for key, step in steps.items():
            w0, c0 = time.perf_counter(), time.process_time()
            results[key] = step()
            if run:
                wall[key].append(time.perf_counter() - w0)
                cpu[key].append(time.process_time() - c0)
        report, plain = results["full"], results["coords"]
        assert report.written and report.rows == args.rows, report.format()
        assert plain.written and plain.precision == {"exact": args.rows}, plain.format()
    load = (*load, *os.getloadavg())
    shutil.rmtree(folder, ignore_errors=True)
    full, full_cpu = statistics.median(wall["full"]), statistics.median(cpu["full"])
    print(f"import {args.rows:,}-row register CSV (CP932) with offline geocoding, "
          f"{args.runs} runs, interleaved; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.1f} at start, {load[3]:.1f} at end")
    print(f"  {'':54s}  wall time{'':31s}  CPU time of this process")
    rows = [("import (validate, geocode, diff, kartes, atomic write)", "full"),
            ("validation only (--dry-run)", "dry"),
            ("baseline: same rows with lat/lon columns (no geocoding)", "coords"),
            ("baseline: pandas.read_csv of the same file", "read")]
    for label, key in rows:
        ratio = "" if key in ("full", "dry") else \
            f"   import/this {full / statistics.median(wall[key]):.2f}x wall, " \
            f"{full_cpu / statistics.median(cpu[key]):.2f}x CPU"
        print(f"  {label:54s}  {summary(wall[key])}  median {statistics.median(cpu[key]):6.3f} s{ratio}")
    print(f"  throughput: {args.rows / full:,.0f} rows/s wall, {args.rows / full_cpu:,.0f} rows/s CPU")
    print(f"  location precision: {report.precision}")


if __name__ == "__main__":
    main()
