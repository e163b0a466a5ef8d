"""``karte copies``: the hand-out ledger of register copies (名簿の配布記録).

::

    karte copies                              # every copy, newest first
    karte copies --district S05 --out-only    # S05's copies not yet returned or destroyed
    karte copies --overdue --json             # past their due date, as JSON
    karte copies hand K000012 --to "山田 一郎" --holder-kind cooperator
    karte copies return K000012 --by "山田 一郎"
    karte copies destroy K000012 --note "シュレッダー"
    karte copies open K000031 --note "大雨特別警報"          # a sealed list was opened
    karte copies report S05 --year 2026 --out reports/       # the yearly ledger (PDF)
    karte copies sealed E0220100002111 --out sealed/          # a sealed shelter list (city staff)

The command line acts as a coordinator of the deployment's municipality under your login name
(``--user``), as ``karte show`` does; a sealed shelter list (everyone, consented or not) is city
staff's, and ``karte copies sealed`` acts as city staff, the command line being the city's own
operator of the store (as ``karte import`` is). Every read and write is in the access log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, fail, out, store_at
from karte.domain.access import Access, Level
from karte.domain.copies import Event, HolderKind, Purpose
from karte.domain.errors import InputError, KarteError
from karte.services import copies
from karte.services.copies import CopyRequest, CopyView
from karte.services.sheets import write_file
from karte.settings import get_settings

ROUTE = "cli:copies"

copies_app = typer.Typer(help="名簿の配布記録 (the hand-out ledger of register copies).",
                         invoke_without_command=True, no_args_is_help=False)

UserOpt = Annotated[str | None, typer.Option("--user", help="Who records (default: your login name)")]


def register(app: typer.Typer) -> None:
    """Add ``karte copies`` and its commands to the ``karte`` application."""
    app.add_typer(copies_app, name="copies")


def _access(user: str | None) -> Access:
    return cli_access(ROUTE, user=user or getpass.getuser())


@copies_app.callback()
def list_copies(
    ctx: typer.Context,
    district: Annotated[str | None, typer.Option("--district", help="One district, e.g. S05")] = None,
    out_only: Annotated[bool, typer.Option("--out-only", help="Only copies not yet returned or "
                                                             "destroyed (未回収)")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only copies past their due date")] = False,
    superseded: Annotated[bool, typer.Option("--superseded", help="Only copies of an older register "
                                                                 "version")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the copies as JSON")] = False,
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """List the copies of the register (sheets, CSVs, sealed lists) and where each one is."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        views = copies.ledger(store_at(store), _access(user), district=district, outstanding=out_only,
                              overdue=overdue, superseded=superseded)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps([v.as_dict() for v in views], ensure_ascii=False, indent=1) + "\n")
        return
    _print_table(views, title=_title(district, out_only, overdue, superseded))


def _title(district, out_only, overdue, superseded) -> str:
    parts = [f"地区 {district}" if district else "全地区"]
    if out_only:
        parts.append("未回収")
    if overdue:
        parts.append("返却期限切れ")
    if superseded:
        parts.append("古い版")
    return "名簿の複製　" + "・".join(parts)


def _print_table(views: list[CopyView], *, title: str) -> None:
    if not views:
        out.print(f"{title}: 該当する複製はありません。", highlight=False)
        return
    table = Table(title=title)
    for column, width in (("複製番号", 8), ("地区", 4), ("種類", 10), ("提供先", 10), ("作成", 10),
                          ("返却期限", 10), ("状態", 8)):
        table.add_column(column, min_width=width, overflow="fold")
    for v in views:
        d = v.as_dict()
        state = d["state_ja"]
        if v.overdue:
            state += "・[red]期限切れ[/red]"
        if v.superseded:
            state += "・[red]古い版[/red]"
        table.add_row(v.copy_id, d["district_code"] or "", d["kind_ja"], d["holder"], _day(d["made_at"]),
                      d["due_back"], state)
    out.print(table)
    outstanding = sum(v.state.outstanding for v in views)
    out.print(f"{len(views)} 部（未回収 {outstanding} 部・期限切れ {sum(v.overdue for v in views)} 部・"
              f"古い版 {sum(bool(v.superseded) for v in views)} 部）", highlight=False)


def _day(stamp: str) -> str:
    return dt.datetime.fromisoformat(stamp).astimezone(copies.JST).strftime("%Y-%m-%d")


def _event(event: Event, copy_id: str, *, store, user, person: str = "", note: str = "",
           holder_kind: str = "", due: str | None = None) -> None:
    try:
        view = copies.record_event(store_at(store), _access(user), copy_id, event, person=person,
                                   note=note, holder_kind=holder_kind, due_back=_date(due))
    except KarteError as exc:
        fail(exc)
    out.print(f"複製 {view.copy_id}: {event.ja}を記録しました（{view.state.ja}・{view.holder}）。",
              highlight=False)


@copies_app.command("return")
def return_(
    copy_id: Annotated[str, typer.Argument(help="Copy number, e.g. K000012")],
    by: Annotated[str, typer.Option("--by", help="Who returned it")] = "",
    note: Annotated[str, typer.Option(help="A note")] = "",
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Record that a copy came back (回収)."""
    _event(Event.RETURNED, copy_id, store=store, user=user, person=by, note=note)


@copies_app.command("destroy")
def destroy(
    copy_id: Annotated[str, typer.Argument(help="Copy number, e.g. K000012")],
    by: Annotated[str, typer.Option("--by", help="Who destroyed it")] = "",
    note: Annotated[str, typer.Option(help="How (シュレッダー, 溶解, ファイル削除)")] = "",
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Record that a copy was destroyed (廃棄)."""
    _event(Event.DESTROYED, copy_id, store=store, user=user, person=by, note=note)


@copies_app.command("hand")
def hand(
    copy_id: Annotated[str, typer.Argument(help="Copy number, e.g. K000012")],
    to: Annotated[str, typer.Option("--to", help="Who received it (default: the holder it was "
                                                 "made for)")] = "",
    holder_kind: Annotated[str, typer.Option(help="cooperator / council / shelter / office")] = "",
    due: Annotated[str | None, typer.Option(help="A new due date, YYYY-MM-DD")] = None,
    note: Annotated[str, typer.Option(help="A note")] = "",
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Record that a copy was handed over (手渡し)."""
    _event(Event.HANDED_OVER, copy_id, store=store, user=user, person=to, note=note,
           holder_kind=holder_kind, due=due)


@copies_app.command("open")
def open_(
    copy_id: Annotated[str, typer.Argument(help="Copy number of a sealed list")],
    by: Annotated[str, typer.Option("--by", help="Who opened it")] = "",
    note: Annotated[str, typer.Option(help="Why (the disaster, the evacuation order)")] = "",
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Record that a sealed shelter list was opened (開封)."""
    _event(Event.OPENED, copy_id, store=store, user=user, person=by, note=note)


@copies_app.command("report")
def report(
    district: Annotated[str, typer.Argument(help="District code, e.g. S05")],
    year: Annotated[int, typer.Option("--year", help="Fiscal year (年度, April to March), e.g. 2026")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: "
                                                                "WORKSPACE/copies)")] = None,
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Write the yearly ledger report of one district (PDF, readable by you only)."""
    folder = out_dir or get_settings().workspace / "copies"
    try:
        data = copies.yearly_report(store_at(store), _access(user), district, year)
    except KarteError as exc:
        fail(exc)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"copies-{district}-{year}.pdf"
    write_file(path, data, private=True)
    out.print(f"年次報告: {path}", highlight=False)


@copies_app.command("sealed")
def sealed(
    shelter: Annotated[str, typer.Argument(help="Shelter id (共通ID), e.g. E0220100002111")],
    holder: Annotated[str, typer.Option(help="Where it is kept (default: the shelter)")] = "",
    due: Annotated[str | None, typer.Option(help="When it is replaced, YYYY-MM-DD (default: 3月31日)")]
    = None,
    paper: Annotated[str, typer.Option(help="A4 or A3")] = "A4",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: "
                                                                "WORKSPACE/copies)")] = None,
    store: StoreOpt = None,
    user: UserOpt = None,
) -> None:
    """Print a sealed shelter list (封印名簿: everyone, consented or not; opened in a disaster)."""
    folder = out_dir or get_settings().workspace / "copies"
    access = dataclasses.replace(_access(user), level=Level.CITY_STAFF)
    try:
        request = None
        if holder or due:
            request = CopyRequest(holder_kind=HolderKind.SHELTER.value, holder_name=holder,
                                  holder_ref=shelter, purpose=Purpose.DISASTER.value, due_back=_date(due))
        copy, data = copies.sealed_list(store_at(store), access, shelter, request=request, paper=paper)
    except KarteError as exc:
        fail(exc)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sealed-{shelter}-{copy['copy_id']}.pdf"
    write_file(path, data, private=True)
    out.print(f"封印名簿 {copy['copy_id']}（{copy['persons']} 人）: {path}", highlight=False)
    out.print("[yellow]同意のない方を含みます。印刷したら封筒に入れて封印し、ファイルは削除してください"
              "（karte copies destroy ではなく、紙の回収・廃棄を記録します）。[/yellow]")


def request_from(*, holder: str, holder_kind: str, purpose: str, basis: list[str] | None,
                 due: str | None, note: str = "") -> CopyRequest:
    """The copy options of ``karte sheets`` as a :class:`CopyRequest`."""
    return CopyRequest(holder_kind=holder_kind, holder_name=holder, purpose=purpose,
                       basis=tuple(b for part in (basis or []) for b in part.split(",") if b),
                       due_back=_date(due), note=note)


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"日付は YYYY-MM-DD で指定してください（指定: {text}）") from None
