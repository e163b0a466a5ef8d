"""The commands match, points (issue 14): 地域福祉サポーター at the command line.

* ``karte match [--district D] [--json] [--winter|--summer] [--network FILE]``: suggest a supporter
  for every open help request of a district (or the whole city) at once, with the reasons, the
  unmet requests and why, and where recruiting one more supporter would help most. ``--json``
  prints it without names or addresses (ids, kinds, distances, reasons).
* ``karte points statement SUPPORTER --year Y --out DIR``: the yearly points statement (PDF).
* ``karte points balance [--district D]``: every supporter's balance (the sum of their entries).

The person at the command line acts as a coordinator of the deployment's municipality
(:func:`karte.cli.common.cli_access`); every read of personal rows is in the access log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, fail, out, store_at
from karte.domain.errors import KarteError
from karte.domain.supporters import fiscal_year_ja
from karte.services import supporters as service
from karte.walknet import read_walk_network

points_app = typer.Typer(help="Volunteer points of 地域福祉サポーター (ボランティアポイント).",
                         no_args_is_help=True)


def match(
    district: Annotated[str | None, typer.Option(
        "--district", "-d", help="District code, e.g. S05 (default: the whole city)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON without names or addresses")] = False,
    winter: Annotated[bool | None, typer.Option("--winter/--summer",
                                                help="Match as in the snow season or outside it "
                                                     "(default: by today's date and KARTE_WINTER)")] = None,
    network: Annotated[Path | None, typer.Option(help="Walking network (GraphML or OSM PBF): network "
                                                      "distances instead of straight line × 1.3")] = None,
    store: StoreOpt = None,
) -> None:
    """Suggest supporters for all open help requests at once (最適な組み合わせ), with the reasons.

    Most requests met first, then the least walking; the same supporter as before preferred.
    Unmet requests say why (nobody offers it, no overlap in time, nobody near enough, all at
    capacity) and where one more supporter would reach most of them.
    """
    try:
        walk = read_walk_network(network) if network is not None else None
        view = service.match_requests(store_at(store), cli_access("cli:match"), district=district,
                                      winter=winter, network=walk)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(view.as_json(), ensure_ascii=False, indent=1) + "\n")
        return
    _print(view)


def _print(view: service.MatchView) -> None:
    n = view.counts
    where = view.district or "市全体"
    rule = "冬期の条件" if view.winter else "通常期の条件"
    out.rule(f"依頼とサポーターの組み合わせ　{where}　{view.season.label_ja}（{rule}）")
    out.print(f"受付中の依頼 {n['open']} 件: 候補あり {n['met']} 件・候補なし {n['unmet']} 件"
              f"（いまは調整しない {n['waiting']} 件）。"
              f"歩く距離の合計 {view.result.total_distance_m / 1000:,.1f} km、"
              f"計算 {view.result.seconds:.2f} 秒")
    if view.suggestions:
        t = Table(title="候補", show_lines=False)
        for col in ("依頼", "依頼者", "内容", "候補", "徒歩", "理由"):
            t.add_column(col)
        for s in view.suggestions:
            t.add_row(s["request_id"], s["requester_name"] or "",
                      f"{s['activity_ja']}・{s['recurrence_ja']}",
                      f"{s['supporter_name']} ({s['supporter_id']})",
                      f"{s['distance_m']:,} m", "\n".join(s["reasons"][1:]))
        out.print(t)
    if view.unmet:
        t = Table(title="候補のいない依頼")
        for col in ("依頼", "内容", "理由", "説明"):
            t.add_column(col)
        for u in view.unmet:
            t.add_row(u["request_id"], u["activity_ja"], u["reason_ja"], u["detail_ja"])
        out.print(t)
    if view.recruit:
        t = Table(title="サポーターを募集するなら")
        for col in ("活動", "場所", "届く依頼"):
            t.add_column(col)
        for r in view.recruit:
            t.add_row(r["activity_ja"], f"{r['place']}付近（{r['district_code']}）",
                      f"{r['gain']} / {r['unmet']} 件")
        out.print(t)


@points_app.command("statement")
def statement(
    supporter: Annotated[str, typer.Argument(help="Supporter id, e.g. SP000012")],
    year: Annotated[int, typer.Option("--year", "-y", help="Fiscal year (年度, April to March), e.g. 2026")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PDF")] = Path("."),
    store: StoreOpt = None,
) -> None:
    """Write the yearly points statement of one supporter (PDF, A4): brought forward, every entry
    of the year with the running balance, the totals and the closing balance."""
    try:
        pdf = service.statement_pdf(store_at(store), cli_access("cli:points"), supporter_id=supporter,
                                    fiscal_year=year)
    except KarteError as exc:
        fail(exc)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"points_{supporter}_{year}.pdf"
    path.write_bytes(pdf)
    out.print(f"{fiscal_year_ja(year)}の明細書を書き出しました: {path}")
    out.print("[yellow]取扱注意: 氏名とポイントの記録を含みます。[/yellow]")


@points_app.command("balance")
def balance(
    district: Annotated[str | None, typer.Option("--district", "-d", help="District code")] = None,
    store: StoreOpt = None,
) -> None:
    """Every supporter's points balance (the sum of their ledger entries)."""
    try:
        target = store_at(store)
        access = cli_access("cli:points")
        rows = service.supporters(target, access, district=district)
        book = service.ledger(target, access, district=district)
    except KarteError as exc:
        fail(exc)
    per: dict[str, int] = {}
    for e in book:
        per[e["supporter_id"]] = per.get(e["supporter_id"], 0) + int(e["points"])
    t = Table(title="ボランティアポイントの残高")
    for col in ("番号", "地区", "氏名", "状況", "残高"):
        t.add_column(col, justify="right" if col == "残高" else "left")
    for r in rows:
        t.add_row(r["supporter_id"], r.get("district_code") or "", r.get("name") or "", r["status_ja"],
                  f"{per.get(r['supporter_id'], 0):,} pt")
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
    app.command("match")(match)
    app.add_typer(points_app, name="points")
