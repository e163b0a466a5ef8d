"""The commands cases, meetings (issue 13): households of concern and district safety-net meetings.

::

    karte cases [--district S05] [--open] [--json]        the cases you may see (気になる世帯)
    karte cases export OUT.csv|OUT.xlsx [--district S05]  the ledger, in the headers import reads
    karte meetings [--district S05] [--year 2026] [--json]  the safety-net meetings
    karte meetings sheet S05 --out DIR                    the printable meeting sheet (取扱注意)
    karte meetings export OUT.csv|OUT.xlsx                the meetings ledger
    karte meetings counts --year 2026                     the year's counts (the activity indicators)

You act as a coordinator of the deployment's municipality (``--user``, default your login name):
every read of the records is in the store's access log under that name. Files with personal data
are written readable by their owner only.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, fail, out, store_at
from karte.domain.care import CONCERN_JA, URGENCY_SHORT, japanese_date, label
from karte.domain.errors import KarteError
from karte.importing.care import write_ledger
from karte.services import care
from karte.settings import get_settings

cases_app = typer.Typer(help="Households of concern (気になる世帯: 気づき・つなぐ・支援).",
                        invoke_without_command=True)
meetings_app = typer.Typer(help="District safety-net meetings (地域セーフティネット会議).",
                           invoke_without_command=True)

District = Annotated[str | None, typer.Option("--district", help="District code, e.g. S05")]
User = Annotated[str | None, typer.Option(help="Who reads (in the access log; default: your login name)")]
Encoding = Annotated[str, typer.Option(help="CSV encoding: utf-8-sig (Excel), utf-8 or cp932")]


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
    app.add_typer(cases_app, name="cases")
    app.add_typer(meetings_app, name="meetings")


# --- karte cases ----------------------------------------------------------------------------------------

@cases_app.callback()
def cases(
    ctx: typer.Context,
    district: District = None,
    open_only: Annotated[bool, typer.Option("--open", help="Open cases only (対応中)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    store: StoreOpt = None,
    user: User = None,
) -> None:
    """List the households of concern you may see, overdue reviews first (logged)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        rows = care.case_list(store_at(store), cli_access("cli:cases", user=user), district=district,
                              open_only=open_only)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table(title=f"気になる世帯（{len(rows)}）")
    for col in ("番号", "地区", "世帯", "気になること", "緊急度", "状況", "担当", "次の一歩"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["concern_id"], r["district_code"] or "", r["household"],
                      "・".join(label(CONCERN_JA, k) for k in r["kinds"]),
                      label(URGENCY_SHORT, r["urgency"], "—"),
                      "終了" if r["status"] == "closed" else "対応中", r["responsible"] or "未定",
                      ("[red]" if r["overdue"] else "") + r["next_step"] + ("[/red]" if r["overdue"] else ""))
    out.print(table)
    overdue = sum(r["overdue"] for r in rows)
    if overdue:
        out.print(f"[red]確認日を過ぎた世帯: {overdue}[/red]")


@cases_app.command("export")
def cases_export(
    file: Annotated[Path, typer.Argument(help="OUT.csv or OUT.xlsx")],
    district: District = None,
    store: StoreOpt = None,
    encoding: Encoding = "utf-8-sig",
    user: User = None,
) -> None:
    """Write the households of concern as a ledger in the headers `karte import concerns` reads."""
    try:
        header, rows = care.ledger_table(store_at(store), cli_access("cli:cases", user=user), "concerns",
                                         district=district)
        write_ledger(file, header, rows, encoding=encoding)
    except KarteError as exc:
        fail(exc)
    out.print(f"{len(rows)} 世帯を {file} に書き出しました（個人情報: 本人のみ読み書き可）", highlight=False)


# --- karte meetings -------------------------------------------------------------------------------------

@meetings_app.callback()
def meetings(
    ctx: typer.Context,
    district: District = None,
    year: Annotated[int | None, typer.Option("--year",
                                             help="Fiscal year (年度), e.g. 2026 = 令和8年度")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    store: StoreOpt = None,
    user: User = None,
) -> None:
    """List the safety-net meetings you may see, newest first (logged)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        rows = care.meeting_list(store_at(store), cli_access("cli:meetings", user=user), district=district,
                                 year=year)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table(title=f"地域セーフティネット会議（{len(rows)}回）")
    for col in ("番号", "地区", "開催日", "会場", "参加者", "検討世帯", "話し合った世帯"):
        table.add_column(col, justify="right" if col in ("参加者", "検討世帯") else "left")
    for m in rows:
        table.add_row(m["meeting_id"], m["district_code"] or "", japanese_date(m["held_on"], short=True),
                      m["place"],
                      "" if m["participants"] is None else str(m["participants"]),
                      "" if m["households"] is None else str(m["households"]),
                      "、".join(h["household"] for h in m["discussed"]))
    out.print(table)
    out.print(f"参加者 {sum(m['participants'] or 0 for m in rows)} 人・検討世帯 "
              f"{sum(m['households'] or 0 for m in rows)}", highlight=False)


@meetings_app.command("sheet")
def meetings_sheet(
    district: Annotated[str, typer.Argument(help="District code, e.g. S05")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder")],
    store: StoreOpt = None,
    user: User = None,
) -> None:
    """Print the district's meeting sheet (取扱注意): the households to review, their last decisions
    and blank lines for today's. The read is logged under --user."""
    try:
        data = care.meeting_sheet_pdf(store_at(store), district,
                                      cli_access("cli:meetings", user=user or getpass.getuser()))
    except KarteError as exc:
        fail(exc)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"meeting_sheet_{district}.pdf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    out.print(f"会議の記録用紙: {path}", highlight=False)
    out.print("[yellow]取扱注意: 気になる世帯の情報を含みます（ファイルは本人のみ読み書き可）。"
              "印刷物は会議の後に回収してください。[/yellow]")


@meetings_app.command("export")
def meetings_export(
    file: Annotated[Path, typer.Argument(help="OUT.csv or OUT.xlsx")],
    district: District = None,
    store: StoreOpt = None,
    encoding: Encoding = "utf-8-sig",
    user: User = None,
) -> None:
    """Write the meetings as a ledger in the headers `karte import meetings` reads."""
    try:
        header, rows = care.ledger_table(store_at(store), cli_access("cli:meetings", user=user), "meetings",
                                         district=district)
        write_ledger(file, header, rows, encoding=encoding)
    except KarteError as exc:
        fail(exc)
    out.print(f"{len(rows)} 回の会議を {file} に書き出しました", highlight=False)


@meetings_app.command("counts")
def meetings_counts(
    year: Annotated[int, typer.Option("--year", help="Fiscal year (年度), e.g. 2026 = 令和8年度")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The fiscal year's counts the activity indicators read: meetings, participants, households
    discussed, cases opened and closed (counts only)."""
    try:
        counts = care.fiscal_year_counts(store_at(store), year, municipality=get_settings().municipality)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps({"fiscal_year": year, **counts}, ensure_ascii=False) + "\n")
        return
    labels = {"meetings_held": "会議の開催回数", "participants": "参加者数",
              "households_discussed": "検討世帯数",
              "cases_opened": "気づいた世帯（新規）", "cases_closed": "対応を終了した世帯"}
    for key, value in counts.items():
        out.print(f"{labels[key]}: {value:,}", highlight=False)
