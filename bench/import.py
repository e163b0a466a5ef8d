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
    times: dict[str, list[float]] = {"read": [], "coords": [], "full": [], "dry": []}
    for run in range(args.runs + 1):                        # the first run warms caches, not counted
        t0 = time.perf_counter()
        pd.read_csv(csv_path, encoding="cp932", dtype=str, keep_default_na=False)
        t1 = time.perf_counter()
        target = folder / f"coords{run}.gpkg"
        shutil.copy(base, target)
        plain = import_file(GeoPackageStore(target), "register", coords_path,
                            geocoder=TownGeocoder.from_file())
        t2 = time.perf_counter()
        target = folder / f"run{run}.gpkg"
        shutil.copy(base, target)
        store = GeoPackageStore(target)
        import_file(store, "register", csv_path, geocoder=TownGeocoder.from_file(), dry_run=True)
        t3 = time.perf_counter()
        # a fresh geocoder each time: no cached addresses
        report = import_file(store, "register", csv_path, geocoder=TownGeocoder.from_file())
        t4 = time.perf_counter()
        assert report.written and report.rows == args.rows, report.format()
        assert plain.written and plain.precision == {"exact": args.rows}, plain.format()
        if run:
            for key, value in (("read", t1 - t0), ("coords", t2 - t1), ("dry", t3 - t2), ("full", t4 - t3)):
                times[key].append(value)
    shutil.rmtree(folder, ignore_errors=True)
    full = statistics.median(times["full"])
    print(f"import {args.rows:,}-row register CSV (CP932) with offline geocoding, "
          f"{args.runs} runs, interleaved")
    print(f"  import (validate, geocode, diff, kartes, atomic write)  {summary(times['full'])}"
          f"   {args.rows / full:,.0f} rows/s")
    print(f"  validation only (--dry-run)                             {summary(times['dry'])}")
    print("  baselines, same run:")
    print(f"  same rows with 緯度/経度 (no geocoding), full import      {summary(times['coords'])}"
          f"   import/this {full / statistics.median(times['coords']):.2f}x")
    print(f"  pandas.read_csv of the same file (read only)            {summary(times['read'])}"
          f"   import/this {full / statistics.median(times['read']):.1f}x")
    print(f"  location precision: {report.precision}")


if __name__ == "__main__":
    main()
