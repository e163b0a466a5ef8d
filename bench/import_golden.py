"""Golden results of the point imports, to check that a rewrite of the importer changes nothing.

    .venv/bin/python bench/import_golden.py OUT_DIR [--store STORE.gpkg] [--only NAME]

For every sample file in ``docs/import`` (register, cooperators, services, shelters; UTF-8 and
CP932), the 20,000-row bench register (``bench/import.py``'s ``write_register``, seed 7, with and
without coordinates) and a set of bad inputs (bad dates, consent words, missing and duplicate
columns, duplicate ids, bad coordinates, formula cells, a bad encoding, more problems than are
listed), it runs ``import_file(..., dry_run=True)`` and then a real import into a fresh copy of
a demo store (built here with a fixed seed unless ``--store`` names one; imports pass
``allow_mass_delete``, as a sample replaces a whole layer), and writes one canonical JSON per case
to ``OUT_DIR``: the report (every problem and warning with file, row, column and message; rows,
precision, changes, notes) and the resulting layer rows, sorted by id.
``diff -r`` two such folders to compare two versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import shapely

from karte.build import Inputs, build_demo
from karte.domain.errors import InputError
from karte.importing import ImportValidationError, import_file
from karte.importing.geocode import TownGeocoder
from karte.importing.kinds import POINT_KINDS
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

REPO = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 10, 1)
HEADER = ["番号", "氏名", "フリガナ", "住所", "生年月日", "要介護度", "高齢者のみ世帯", "同意", "同意日",
          "個別避難計画", "移動", "支援者", "避難所", "地区", "緯度", "経度"]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_import", REPO / "bench" / "import.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(pid: str, **kw) -> list[str]:
    cells = {"番号": pid, "氏名": "青森 花子", "フリガナ": "アオモリ ハナコ", "住所": "青森市新町一丁目3-7",
             "生年月日": "昭和15年3月2日", "要介護度": "要介護2", "高齢者のみ世帯": "有", "同意": "同意",
             "同意日": "R6.4.1", "個別避難計画": "作成済", "移動": "自立", "支援者": "", "避難所": "",
             "地区": "", "緯度": "", "経度": ""}
    cells.update(kw)
    return [cells[h] for h in HEADER]


def _csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    def quote(c: str) -> str:
        return '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\n') else c
    path.write_bytes(("\r\n".join(",".join(quote(c) for c in r) for r in rows) + "\r\n").encode(encoding))
    return path


def bad_register_rows() -> list[list[str]]:
    rows = [HEADER, _row("P1"), _row("P1"), _row("P3", 地区="Z99"), _row("P4", 生年月日="2027-01-01"),
            _row("P5", 同意=""), _row("P6", 住所="", 緯度="35.68", 経度="139.76"),
            _row("P7", 住所="青森市存在しない町1-2"), _row("P8", 生年月日="昭和15年2月30日"),
            _row("P9", 同意="無"), _row("P10", 氏名=""), _row("P11", 要介護度="要介護9"),
            _row("P12", 高齢者のみ世帯="たぶん"), _row("P13", 住所="", 緯度="40.82"),
            _row("P14", 住所="", 緯度="140.74", 経度="40.82"), _row("P15", 同意="たぶん"),
            _row("P16", 個別避難計画="そのうち"), _row("P17", 移動="空を飛ぶ"),
            _row("P18", 支援者="C9999;C0001"), _row("P19", 避難所="X000"),
            _row("P20", 氏名="=1+2", フリガナ="@SUM(1)"), _row("P21", 住所="東京都千代田区1-1"),
            _row("P22", 住所="弘前市本町1"), _row("P23", 生年月日="令和1年4月1日"),
            _row("P24", 生年月日="1890/1/1"), _row("P25", 同意日="2030/1/1"),
            _row("P26", 生年月日="", 同意="", 氏名="", 番号=""), _row("P27", 住所=""),
            _row("P28", 住所="", 緯度="abc", 経度="140.7"), _row("P29", 生年月日="S15.3.2", 同意="不同意"),
            _row("P30", 地区="T01"), _row("P31", 住所="青森市新町九丁目1"),
            _row("P32", 住所="", 緯度="40.6", 経度="141.5"), _row("Ｐ３３", 要介護度="要支援３"),
            ["", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
            [*_row("P34"), "はみ出し"], _row("P3")]
    return rows


def many_bad_rows(n: int = 1_500) -> list[list[str]]:
    """More problems than are listed (the cap): every row has two."""
    rows = [HEADER]
    for i in range(n):
        rows.append(_row(f"M{i}", 生年月日=["1940/13/1", "昭和99年1月1日", "x"][i % 3],
                         同意=["たぶん", "無", ""][i % 3]))
    return rows


def cases(folder: Path) -> list[tuple[str, str, Path]]:
    out: list[tuple[str, str, Path]] = []
    for kind in ("register", "cooperators", "services", "shelters"):
        for enc in ("utf8", "cp932"):
            out.append((f"docs_{kind}_{enc}", kind, REPO / "docs" / "import" / f"{kind}.{enc}.csv"))
    bench = _bench_module()
    bench.write_register(folder / "bench.csv", 20_000)
    bench.write_register(folder / "bench_coords.csv", 2_000, coordinates=True)
    out.append(("bench_register_20000", "register", folder / "bench.csv"))
    out.append(("bench_register_coords_2000", "register", folder / "bench_coords.csv"))
    out.append(("bad_register", "register", _csv(folder / "bad.csv", bad_register_rows())))
    out.append(("bad_register_cp932", "register", _csv(folder / "bad_cp.csv", bad_register_rows(), "cp932")))
    out.append(("bad_register_many", "register", _csv(folder / "many.csv", many_bad_rows())))
    out.append(("bad_missing_columns", "register",
                _csv(folder / "missing.csv", [["番号", "氏名"], ["P1", "a"]])))
    out.append(("bad_duplicate_columns", "register",
                _csv(folder / "dupcol.csv", [[*HEADER, "氏名"], [*_row("P1"), "x"]])))
    out.append(("bad_no_header", "register", _csv(folder / "nohead.csv", [["a", "b"], ["1", "2"]])))
    (folder / "badenc.csv").write_bytes(",".join(HEADER).encode("utf-8") + b"\r\nP1,\xff\xfe\x80\x81\r\n")
    out.append(("bad_encoding", "register", folder / "badenc.csv"))
    out.append(("bad_plane", "register", _csv(folder / "plane.csv", [
        [*HEADER[:13], "X座標", "Y座標"], [*_row("P1", 住所="")[:13], "91845", "-8117"],
        [*_row("P2", 住所="")[:13], "-8117", "91845"], [*_row("P3", 住所="")[:13], "91845", ""]])))
    out.append(("bad_cooperators", "cooperators", _csv(folder / "coop.csv", [
        ["協力者番号", "区分", "氏名", "電話番号", "住所", "できる支援", "支援可能人数"],
        ["C1", "民生委員", "斎藤 恵子", "017-000-0001", "青森市新町二丁目1", "見守り、避難支援", "2"],
        ["C1", "宇宙人", "", "17-000-0001", "青森市新町二丁目1", "空を飛ぶ", "-1"],
        ["C3", "町会", "a", "abc", "", "見守り", "２人"],
        ["C4", "", "b", "", "青森市無い町1", "", "x"]])))
    out.append(("bad_services", "services", _csv(folder / "serv.csv", [
        ["番号", "種類", "名称", "実施主体", "会場", "住所", "頻度", "日程", "連絡先", "対象"],
        ["V1", "サロン", "x", "", "", "青森市新町一丁目5", "月1回", "", "", ""],
        ["V2", "宴会", "", "", "", "青森市新町一丁目5", "毎時", "", "", ""],
        ["V1", "見守り", "y", "", "", "", "", "", "", ""]])))
    out.append(("bad_shelters", "shelters", _csv(folder / "shel.csv", [
        ["共通ID", "施設・場所名", "住所", "福祉避難所", "受入対象者", "備考", "緯度", "経度"],
        ["S1", "a", "青森市新町一丁目1", "たぶん", "", "", "", ""],
        ["S2", "", "", "", "高齢者", "", "", ""],
        ["S1", "c", "", "有", "", "", "35.0", "139.0"]])))
    return out


def _cell(value):
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if hasattr(value, "geom_type"):
        return shapely.to_wkt(value, rounding_precision=3)
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _problems(items) -> list[dict]:
    return [{"file": p.file, "row": p.row, "column": p.column, "ja": p.message_ja, "en": p.message_en,
             "text": p.format(verbose=True)} for p in items]


def _report(report) -> dict:
    return {"rows": report.rows, "encoding": report.encoding, "precision": report.precision,
            "notes": report.notes, "problems": _problems(report.problems),
            "warnings": _problems(report.warnings), "written": report.written,
            "changes": [{"layer": c.layer, "table": c.table(), "unchanged": c.unchanged}
                        for c in report.changes],
            "text": report.format(verbose=True)}


def _layer(store, kind: str) -> list[dict]:
    spec = POINT_KINDS[kind]
    if spec.layer not in store.layers():
        return []
    frame = store.read(spec.layer)
    frame = frame.sort_values(spec.id_field, kind="stable")
    return [{k: _cell(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def run_case(base: Path, work: Path, kind: str, path: Path) -> dict:
    out: dict = {"kind": kind, "file": path.name}
    folder = Path(tempfile.mkdtemp(dir=work))  # a fresh folder: no -wal of an earlier case beside it
    store_path = shutil.copy(base, folder / "store.gpkg")
    store = GeoPackageStore(store_path)
    common = {"geocoder": TownGeocoder.from_file(), "today": TODAY, "allow_mass_delete": True}
    for label, dry in (("dry_run", True), ("import", False)):
        try:
            out[label] = _report(import_file(store, kind, path, dry_run=dry, **common))
        except ImportValidationError as exc:
            out[label] = {"validation_error": _report(exc.report)}
        except InputError as exc:
            out[label] = {"input_error": str(exc)}
    out["layer"] = _layer(store, kind)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--store", type=Path, default=None,
                        help="the store to copy for each case (default: a demo store built here)")
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="karte-golden-"))
    try:
        if args.store is None:
            args.store = work / "base.gpkg"
            build_demo(GeoPackageStore(args.store), Inputs.shipped(REPO_DATA), seed=2026)
        for name, kind, path in cases(work):
            if args.only and args.only not in name:
                continue
            result = run_case(args.store, work, kind, path)
            text = json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True, default=str)
            (args.out / f"{name}.json").write_text(text + "\n", encoding="utf-8")
            print(name, "ok" if "problems" in result["dry_run"] else next(iter(result["dry_run"])))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
