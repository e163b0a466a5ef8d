"""``karte sheets``: print district sheets (地区シート) as PDF.

The command line is registered in :mod:`karte.cli`; this module holds the plain function behind
it, so it can be called (and tested) without the CLI framework::

    karte sheets S01 S02                     # two districts, public edition, A4
    karte sheets --all --edition drill       # every district and one merged PDF with contents
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from karte.domain.errors import KarteError

STAGE_JA = {"analysis": "サロン徒歩圏の解析", "render": "地区シートの作成", "merge": "1冊にまとめる"}


def sheets_command(
    districts: list[str],
    all_: bool,
    edition: str,
    paper: str,
    out: Path | None,
    store: str | None,
    user: str,
    *,
    workers: int = 2,
    console: Console | None = None,
) -> int:
    """Write district sheets; return the exit status (0 done, 1 error, message printed).

    Parameters
    ----------
    districts
        District codes (e.g. ``["S01", "S05"]``); empty with ``all_``.
    all_
        Every district, plus one merged PDF with a table of contents.
    edition
        ``public`` (公開版), ``confidential`` (取扱注意) or ``drill`` (訓練用).
    paper
        ``A4`` or ``A3`` (the A4 layout enlarged).
    out
        Output folder (default: ``WORKSPACE/sheets``).
    store
        GeoPackage path or PostGIS URL (default: the workspace store).
    user
        Who prints: written on every page of the personal editions and in the access log.
    """
    from karte.render.sheets import check_options, cli_access, render_batch
    from karte.settings import get_settings
    from karte.store import open_store

    err = console or Console(stderr=True)
    if all_ and districts:
        err.print("[red]エラー:[/red] 地区コードと --all は同時に指定できません", highlight=False)
        return 1
    if not all_ and not districts:
        err.print("[red]エラー:[/red] 地区コード（例: S01）か --all を指定してください", highlight=False)
        return 1
    folder = out or get_settings().workspace / "sheets"
    try:
        check_options(edition, paper)
        target = open_store(store)
        if not target.exists():
            raise KarteError(f"ストア {target.location} がありません。先に karte demo を実行してください")
        with _Bar(err) as bar:
            result = render_batch(target, None if all_ else districts, edition=edition, paper=paper,
                                  access=cli_access(user), out=folder, workers=workers,
                                  merge=True if all_ else None, route="cli:sheets", progress=bar)
    except KarteError as exc:
        err.print(f"[red]エラー:[/red] {exc}", highlight=False, markup=True)
        return 1
    pages = sum(result.pages.values())
    out_console = Console()
    out_console.print(f"{len(result.files)} 地区・{pages} ページを {folder} に書き出しました"
                      f"（{result.seconds:.1f} 秒）", highlight=False)
    if result.merged:
        out_console.print(f"まとめ（目次つき）: {result.merged}（{result.merged_pages} ページ）",
                          highlight=False)
    elif len(result.files) == 1:
        out_console.print(f"ファイル: {next(iter(result.files.values()))}", highlight=False)
    if edition != "public":
        out_console.print("[yellow]取扱注意: 個人情報を含みます（ファイルは本人のみ読み書き可）。[/yellow]")
        out_console.print("[yellow]書き出しはアクセスログに記録しました。印刷物は使用後に回収・廃棄してください。"
                          "[/yellow]")
    return 0


class _Bar:
    """A rich progress bar fed by :func:`karte.render.sheets.render_batch`'s callback."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("準備中", total=None)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.progress.update(self.task, description=STAGE_JA.get(stage, stage), completed=done,
                             total=total)
