"""The commands of years: ``history``, ``indicators``, ``plan import`` / ``plan export``, ``report``.

::

    karte history S05 [--json]                 # the district's figures per fiscal year, beside the city
    karte history city                         # the whole municipality
    karte indicators [--district S05] [--year 2026] [--json]
    karte plan import data/plans/oshu_annual_plan.csv [--dry-run] [--yes]
    karte plan export plan.xlsx | plan.csv [--plan NAME] [--encoding cp932]
    karte report --year 2026 --out reports/ [--district S05]   # the annual progress report (PDF)

The command line acts as a coordinator of the deployment's municipality (``KARTE_MUNICIPALITY``;
``--municipality`` for another one's plan, e.g. Oshu's sample) under your login name: the plan
import is written in one atomic step and recorded in the access log. Earlier census tables fill
earlier years with ``karte import history FILE`` (the year from the file name), indicator values
and targets load with ``karte import indicators FILE``, evaluations with ``karte import evaluations
FILE``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, fail, out, store_at
from karte.domain.errors import KarteError
from karte.history_plan import write_table
from karte.importing.api import ImportValidationError
from karte.importing.history import prepare_plan, write_layers
from karte.render.charts import format_value
from karte.render.report import progress_report_pdf
from karte.services import history as years
from karte.services.sheets import write_file
from karte.settings import get_settings

plan_app = typer.Typer(help="計画の年次表 (the annual plan table): import and export.", no_args_is_help=True)

MunicipalityOpt = Annotated[
    str | None,
    typer.Option("--municipality", help="JIS code of the municipality (default: KARTE_MUNICIPALITY)"),
]
CITY_WORDS = ("city", "市", "市全体", "all")


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
    app.command("history")(history_command)
    app.command("indicators")(indicators_command)
    app.command("report")(report_command)
    app.add_typer(plan_app, name="plan")


def _municipality(value: str | None) -> str:
    return value or get_settings().municipality


def history_command(
    district: Annotated[str, typer.Argument(help="District code (S05), or city for the whole municipality")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
    years_shown: Annotated[int, typer.Option("--years", help="How many fiscal years (latest)")] = 5,
    municipality: MunicipalityOpt = None,
) -> None:
    """Print a district's karte figures per fiscal year beside the city's, and the five-year
    projection of its elderly (an estimate)."""
    code = None if district.lower() in CITY_WORDS else district
    access = cli_access("cli:history")
    try:
        target = store_at(store)
        data = years.trend(target, code, access, municipality=_municipality(municipality), years=years_shown)
        data["projection"] = years.projection(target, code, access)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(years.as_json(data) + "\n")
        return
    out.rule(f"{data['name']}{'' if code is None else f'（{code}）'} の推移")
    if not data["years"]:
        out.print("年度別の記録はまだありません（karte build で記録されます）。")
        return
    t = Table(title="地区カルテの年度別の値（かっこ内は市全体）")
    t.add_column("項目")
    for y in data["years"]:
        t.add_column(y["short"] + ("（合成）" if y["synthetic"] else ""), justify="right")
    for f in data["figures"]:
        cells = []
        for y in data["years"]:
            mine, city = (
                _fmt(y["district"].get(f["key"]), f["unit"]),
                _fmt(y["city"].get(f["key"]), f["unit"]),
            )
            cells.append(mine if code is None else f"{mine}（{city}）")
        t.add_row(f["label"], *cells)
    out.print(t)
    for note in data["notes"]:
        out.print(f"[yellow]※{note}[/yellow]")
    projection = data["projection"]
    if projection["rows"]:
        t = Table(title="高齢者の見通し（推計）")
        for col in ("年度", "65〜74歳", "75歳以上", "65歳以上"):
            t.add_column(col, justify="right" if col != "年度" else "left")
        for row in projection["rows"]:
            t.add_row(
                row["label"] + ("（推計）" if row["estimate"] else ""),
                _fmt(row["age_65_74"], "人"),
                _fmt(row["age_75_plus"], "人"),
                _fmt(row["elderly"], "人"),
            )
        out.print(t)
        out.print(f"[yellow]※{projection['method']}[/yellow]")


def indicators_command(
    store: StoreOpt = None,
    district: Annotated[str | None, typer.Option("--district", help="A district's indicators")] = None,
    year: Annotated[int | None, typer.Option("--year", help="As of this fiscal year (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
    municipality: MunicipalityOpt = None,
) -> None:
    """List the activity indicators with baseline, targets, values and attainment."""
    access = cli_access("cli:indicators")
    try:
        items = years.indicator_list(
            store_at(store), access, municipality=_municipality(municipality), district=district, year=year
        )
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(years.as_json({"district": district, "year": year, "indicators": items}) + "\n")
        return
    if not items:
        out.print("指標はまだありません（karte import indicators FILE で取り込めます）。")
        return
    t = Table(title="活動指標と目標" + (f"（{district}）" if district else ""))
    for col in ("指標", "基準", "実績", "目標", "達成度", "経路", "出所"):
        t.add_column(col, justify="left" if col in ("指標", "出所") else "right")
    for item in items:
        unit = item["unit"]
        latest = item["latest"] or {}
        targets = "、".join(_year_value(t["fiscal_year"], t["value"], unit) for t in item["targets"]) or "—"
        first = next((t for t in item["targets"] if t.get("attainment") is not None), None)
        t.add_row(
            item["name"] + (f"（{item['for_district']}）" if item.get("for_district") else ""),
            _year_value(item["baseline_year"], item["baseline"], unit),
            _year_value(latest.get("fiscal_year"), latest.get("value"), unit),
            targets,
            "—" if first is None else f"{first['attainment'] * 100:.0f}%",
            {True: "順調", False: "遅れ"}.get(latest.get("on_track"), "—"),
            item["source_ja"] + ("" if item["registered"] else "（計算元が未登録）"),
        )
    out.print(t)


@plan_app.command("import")
def plan_import(
    file: Annotated[Path, typer.Argument(help="The annual plan table (.xlsx or .csv, UTF-8 or CP932)")],
    store: StoreOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show the changes; write nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Write without asking")] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="The plan's name when the table has no title")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Worksheet of an .xlsx workbook")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="utf-8, utf-8-sig or cp932")] = None,
    district: Annotated[str | None, typer.Option("--district", help="A district's own plan")] = None,
    municipality: MunicipalityOpt = None,
) -> None:
    """Load an annual plan table: every problem is listed with file, row and column, and a file
    with any problem loads nothing; the changes are shown before they are written."""
    access = dataclasses.replace(cli_access("cli:plan"), municipality=_municipality(municipality))
    try:
        target = store_at(store)
        prepared = prepare_plan(
            target, file, access, {"sheet": sheet, "encoding": encoding, "name": name, "district": district}
        )
        if prepared.report.problems:
            raise ImportValidationError(prepared.report)
    except ImportValidationError as exc:
        print(exc.report.format(), file=sys.stderr)
        raise typer.Exit(1) from exc
    except KarteError as exc:
        fail(exc)
    prepared.apply = None
    report = prepared.report
    print(report.format())
    if dry_run or not report.changed:
        if dry_run and report.changed:
            print("--dry-run のため書き込んでいません。")
        return
    if not yes and not typer.confirm("この変更をストアに書き込みますか?", default=False):
        print("書き込みませんでした。")
        return
    try:
        write_layers(target, prepared)
        report.written = True
    except KarteError as exc:
        fail(exc)
    print("ストアに書き込みました。")


@plan_app.command("export")
def plan_export(
    out_file: Annotated[Path, typer.Argument(help="OUT.xlsx or OUT.csv")],
    store: StoreOpt = None,
    plan: Annotated[str | None, typer.Option("--plan", help="The plan's name (default: the newest)")] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="CSV encoding: utf-8-sig or cp932")
    ] = "utf-8-sig",
    district: Annotated[str | None, typer.Option("--district", help="A district's own plan")] = None,
    municipality: MunicipalityOpt = None,
) -> None:
    """Write the annual plan table in the layout it was imported in (import it again: no change)."""
    try:
        _, table, _, _ = years.plan_table(
            store_at(store), _municipality(municipality), plan=plan, district=district
        )
        if table is None:
            raise KarteError("計画の年次表がありません（karte plan import FILE で取り込めます）")
        write_table(table, out_file, encoding=encoding)
    except KarteError as exc:
        fail(exc)
    out.print(f"{table.name} の年次表を {out_file} に書き出しました（取組項目 {len(table.items)} 件）")


def report_command(
    year: Annotated[int, typer.Option("--year", help="Fiscal year of the report (2026 = 令和8年度)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PDF")],
    store: StoreOpt = None,
    district: Annotated[str | None, typer.Option("--district", help="A district's report")] = None,
    municipality: MunicipalityOpt = None,
) -> None:
    """The annual progress report (indicators, plan table, evaluations, trend; PDF)."""
    access = cli_access("cli:report")
    try:
        data = years.report_data(
            store_at(store), access, municipality=_municipality(municipality), year=year, district=district
        )
        pdf = progress_report_pdf(data)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"progress_{year}{'_' + district if district else ''}.pdf"
        write_file(path, pdf, private=False)
    except KarteError as exc:
        fail(exc)
    out.print(f"進捗報告 {data['year_label']} を {path} に書き出しました")


def _fmt(value, unit: str) -> str:
    if unit == "%" and isinstance(value, int | float):
        return format_value(value * 100, "%")
    return format_value(value, unit if unit != "%" else "")


def _year_value(year, value, unit: str) -> str:
    if value is None:
        return "—"
    return (f"R{year - 2018} " if year and year >= 2019 else "") + format_value(value, unit)


__all__ = ["register"]
