"""The commands census (a new census in one command, issue 23).

``karte census import DIR --year 2020`` reads e-Stat's downloads as they come, reports every
problem at once (nothing written) or the changes (small areas renamed, split, merged, concealed;
people moved between districts; the city total against the official one), asks, and rebuilds
every karte for that census, keeping the previous census as history. ``karte census status``
prints the city totals of the store against the official figures; ``karte census trend`` the
people per district across the two last censuses held.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from karte.census import reconcile
from karte.cli.build import STEP_JA
from karte.cli.common import ProgressBar, StoreOpt, err, fail, out, store_at
from karte.domain.errors import KarteError, ValidationError
from karte.domain.layers import Layer
from karte.settings import get_settings

if TYPE_CHECKING:
    from karte.census.update import CensusPlan

census_app = typer.Typer(help="国勢調査: e-Stat の新しい国勢調査の取り込み、市の合計と公表値の照合",
                         no_args_is_help=True)

CENSUS_STEPS = {**STEP_JA, "write_census": "国勢調査の履歴の保存", "history": "年度の記録"}


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
    app.add_typer(census_app, name="census")


@census_app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(
        help="e-Stat からダウンロードしたファイルのフォルダ "
             "(境界データの Shapefile か ZIP、小地域集計の CSV/TXT か ZIP)")],
    year: Annotated[int, typer.Option("--year", help="国勢調査の年 (例: 2020)")],
    store: StoreOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="確認だけして書き込まない")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="確認せずに書き込む")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="英語の説明と全ての移動を表示")] = False,
) -> None:
    """Import a census from e-Stat's downloads and rebuild every karte for it."""
    import karte.census.update as update  # tobler and statsmodels: 2 s that no other command should pay

    settings = get_settings()
    try:
        target = store_at(store)
        plan = update.prepare(target, directory, year=year)
    except ValidationError as exc:
        fail(exc, verbose=verbose)
    except KarteError as exc:
        fail(exc)
    print_plan(plan, verbose=verbose)
    if dry_run:
        out.print("確認のみ（--dry-run）: 何も書き込んでいません")
        return
    if not yes and not typer.confirm(f"{reconcile.census_label(year)}で全ての地区カルテを作り直しますか?"):
        out.print("中止しました。何も書き込んでいません")
        raise typer.Exit(1)
    try:
        with ProgressBar(CENSUS_STEPS, steps=13) as bar:
            result = update.apply(target, plan, seed=settings.seed, data_dir=settings.data_dir,
                                  report=bar.step)
    except KarteError as exc:
        fail(exc)
    out.print(f"{result.kartes} 地区のカルテを{reconcile.census_label(year)}で作り直しました "
              f"({target.location})")
    if result.trend is not None:
        print_trend(result.trend, plan.previous_year, year, limit=None if verbose else 10)


@census_app.command("status")
def status(store: StoreOpt = None) -> None:
    """Print the store's city totals against the official census figures (and why they differ)."""
    try:
        target = store_at(store)
        blocks = reconcile.store_sources(target, target.read(Layer.SMALL_AREAS))
    except KarteError as exc:
        fail(exc)
    for rec in blocks.cities.values():
        label = reconcile.census_label(rec.year)
        out.print(f"[bold]{rec.municipality_name}（{rec.municipality_code}） {label}[/bold]")
        for label, value in rec.lines_ja():
            out.print(f"  {label:<24} {_num(value)} 人")
        out.print(f"  世帯数（カルテ）            {rec.households:,} 世帯"
                  + (f" / 公表値 {rec.official.households:,}" if rec.official and rec.official.households else
                     "（公表値は未確認）"))
        out.print(f"  {rec.reason_ja()}")
        if rec.official is not None:
            check = "確認済み" if rec.official.verified_here else "未確認"
            out.print(f"  出典: {rec.official.source}（{rec.official.as_published_by}; {check}）")


@census_app.command("trend")
def trend(
    store: StoreOpt = None,
    before: Annotated[int | None, typer.Option(help="比べる前の国勢調査の年")] = None,
    after: Annotated[int | None, typer.Option(help="比べる後の国勢調査の年")] = None,
) -> None:
    """Print each district's people and households in two censuses held by the store."""
    import karte.census.update as update  # tobler and statsmodels, as in import_

    try:
        table = update.census_trend(store_at(store), before=before, after=after)
    except KarteError as exc:
        fail(exc)
    years = sorted({int(c.split("_")[-1]) for c in table.columns if c.startswith("population_2")
                    or c.startswith("population_1")})
    print_trend(table, years[0], years[-1], limit=None)


def print_plan(plan: CensusPlan, *, verbose: bool = False) -> None:
    """The report before writing: files, city totals, changed areas, concealed areas, moves."""
    data = plan.data
    out.print(f"[bold]{reconcile.census_label(plan.year)}の取り込み[/bold]（これまで: "
              f"{reconcile.census_label(plan.previous_year)}）")
    for f in data.files:
        out.print(f"  {f['file']}: {f['table']}（{f['kind']}、{f['rows']} 行、{f['encoding']}）")
    out.print(f"小地域 {len(data.areas)}（年齢: {'実データ' if data.real_age else '推計（合成）'}、"
              f"一人暮らし高齢者: {'実データ' if data.real_elderly else '推計（合成）'}）")
    for rec in plan.reconciliation.values():
        out.print(f"[bold]市の合計[/bold] {rec.municipality_name}: " + "、".join(
            f"{label} {_num(value)} 人" for label, value in rec.lines_ja()))
        out.print(f"  {rec.reason_ja()}")
    concealed = data.areas[data.areas["concealed"]]
    if len(concealed):
        out.print(f"[bold]秘匿・合算[/bold] {len(concealed)} 小地域")
        names = dict(zip(data.areas["key_code"], data.areas["name"], strict=True))
        district = dict(zip(plan.carry.mapping["key_code"], plan.carry.mapping["district_code"], strict=True))
        for row in concealed.itertuples():
            target = row.merged_into
            if isinstance(target, str) and target:
                out.print(f"  {row.name}（{row.key_code}, 地区 {district.get(row.key_code)}）→ 合算先 "
                          f"{names.get(target, target)}（{target}, 地区 {district.get(target)}）")
            else:
                out.print(f"  {row.name}（{row.key_code}）: 合算先不明（人口は「{reconcile.GAP_LABEL}」）")
    changes = plan.carry.changes
    out.print(f"[bold]小地域の変更[/bold] {len(changes)} 件（区域の変わらない小地域 {plan.carry.unchanged}）")
    for change in changes[: None if verbose else 20]:
        out.print(f"  {change.text_ja()}")
    if len(changes) > 20 and not verbose:
        out.print(f"  … ほか {len(changes) - 20} 件（--verbose で全て）")
    moves = plan.carry.moves
    out.print(f"[bold]地区間の移動[/bold] {len(moves)} 件（面積按分による推計）" if moves
              else "[bold]地区間の移動[/bold] なし")
    for move in moves[: None if verbose else 20]:
        out.print(f"  {move.text_ja()}")
    for key in plan.carry.outside:
        out.print(f"  [yellow]{key}: これまでのどの地区にも重ならないため、最も近い地区に入れました[/yellow]")
    for problem in plan.warnings:
        err.print(f"[yellow]注意:[/yellow] {problem.format(verbose=verbose)}", markup=True, highlight=False)


def print_trend(table, before: int, after: int, *, limit: int | None) -> None:
    out.print(f"[bold]地区別の人口: {reconcile.census_label(before)} → {reconcile.census_label(after)}[/bold]"
              "（どちらも現在の地区の区域に面積按分）")
    rows = table.sort_values("population_change")
    shown = rows if limit is None else rows.head(limit)
    for code, r in shown.iterrows():
        change = r["population_change_pct"]
        pct = "" if change != change else f"（{change:+.1f}%）"
        out.print(f"  {code} {r['district_name']}: {int(r[f'population_{before}']):,} → "
                  f"{int(r[f'population_{after}']):,} 人 {int(r['population_change']):+,}{pct}")
    if limit is not None and len(rows) > limit:
        out.print(f"  … ほか {len(rows) - limit} 地区（karte census trend で全て）")


def _num(value) -> str:
    return "—" if value is None else f"{value:,}"
