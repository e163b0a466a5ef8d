"""``karte sheets``: print district sheets (地区シート) as PDF.

::

    karte sheets S01 S02                     # two districts, public edition, A4
    karte sheets --all --edition drill       # every district and one merged PDF with contents
    karte sheets S05 --edition confidential --for "（仮）S05地区社協" --holder-kind council

Every confidential and drill sheet is a numbered copy in the hand-out ledger (``karte copies``):
its number and the register version are printed with a QR code on every page; ``--for``,
``--holder-kind``, ``--purpose``, ``--basis`` and ``--due`` say for whom, why, on which legal basis
and until when (default: held by you, 平常時の提供 or 訓練, the consent of the listed people, due
back at the end of the fiscal year or 14 days after a drill).
"""

from __future__ import annotations

import atexit
import functools
import gc
import getpass
from pathlib import Path
from typing import Annotated

import typer

from karte.cli.common import ProgressBar, StoreOpt, cli_access, district_store, fail, out
from karte.cli.copies import request_from
from karte.domain.errors import KarteError
from karte.services.sheets import check_paper, edition_of, print_sheets
from karte.settings import get_settings

STAGE_JA = {"analysis": "サロン徒歩圏の解析", "render": "地区シートの作成", "merge": "1冊にまとめる"}


def sheets(
    districts: Annotated[list[str] | None, typer.Argument(help="District codes, e.g. S01 S05")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every district, and one merged PDF with "
                                                     "a table of contents")] = False,
    edition: Annotated[str, typer.Option(help="public (公開版), confidential (取扱注意: 同意者の名簿), "
                                              "drill (訓練用: 支援者別・避難所別)")] = "public",
    paper: Annotated[str, typer.Option(help="A4 or A3")] = "A4",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: WORKSPACE/sheets)")]
    = None,
    store: StoreOpt = None,
    user: Annotated[str | None, typer.Option(help="Who prints (on every page of the personal "
                                                  "editions and in the access log)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    holder: Annotated[str, typer.Option("--for", help="Personal editions: for whom the copy is "
                                                      "(a person, a council, a shelter)")] = "",
    holder_kind: Annotated[str, typer.Option(help="cooperator (支援者個人) / council (団体) / shelter "
                                                  "(避難所) / office (市・社協の手元)")] = "office",
    purpose: Annotated[str, typer.Option(help="normal (平常時の提供) / drill (訓練) / disaster (災害時); "
                                              "default by edition")] = "",
    basis: Annotated[list[str] | None, typer.Option(help="consent / ordinance / disaster / internal "
                                                         "(repeat or comma-separate); default: the "
                                                         "listed people's consent")] = None,
    due: Annotated[str | None, typer.Option(help="Due back, YYYY-MM-DD")] = None,
) -> None:
    """Print district sheets (地区シート) as PDF: one per district, for meetings and drills.

    The personal editions list the shareable register rows and the roster; each district's read
    is written to the store's access log under --user (default: your login name).
    """
    _skip_final_collection()
    if all_ and districts:
        fail("地区コードと --all は同時に指定できません")
    if not all_ and not districts:
        fail("地区コード（例: S01）か --all を指定してください")
    settings = get_settings()
    folder = out_dir or settings.workspace / "sheets"
    access = cli_access("cli:sheets", user=user or getpass.getuser())
    target = None
    try:
        kind = edition_of(edition)
        check_paper(paper)
        copy = request_from(holder=holder, holder_kind=holder_kind, purpose=purpose, basis=basis, due=due)
        target = district_store(store)
        with ProgressBar(STAGE_JA, transient=True) as bar:
            result = print_sheets(target, None if all_ else districts, edition=kind, paper=paper,
                                  access=access, out=folder, workers=workers, max_small=settings.suppress_max,
                                  merge=True if all_ else None, progress=bar.stage, copy=copy)
    except KarteError as exc:
        fail(exc)
    finally:
        if target is not None:
            target.close()  # now, not by the collector at exit (see _skip_final_collection)
    pages = sum(result.pages.values())
    out.print(f"{len(result.files)} 地区・{pages} ページを {folder} に書き出しました"
              f"（{result.seconds:.1f} 秒）", highlight=False)
    if result.merged:
        out.print(f"まとめ（目次つき）: {result.merged}（{result.merged_pages} ページ）", highlight=False)
    elif len(result.files) == 1:
        out.print(f"ファイル: {next(iter(result.files.values()))}", highlight=False)
    if kind.personal:
        numbers = list(result.copies.values())
        span = numbers[0] if len(numbers) == 1 else f"{numbers[0]}〜{numbers[-1]}（{len(numbers)} 部）"
        out.print(f"複製番号: {span}。配布記録（karte copies）に記録しました。1 ファイルを 1 部として印刷し、"
                  "手渡し・回収・廃棄を記録してください。", highlight=False)
        out.print("[yellow]取扱注意: 個人情報を含みます（ファイルは本人のみ読み書き可）。[/yellow]")
        out.print("[yellow]名簿の読み出しはアクセスログに記録しました。印刷物は使用後に回収・廃棄してください。"
                  "[/yellow]")


@functools.cache  # registered once per process
def _skip_final_collection() -> None:
    """When this process ends, freeze what it holds instead of letting the interpreter collect it:
    its last garbage collections walk every object pandas, GeoPandas, GDAL's bindings and the
    snapshot made, about 0.1 s of a 0.8 s cold sheet, for memory the system takes back anyway.
    Runs at exit only (a test that runs the command inside its own process is unaffected until
    that process ends); the store is closed before, so its SQLite connections still checkpoint
    and remove the ``-wal`` beside a GeoPackage."""
    atexit.register(gc.freeze)
