"""Printed district sheets (地区シート): one PDF per district, or the whole city in one batch.

Why ReportLab drawn directly (measured on the demo, one core, 42 districts): a sheet drawn with
ReportLab, the map as vector paths straight from the EPSG:6678 geometries, took 0.03 s for four
A4 pages; the same sheet with fpdf2 took 0.37 s, and the map page alone drawn by matplotlib
0.22 s. The Japanese font (IPAexGothic, :mod:`karte.render.pdf_fonts`) is embedded as a subset.

A batch reads the store once (:func:`karte.render.sheet_data.load_context`), runs the salon
coverage analysis spread over the worker processes (district groups; every district is analysed
because each sheet prints the city's share beside its own), logs every export of personal rows
(``store.audit``, one row per district and layer), then renders the sheets on the workers and
merges them into one PDF with a table of contents and bookmarks.

Access (:mod:`karte.domain.access`): anyone may print the public edition; the confidential and drill
editions need a user who may see the district's personal rows, and list only shareable rows.
"""

from __future__ import annotations

import functools
import io
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import KarteError, NotFoundError
from karte.domain.layers import Layer
from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import (
    BOTTOM,
    LEFT,
    MUTED,
    RIGHT,
    TOP,
    Column,
    PageWriter,
    rows_per_page,
)
from karte.render.sheet_analysis import Coverage, analyse_coverage, city_coverage, district_groups
from karte.render.sheet_data import (
    DistrictSheet,
    Edition,
    SheetContext,
    SheetOptions,
    district_roster,
    district_sheet,
    load_context,
    shareable_register,
)
from karte.render.sheet_pages import footer_for, header_for, personal_band, write_sheet
from karte.store.base import Store

#: Progress callback: (stage, done, total); stages "analysis", "render", "merge".
Progress = Callable[[str, int, int], None]

#: Districts per analysis task: small enough to keep both workers busy, large enough that
#: each task's mesh is built once for a compact group of neighbouring districts.


class SheetAccessError(KarteError):
    """The user may not print this edition of this district (HTTP 403)."""

    status = 403


@dataclass
class BatchResult:
    """What a batch wrote: one file per district, the merged file, pages and bytes per district."""

    files: dict[str, Path] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    merged: Path | None = None
    merged_pages: int = 0
    toc_pages: int = 0
    seconds: float = 0.0
    #: how many processes rendered sheets (2 on a two-core machine with ``workers=2``)
    processes: int = 0


def render_sheet(sheet: DistrictSheet) -> tuple[bytes, int]:
    """One district sheet as PDF bytes, and its page count."""
    font = register_font()
    buf = io.BytesIO()
    writer = PageWriter(buf, paper=sheet.options.paper, font=font, header=header_for(sheet),
                        footer=footer_for(sheet, font),
                        title=f"地区シート {sheet.code} {sheet.name}（{sheet.options.edition.ja}）",
                        author=sheet.options.user if sheet.options.edition.personal else "")
    write_sheet(writer, sheet)
    writer.finish()
    return buf.getvalue(), writer.pages


def check_access(access: Access, codes: list[str], edition: Edition) -> None:
    """Raise :class:`SheetAccessError` unless ``access`` may print ``edition`` of every district."""
    if not edition.personal:
        return
    denied = [c for c in codes if not access.may_see_district_rows(c)]
    if denied:
        raise SheetAccessError(f"{edition.ja}を印刷する権限がありません（地区 {', '.join(denied)}）。"
                               "公開版を選んでください")


def district_sheet_pdf(
    store: Store,
    code: str,
    *,
    edition: str | Edition = Edition.PUBLIC,
    paper: str = "A4",
    access: Access = PUBLIC,
    route: str = "api:sheet",
    context: SheetContext | None = None,
    coverage: tuple[dict[str, Coverage], dict] | None = None,
) -> bytes:
    """One district's sheet as PDF bytes, for the web (``/districts/{code}/sheet.pdf``).

    Raises :class:`SheetAccessError` (403) when ``access`` may not print the edition,
    :class:`karte.domain.errors.NotFoundError` (404) for an unknown district. Personal editions are
    logged in the store's access log under ``route``. ``context``: the store's layers already
    read by :func:`karte.render.sheet_data.load_context` for the current build (the web keeps
    one), else they are read here. ``coverage``: (every district's coverage, the city's shares)
    of that build as :func:`karte.render.sheet_analysis.analyse_city` gives them (the web keeps
    them too), else they are computed here and kept for the build.
    """
    edition = _edition(edition)
    _paper(paper)
    check_access(access, [code], edition)
    ctx = context or load_context(store)
    _known(ctx, [code])
    coverages, city = coverage or _coverage(ctx, store)
    options = SheetOptions(edition=edition, paper=paper, user=access.user)
    _audit(store, ctx, [code], edition, access, route)
    sheet = district_sheet(ctx, code, options=options, coverage=coverages[code],
                           city_coverage=city, access=access)
    return render_sheet(sheet)[0]


def render_batch(
    store: Store,
    codes: list[str] | None,
    *,
    edition: str | Edition = Edition.PUBLIC,
    paper: str = "A4",
    access: Access = PUBLIC,
    out: Path,
    merge: bool | None = None,
    workers: int = 2,
    route: str = "cli:sheets",
    progress: Progress | None = None,
) -> BatchResult:
    """Write the sheets of ``codes`` (None: every district) into ``out``.

    Files: ``{code}-{edition}[-A3].pdf`` per district and, when ``merge`` (default: when more
    than one district), ``all-{edition}[-A3].pdf`` with a table of contents and one bookmark per
    district. Personal editions are written readable by the owner only (mode 0600).
    """
    t0 = time.perf_counter()
    edition = _edition(edition)
    _paper(paper)
    progress = progress or (lambda stage, done, total: None)
    ctx = load_context(store)
    codes = ctx.codes if codes is None else list(dict.fromkeys(codes))
    _known(ctx, codes)
    check_access(access, codes, edition)
    merge = len(codes) > 1 if merge is None else merge
    out.mkdir(parents=True, exist_ok=True)
    options = SheetOptions(edition=edition, paper=paper, user=access.user)
    suffix = f"-{edition.value}" + ("" if paper == "A4" else f"-{paper}")
    result = BatchResult()
    workers = max(1, min(workers, os.cpu_count() or 1))  # the analysis covers every district
    with _pool(ctx, workers) as pool:
        # the access log is written while the workers analyse (one SQLite commit per row takes
        # a second for the city), and always before any file is written
        coverages, city = _coverage(ctx, store, pool=pool, progress=progress,
                                    meanwhile=lambda: _audit(store, ctx, codes, edition, access, route))
        jobs = [(code, options, coverages[code], city, access, out / f"{code}{suffix}.pdf")
                for code in codes]
        mapper = pool.imap_unordered(_render_job, jobs) if pool else map(_render_job, jobs)
        pids = set()
        for done, (code, path, pages, size, pid) in enumerate(mapper, start=1):
            result.files[code], result.pages[code], result.sizes[code] = path, pages, size
            pids.add(pid)
            progress("render", done, len(codes))
        result.processes = len(pids)
    result.files = {c: result.files[c] for c in codes}
    if merge:
        progress("merge", 0, 1)
        result.merged = out / f"all{suffix}.pdf"
        result.toc_pages, result.merged_pages = _merge(ctx, codes, result, options, result.merged)
        progress("merge", 1, 1)
    result.seconds = time.perf_counter() - t0
    return result


# --- workers --------------------------------------------------------------------------------------

_WORKER: dict = {}  # per worker process: the context, set once by _init_worker


def _init_worker(ctx: SheetContext) -> None:
    _WORKER["ctx"] = ctx
    register_font()


def _pool(ctx: SheetContext, workers: int):
    _init_worker(ctx)  # the parent renders too when there is no pool
    if workers <= 1:
        return _NoPool()
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=(ctx,))


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _analysis_job(codes: list[str], ctx: SheetContext | None = None) -> dict[str, Coverage]:
    ctx = ctx or _WORKER["ctx"]
    return analyse_coverage(ctx.small_areas, ctx.services, codes, params=ctx.params)


def _render_job(job) -> tuple[str, Path, int, int, int]:
    code, options, coverage, city, access, path = job
    ctx: SheetContext = _WORKER["ctx"]
    sheet = district_sheet(ctx, code, options=options, coverage=coverage, city_coverage=city,
                           access=access)
    data, pages = render_sheet(sheet)
    _write(path, data, private=options.edition.personal)
    return code, path, pages, len(data), os.getpid()


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_suffix(".pdf.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- coverage (cached per store build) ------------------------------------------------------------

_COVERAGE_CACHE: dict[tuple, tuple[dict[str, Coverage], dict]] = {}


def clear_analysis_cache() -> None:
    """Forget the coverage kept for the current store build (benchmarks time it afresh)."""
    _COVERAGE_CACHE.clear()


def _coverage(ctx: SheetContext, store: Store, *, pool=None, progress: Progress | None = None,
              meanwhile: Callable[[], None] | None = None) -> tuple[dict[str, Coverage], dict]:
    """Coverage of every district and the city's shares; kept for the store's current build.
    ``meanwhile`` runs in this process while the pool's workers analyse."""
    meanwhile = meanwhile or (lambda: None)
    key = (store.location, store.meta().get("built_at"), ctx.params)
    if key in _COVERAGE_CACHE:
        meanwhile()
        return _COVERAGE_CACHE[key]
    groups = district_groups(ctx.districts, ctx.codes)
    results: dict[str, Coverage] = {}
    if pool:
        mapper = pool.imap_unordered(_analysis_job, groups)  # the workers start at once
    else:
        mapper = map(functools.partial(_analysis_job, ctx=ctx), groups)
    meanwhile()
    for done, part in enumerate(mapper, start=1):
        results.update(part)
        if progress:
            progress("analysis", done, len(groups))
    city = city_coverage(list(results.values()))
    _COVERAGE_CACHE.clear()
    _COVERAGE_CACHE[key] = (results, city)
    return results, city


# --- access log, merge ----------------------------------------------------------------------------

def _audit(store: Store, ctx: SheetContext, codes, edition: Edition, access: Access, route: str):
    """One access-log row per district and personal layer exported (counts, never names)."""
    if not edition.personal:
        return
    for code in codes:
        store.audit(actor=access.user, route=route, layer=Layer.REGISTER, district=code,
                    rows=len(shareable_register(ctx, code, access)))
        store.audit(actor=access.user, route=route, layer=Layer.COOPERATORS, district=code,
                    rows=len(district_roster(ctx, code)))


def _merge(ctx: SheetContext, codes, result: BatchResult, options: SheetOptions,
           path: Path) -> tuple[int, int]:
    """Contents, then every district's sheet, each starting on a right-hand (odd) page: a
    district with an odd page count is followed by a blank page (with the 取扱注意 band in a
    personal edition), so the bundle prints on both sides without one district's last page
    on the back of the next one's map."""
    from pypdf import PdfReader, PdfWriter

    per_page = rows_per_page(row_h=16, header_h=16, top=TOP - 110)
    toc_pages = max(1, math.ceil(len(codes) / per_page))
    while True:
        toc, pages = _toc(ctx, codes, result, options, toc_pages)
        if pages == toc_pages:
            break
        toc_pages = pages
    blank = PdfReader(io.BytesIO(_blank_page(options))).pages[0]
    writer = PdfWriter()
    writer.append(io.BytesIO(toc))
    writer.add_outline_item("目次", 0)
    if toc_pages % 2:
        writer.add_page(blank)
    for code in codes:
        name = ctx.kartes[code]["district"]["name"]
        writer.append(str(result.files[code]), outline_item=f"{code} {name}")
        if result.pages[code] % 2:
            writer.add_page(blank)
    buf = io.BytesIO()
    writer.write(buf)
    _write(path, buf.getvalue(), private=options.edition.personal)
    return toc_pages, len(writer.pages)


def _even(n: int) -> int:
    return n + n % 2


def _blank_page(options: SheetOptions) -> bytes:
    """The page that fills the back of a district's last sheet in the merged PDF."""
    font = register_font()
    buf = io.BytesIO()

    def header(w: PageWriter) -> float:
        y = personal_band(w, options)
        w.text((LEFT + RIGHT) / 2, (y + BOTTOM) / 2, "（白紙：両面印刷のため）", 10, color=MUTED,
               align="center")
        return y

    def footer(canvas, number, total):
        if options.edition.personal:
            canvas.setFont(font, 7.5)
            canvas.setFillColor(MUTED)
            canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, 22, "取扱注意")

    w = PageWriter(buf, paper=options.paper, font=font, header=header, footer=footer)
    w.new_page()
    w.finish()
    return buf.getvalue()


def _toc(ctx: SheetContext, codes, result: BatchResult, options: SheetOptions,
         toc_pages: int) -> tuple[bytes, int]:
    font = register_font()
    buf = io.BytesIO()
    first = ctx.kartes[codes[0]]
    printed = options.printed_at.astimezone(_jst()).strftime("%Y-%m-%d %H:%M")

    def header(w: PageWriter) -> float:
        y = personal_band(w, options)
        w.text(LEFT, y - 22, "地区シート　目次", 20, bold=True)
        w.text(RIGHT, y - 20, f"{first['fiscal_year_label']}・{options.edition.ja}・{options.paper}",
               11, align="right")
        w.text(LEFT, y - 40, f"データ時点 {first['data_date']}　{len(codes)} 地区　"
               f"印刷 {printed} JST" + (f"　印刷者 {options.user}" if options.edition.personal
                                       else ""), 9, color=MUTED)
        w.text(LEFT, y - 54, "各地区は表面（奇数ページ）から始まります。両面印刷で地区ごとに分けられます。",
               8, color=MUTED)
        return y - 64

    def footer(canvas, number, total):
        canvas.setFillColor(MUTED)
        if options.edition.personal:
            canvas.setFont(font, 7.5)
            canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, 22, "取扱注意")
        canvas.setFont(font, 9)
        canvas.drawRightString(RIGHT, 22, f"目次 {number} / {total}")

    w = PageWriter(buf, paper=options.paper, font=font, header=header, footer=footer,
                   title=f"地区シート 目次（{options.edition.ja}）")
    w.new_page()
    rows = []
    page = _even(toc_pages) + 1
    for code in codes:
        k = ctx.kartes[code]
        pop = next((m["value"] for m in k["base"] if m["key"] == "population"), None)
        n = result.pages[code]
        rows.append((code, k["district"]["name"], "—" if pop is None else f"{pop:,} 人",
                     f"{n}", f"{page}〜{page + n - 1}"))
        page += _even(n)
    cols = (Column("コード", 70), Column("地区名", 220), Column("人口", 90, "right"),
            Column("ページ数", 60, "right"), Column("ページ", 99, "right"))
    w.table(cols, rows, size=10, row_h=16, header_h=16, continued="目次（続き）")
    w.finish()
    return buf.getvalue(), w.pages


def _jst():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


# --- checks ---------------------------------------------------------------------------------------

def check_options(edition: str | Edition, paper: str) -> None:
    """Raise a :class:`KarteError` saying what is allowed when the edition or paper is unknown."""
    _edition(edition)
    _paper(paper)


def _edition(value: str | Edition) -> Edition:
    try:
        return Edition(value)
    except ValueError:
        raise KarteError(f"版は public / confidential / drill のいずれかです（指定: {value}）") from None


def _paper(value: str) -> None:
    if value not in ("A4", "A3"):
        raise KarteError(f"用紙は A4 か A3 です（指定: {value}）")


def _known(ctx: SheetContext, codes: list[str]) -> None:
    unknown = [c for c in codes if c not in ctx.kartes]
    if unknown:
        raise NotFoundError(f"地区 {', '.join(unknown)} はありません "
                            f"(例: {', '.join(ctx.codes[:5])} …)")


#: Access of a local command-line user: every district, shareable rows only.
def cli_access(user: str) -> Access:
    return Access(user=user, level=Level.COORDINATOR)


__all__ = ["BatchResult", "Edition", "SheetAccessError", "SheetOptions", "check_access",
           "check_options", "clear_analysis_cache", "cli_access", "district_sheet_pdf", "render_batch",
           "render_sheet"]
