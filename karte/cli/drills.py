"""The commands plans, drill, disaster (issue 19): individual evacuation plans, drills, disaster mode.

::

    karte plans --district S05              # the plans in karte (as a coordinator: consented ones)
    karte plans --due                       # plans due for review (overdue first)
    karte plans --district S05 --priority   # who to make a plan for first, with the reasons
    karte plans print S05 --out plans/      # the district's plans as one A4 PDF (--person: one)
    karte plans hazard flood areas.geojson  # a flood (or landslide) hazard layer for the ranking
    karte drill start S05 S06 --name "令和9年度 安否確認訓練"
    karte drill status DR000001 [--district S05] [--json]
    karte drill report DR000001 --out reports/
    karte drill end DR000001
    karte disaster start S05 --hours 12 --reason 大雨特別警報    # city staff (第49条の11第3項)
    karte disaster stop [S05]

The person at the command line acts as a coordinator of the deployment's municipality (what
:func:`karte.cli.common.cli_access` gives), except ``disaster``, which is city staff's act; every
read of personal rows is in the store's access log under ``--user`` (default: the login name).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from pathlib import Path
from typing import Annotated

import geopandas as gpd
import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, fail, out, store_at
from karte.domain.access import Access, Level
from karte.domain.drills import HAZARD_LAYERS, DrillKind
from karte.domain.errors import InputError, KarteError
from karte.render.drill_report import minutes_text, report_pdf
from karte.render.plan_pdf import plans_pdf
from karte.services import disaster, drills
from karte.services.sheets import write_file

UserOpt = Annotated[str | None, typer.Option("--user", help="Who acts (in the access log; "
                                                           "default: your login)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]

plans_app = typer.Typer(help="個別避難計画: list, print, hazard layers", no_args_is_help=False)
drill_app = typer.Typer(help="訓練: start, status, report, end", no_args_is_help=True)
disaster_app = typer.Typer(help="災害時モード (第49条の11第3項): start, stop, status", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
    app.add_typer(plans_app, name="plans")
    app.add_typer(drill_app, name="drill")
    app.add_typer(disaster_app, name="disaster")


def _access(route: str, user: str | None) -> Access:
    return cli_access(route, user=user or getpass.getuser())


def _staff(route: str, user: str | None) -> Access:
    """City staff of the deployment's municipality: who switches disaster mode."""
    return dataclasses.replace(_access(route, user), level=Level.CITY_STAFF)


def _print_json(value) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# -- plans ------------------------------------------------------------------------------------------

@plans_app.callback(invoke_without_command=True)
def plans(ctx: typer.Context,
          district: Annotated[str | None, typer.Option(help="District code, e.g. S05")] = None,
          due: Annotated[bool, typer.Option("--due", help="Only plans due for review")] = False,
          priority: Annotated[bool, typer.Option("--priority", help="Who to make a plan for first "
                                                                    "(needs --district)")] = False,
          as_json: JsonOpt = False, store: StoreOpt = None, user: UserOpt = None) -> None:
    """List the individual evacuation plans (個別避難計画) you may see, or those due for review."""
    if ctx.invoked_subcommand is not None:
        return
    access = _access("cli:plans", user)
    try:
        target = store_at(store)
        if priority:
            if not district:
                fail("--priority には --district が必要です")
            rows = drills.priority(target, access, district=district)
            if as_json:
                keys = ("person_id", "name", "score", "reasons", "status")
                _print_json([{k: r[k] for k in keys} for r in rows])
                return
            table = Table("順位", "氏名", "点数", "理由", "計画", title=f"個別避難計画を作る順（{district}）")
            for i, r in enumerate(rows, start=1):
                table.add_row(str(i), r["name"], str(r["score"]), "、".join(r["reasons"]) or "—",
                              r["status_ja"])
            out.print(table)
            return
        rows = drills.plans_listing(target, access, district=district, due=due)
    except KarteError as exc:
        fail(exc)
    if as_json:
        _print_json(rows)
        return
    title = "見直しの時期が来た個別避難計画" if due else "個別避難計画"
    if not rows:
        out.print(("見直しの時期が来た計画はありません" if due else "個別避難計画はまだありません")
                  + (f"（地区 {district}）" if district else ""), highlight=False)
        return
    table = Table("地区", "ID", "氏名", "状況", "作成日", "次の見直し", title=title)
    for r in rows:
        table.add_row(str(r["district_code"]), r["person_id"], r["name"], r["status_ja"], r["made_on"],
                      ("[red]" + r["review_due"] + "（期限切れ）[/red]") if r["overdue"] else r["review_due"])
    out.print(table)
    out.print(f"{len(rows)} 件", highlight=False)


@plans_app.command("print")
def print_plans(district: Annotated[str, typer.Argument(help="District code, e.g. S05")],
                out_dir: Annotated[Path, typer.Option("--out", help="Output folder")],
                person: Annotated[str | None, typer.Option(help="Only this person's plan "
                                                                "(register id)")] = None,
                network: Annotated[Path | None, typer.Option(help="Walking network (GraphML or OSM PBF): "
                                                                  "routes along it")] = None,
                store: StoreOpt = None, user: UserOpt = None) -> None:
    """Print the district's plans (one A4 page per person, one PDF), or one person's."""
    access = _access("cli:plans", user)
    try:
        target = store_at(store)
        prints = drills.plan_prints(target, access, district, person_id=person,
                                    network=drills.walk_network(network))
        data, pages = plans_pdf(prints, title=f"個別避難計画 {district}")
    except KarteError as exc:
        fail(exc)
    name = f"{district}-plan-{person}.pdf" if person else f"{district}-plans.pdf"
    path = out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    write_file(path, data, private=True)
    out.print(f"{len(prints)} 人分・{pages} ページ: {path}", highlight=False)
    out.print("[yellow]取扱注意: 個人情報を含みます（ファイルは本人のみ読み書き可）。"
              "読み出しはアクセスログに記録しました。[/yellow]")


@plans_app.command("hazard")
def hazard(kind: Annotated[str, typer.Argument(help="flood (洪水浸水想定区域) or landslide "
                                                   "(土砂災害警戒区域)")],
           file: Annotated[Path, typer.Argument(help="Polygons (GeoJSON, GeoPackage, Shapefile)")],
           store: StoreOpt = None) -> None:
    """Put a hazard-area layer into the store: the plan ranking then puts people at home inside
    it first."""
    try:
        if not file.is_file():
            raise InputError(f"ファイルがありません: {file}")
        try:
            frame = gpd.read_file(file)
        except Exception as exc:  # GDAL's many read errors
            why = type(exc).__name__
            raise InputError(f"ハザード区域のファイルを読めません: {file.name} ({why})") from exc
        n = drills.import_hazard(store_at(store), kind, frame)
    except KarteError as exc:
        fail(exc)
    layer, title = HAZARD_LAYERS[kind]
    out.print(f"{title}: {n} 区域を {layer} として保存しました", highlight=False)


# -- drills ---------------------------------------------------------------------------------------

@drill_app.command("start")
def drill_start(districts: Annotated[list[str], typer.Argument(help="District codes, e.g. S05 S06")],
                name: Annotated[str, typer.Option("--name", help="The drill's name")],
                kind: Annotated[str, typer.Option(help="safety_check (安否確認訓練) or evacuation "
                                                       "(避難誘導訓練)")] = DrillKind.SAFETY_CHECK.value,
                start: Annotated[str | None, typer.Option(help="When it starts, e.g. 2027-06-07T10:00 "
                                                               "(JST; default: now)")] = None,
                store: StoreOpt = None, user: UserOpt = None) -> None:
    """Start a drill of one or more districts."""
    try:
        row = drills.start_drill(store_at(store), _access("cli:drill", user), districts, name=name, kind=kind,
                                 started_at=drills.local_time(start))
    except KarteError as exc:
        fail(exc)
    out.print(f"訓練 {row['drill_id']} を始めました: {row['name']}（{', '.join(districts)}）",
              highlight=False)


@drill_app.command("end")
def drill_end(drill: Annotated[str, typer.Argument(help="Drill id, e.g. DR000001")], store: StoreOpt = None,
              user: UserOpt = None) -> None:
    """End a drill (marks made before the end may still arrive from offline phones)."""
    try:
        row = drills.end_drill(store_at(store), _access("cli:drill", user), drill)
    except KarteError as exc:
        fail(exc)
    out.print(f"訓練 {row['drill_id']} を終えました", highlight=False)


@drill_app.command("list")
def drill_list(as_json: JsonOpt = False, store: StoreOpt = None, user: UserOpt = None) -> None:
    """The drills."""
    try:
        rows = drills.drills_for(store_at(store), _access("cli:drill", user))
    except KarteError as exc:
        fail(exc)
    if as_json:
        keys = ("drill_id", "name", "kind", "codes", "started_at", "ended_at", "active")
        _print_json([{k: r[k] for k in keys} for r in rows])
        return
    table = Table("ID", "名前", "種類", "地区", "開始", "状態", title="訓練")
    for r in rows:
        table.add_row(r["drill_id"], r["name"], r["kind_ja"], " ".join(r["codes"]), r["started_ja"],
                      "実施中" if r["active"] else "終了")
    out.print(table)


@drill_app.command("status")
def drill_status(drill: Annotated[str, typer.Argument(help="Drill id, e.g. DR000001")],
                 district: Annotated[str | None, typer.Option(help="One district "
                                                                   "(default: every one)")] = None,
                 as_json: JsonOpt = False, store: StoreOpt = None, user: UserOpt = None) -> None:
    """Where a drill stands: people confirmed per status and district, elapsed time, who is not
    reached yet."""
    access = _access("cli:drill", user)
    try:
        target = store_at(store)
        found = drills.drill_of(target, access, drill)
        codes = [district] if district else found["codes"]
        states = [drills.status(target, access, drill, district=code) for code in codes]
    except KarteError as exc:
        fail(exc)
    if as_json:
        _print_json([{k: v for k, v in s.items() if k != "points"} for s in states])
        return
    for s in states:
        minutes = s["elapsed_s"] // 60
        out.print(f"[bold]{found['name']}[/bold]（{drill}）{s['district']}: 経過 {minutes} 分・"
                  f"確認 {s['confirmed']} / {s['total']} 人", highlight=False)
        table = Table("状態", "人数")
        for c in s["counts"]:
            table.add_row(c["label"], str(c["count"]))
        out.print(table)
        if s["not_reached"]:
            names = "、".join(p["name"] for p in s["not_reached"][:30])
            more = " …" if len(s["not_reached"]) > 30 else ""
            out.print(f"まだ確認できていない方 {len(s['not_reached'])} 人: {names}{more}", highlight=False)


@drill_app.command("report")
def drill_report(drill: Annotated[str, typer.Argument(help="Drill id, e.g. DR000001")],
                 out_dir: Annotated[Path, typer.Option("--out", help="Output folder")],
                 store: StoreOpt = None, user: UserOpt = None) -> None:
    """The drill report as PDF and CSV: time to confirm half and all, people not reached,
    supporters who could not reach theirs, the lessons entered."""
    access = _access("cli:drill", user)
    try:
        rep = drills.report(store_at(store), access, drill)
        data, pages = report_pdf(rep)
    except KarteError as exc:
        fail(exc)
    pdf, csv_path = out_dir / f"{drill}-report.pdf", out_dir / f"{drill}-report.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_file(pdf, data, private=True)
    write_file(csv_path, drills.report_csv(rep), private=True)
    for d in rep.districts:
        out.print(f"{d.name}（{d.code}）: 確認 {d.confirmed} / {d.total} 人・"
                  f"半数 {minutes_text(d.minutes_to_half)}・全員 {minutes_text(d.minutes_to_all)}",
                  highlight=False)
    out.print(f"報告書: {pdf}（{pages} ページ）、{csv_path}", highlight=False)


# -- disaster mode ----------------------------------------------------------------------------------

@disaster_app.command("start")
def disaster_start(districts: Annotated[list[str] | None,
                                        typer.Argument(help="District codes (none: the whole city)")] = None,
                   hours: Annotated[float | None,
                                    typer.Option(help="End by itself after this many hours")] = None,
                   reason: Annotated[str, typer.Option(help="Why (e.g. 大雨特別警報)")] = "",
                   store: StoreOpt = None, user: UserOpt = None) -> None:
    """Switch districts (or the whole city) into disaster mode: their supporters see the
    unconsented register entries too (災害対策基本法 第49条の11第3項), every view logged."""
    try:
        rows = disaster.start(store_at(store), _staff("cli:disaster", user), districts or None, hours=hours,
                              reason=reason)
    except KarteError as exc:
        fail(exc)
    if not rows:
        out.print("指定の地区はすでに災害時モードです", highlight=False)
        return
    ends = disaster.jst_text(rows[0].get("ends_at")) or "手動で終了するまで"
    codes = ", ".join(r["district_code"] for r in rows)
    out.print(f"[red]災害時モードを開始しました[/red]: {codes}（終了: {ends}）")


@disaster_app.command("stop")
def disaster_stop(districts: Annotated[list[str] | None, typer.Argument(help="District codes "
                                                                             "(none: every one)")] = None,
                  store: StoreOpt = None, user: UserOpt = None) -> None:
    """End disaster mode."""
    try:
        ended = disaster.stop(store_at(store), _staff("cli:disaster", user), districts or None)
    except KarteError as exc:
        fail(exc)
    message = f"災害時モードを終了しました: {', '.join(ended)}" if ended else "災害時モードの地区はありません"
    out.print(message, highlight=False)


@disaster_app.command("status")
def disaster_status(as_json: JsonOpt = False, store: StoreOpt = None, user: UserOpt = None) -> None:
    """The districts in disaster mode now, and past periods."""
    try:
        rows = disaster.modes(store_at(store), _staff("cli:disaster", user))
    except KarteError as exc:
        fail(exc)
    if as_json:
        _print_json(rows)
        return
    table = Table("地区", "状態", "開始", "終了予定", "終了", "開始した人", "理由", title="災害時モード")
    for r in rows:
        state = "[red]実施中[/red]" if r["active"] else "終了"
        table.add_row(str(r["district_code"]), state, r["started_ja"], r["ends_ja"], r["stopped_ja"],
                      str(r.get("started_by") or ""), str(r.get("reason") or ""))
    out.print(table)

