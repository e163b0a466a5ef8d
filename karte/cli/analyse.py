"""``karte analyse``: the analyses per municipality on Dask (:mod:`karte.analyse`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from karte.analyse import RESULT_LAYERS
from karte.analyse import analyse as run_analyses
from karte.cli.common import ProgressBar, StoreOpt, fail, out, store_at
from karte.domain.errors import KarteError
from karte.domain.schema import SYNTHETIC_JA


def analyse(
    municipality: Annotated[list[str] | None, typer.Option(
        "--municipality", metavar="CODE",
        help="Only this municipality (JIS code, e.g. 02201); repeatable")] = None,
    scheduler: Annotated[str | None, typer.Option(
        metavar="ADDRESS",
        help="Address of a running Dask scheduler (tcp://host:8786); default: a local cluster")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="Worker processes of the local cluster (default: one per core)")] = None,
    store: StoreOpt = None,
) -> None:
    """Run salon coverage, evacuation gaps, supporter suggestions and the outreach ranking per
    municipality as Dask tasks, and write the counts back to the store (analysis_districts,
    analysis_outreach, analysis_municipalities)."""
    if scheduler and workers:
        fail("--workers はローカルクラスタ用です。--scheduler と一緒には指定できません")
    try:
        target = store_at(store)
        with ProgressBar({"analyse": "市区町村ごとに分析中"}) as bar:
            run = run_analyses(target, municipalities=municipality or None, scheduler=scheduler,
                               workers=workers,
                               progress=lambda done, total: bar.stage("analyse", done, total))
    except KarteError as exc:
        fail(exc)
    table = Table(title=f"市区町村ごとの分析（{len(run.results)} 市区町村）")
    for col in ("コード", "市区町村", "地区", "小地域", "要支援者", "空白あり", "サロン圏外", "候補"):
        table.add_column(col, justify="left" if col in ("コード", "市区町村") else "right")
    for code, r in run.results.items():
        city = r.district_gaps.loc["city"] if "city" in r.district_gaps.index else {}
        share = r.shares.get("uncovered_elderly_share")
        table.add_row(code, run.names.get(code, ""), f"{r.sizes['districts']:,}",
                      f"{r.sizes['small_areas']:,}",
                      f"{int(city.get('persons', 0)):,}", f"{int(city.get('at_risk', 0)):,}",
                      "—" if share is None else f"{share:.1%}", f"{len(r.suggestions):,}")
    out.print(table)
    out.print("空白あり: 避難支援に空白がある要支援者　サロン圏外: サロンの徒歩圏外に住む高齢者（65歳以上）"
              "の割合　候補: 支援者の候補が見つかった、支援者のいない要支援者", highlight=False)
    flags = _synthetic(target)
    if flags:
        out.print(f"[yellow]※合成データを含みます: {'、'.join(flags)}[/yellow]")
    where = "ローカルクラスタ" if not scheduler else f"スケジューラ {scheduler}"
    out.print(f"{where}（ワーカー {run.workers}）で {run.seconds:.1f} 秒。"
              f"結果を {target.location} のレイヤ {', '.join(RESULT_LAYERS)} に書き込みました。")


def _synthetic(store) -> list[str]:
    """The store's synthetic parts as users read them (the build's ``synthetic`` flags)."""
    try:
        flags = json.loads(store.meta().get("synthetic", "[]"))
    except ValueError:
        return []
    return [SYNTHETIC_JA.get(f, f) for f in flags]
