"""Benchmark: importing a 20,000-row support-need register (CP932 CSV) with offline geocoding.

    .venv/bin/python bench/import.py [--rows 20000] [--runs 5]

Builds the Aomori demo store once, writes a fictional register whose addresses are spread over the
shipped town points in the forms coordinators type (一丁目 / 1丁目 / 1-2-3, 大字・字, full-width
digits, era dates), then times ``import_file`` (read, validate, geocode, place, diff, reassemble
the kartes, one atomic write) into a fresh copy of the store, several times, and prints the
median. The validation alone (``dry_run``) is timed beside it.
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


def write_register(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    points = json.loads(TOWN_POINTS.read_text(encoding="utf-8"))
    lines = [",".join(HEADER)]
    for i in range(1, rows + 1):
        year = rng.randint(1927, 1960)
        birth = (f"昭和{year - 1925}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日" if rng.random() < 0.5
                 else f"{year}/{rng.randint(1, 12)}/{rng.randint(1, 28)}")
        lines.append(",".join([
            f"P{i:06d}", "青森 太郎", "アオモリ タロウ", _address(rng, rng.choice(points)), birth,
            rng.choice(["", "要支援1", "要介護２", "要介護3"]), rng.choice(["有", "無", "○", "×"]),
            rng.choice(["同意", "不同意", "未回答", "条例"]), rng.choice(["", "R6.4.1", "2024/5/1"]),
            rng.choice(["作成済", "作成中", "未作成"]), rng.choice(["自立", "車いす", "介助歩行", ""]),
        ]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="karte-bench-import-"))
    base = folder / "base.gpkg"
    build_demo(GeoPackageStore(base), Inputs.shipped(REPO_DATA), seed=2026)
    csv_path = folder / "register.csv"
    write_register(csv_path, args.rows)
    full, dry = [], []
    for run in range(args.runs + 1):                        # the first run warms caches, not counted
        target = folder / f"run{run}.gpkg"
        shutil.copy(base, target)
        store = GeoPackageStore(target)
        geocoder = TownGeocoder.from_file()                 # a fresh geocoder: no cached addresses
        t0 = time.perf_counter()
        import_file(store, "register", csv_path, geocoder=geocoder, dry_run=True)
        t1 = time.perf_counter()
        report = import_file(store, "register", csv_path, geocoder=TownGeocoder.from_file())
        t2 = time.perf_counter()
        if run:
            dry.append(t1 - t0)
            full.append(t2 - t1)
        assert report.written and report.rows == args.rows, report.format()
    shutil.rmtree(folder, ignore_errors=True)
    print(f"import {args.rows:,}-row register CSV (CP932) with offline geocoding, {args.runs} runs")
    print(f"  import (validate, geocode, diff, kartes, atomic write)  median {statistics.median(full):.3f} s"
          f"   min {min(full):.3f}  max {max(full):.3f}")
    print(f"  validation only (--dry-run)                             median {statistics.median(dry):.3f} s")
    precision = report.precision
    print(f"  location precision: {precision}")


if __name__ == "__main__":
    main()
