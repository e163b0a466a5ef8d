"""Drawing printed district sheets (地区シート) as PDF: one sheet, and a merged batch.

Why ReportLab drawn directly (measured on the demo, one core, 42 districts): a sheet drawn with
ReportLab, the map as vector paths straight from the EPSG:6678 geometries, took 0.03 s for four
A4 pages; the same sheet with fpdf2 took 0.37 s, and the map page alone drawn by matplotlib
0.22 s. The Japanese font (IPAexGothic, :mod:`karte.render.pdf_fonts`) is embedded as a subset.

This module draws what it is handed (:class:`~karte.render.sheet_model.DistrictSheet`, prepared
and suppressed by :mod:`karte.services.sheets`); it reads no store and knows no access rule.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from zoneinfo import ZoneInfo

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
from karte.render.sheet_model import DistrictSheet, SheetOptions, TocEntry
from karte.render.sheet_pages import (
    FOOTER_Y,
    copy_mark,
    footer_for,
    header_for,
    page_number_x,
    personal_band,
    write_sheet,
)


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


def merge_sheets(entries: list[TocEntry], files: list[Path], options: SheetOptions, *,
                 fiscal_year_label: str, data_date: str) -> tuple[bytes, int, int]:
    """One PDF of the districts' sheets (``files``, in the order of ``entries``): contents, then
    every district's sheet, each starting on a right-hand (odd) page: a district with an odd page
    count is followed by a blank page (with the 取扱注意 band in a personal edition, and that
    district's copy number when it is a numbered copy), so the bundle prints on both sides without
    one district's last page on the back of the next one's map. The contents of a personal edition
    list each district's copy number. Returns (the PDF, pages of contents, pages in all)."""
    from pypdf import PdfReader, PdfWriter

    per_page = rows_per_page(row_h=16, header_h=16, top=TOP - 110)
    toc_pages = max(1, math.ceil(len(entries) / per_page))
    while True:
        toc, pages = _toc(entries, options, toc_pages, fiscal_year_label=fiscal_year_label,
                          data_date=data_date)
        if pages == toc_pages:
            break
        toc_pages = pages
    blank = PdfReader(io.BytesIO(_blank_page(options))).pages[0]
    writer = PdfWriter()
    writer.append(io.BytesIO(toc))
    writer.add_outline_item("目次", 0)
    if toc_pages % 2:
        writer.add_page(blank)
    for entry, path in zip(entries, files, strict=True):
        writer.append(str(path), outline_item=f"{entry.code} {entry.name}")
        if entry.pages % 2:
            writer.add_page(blank if not entry.copy_id else PdfReader(io.BytesIO(
                _blank_page(options, entry))).pages[0])
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue(), toc_pages, len(writer.pages)


def _even(n: int) -> int:
    return n + n % 2


def _blank_page(options: SheetOptions, entry: TocEntry | None = None) -> bytes:
    """The page that fills the back of a district's last sheet in the merged PDF (with the
    district's copy mark when ``entry`` is a numbered copy: the page is part of that copy)."""
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
            canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, FOOTER_Y, "取扱注意")
        if entry is not None and entry.copy_id:
            copy_mark(canvas, font, copy_id=entry.copy_id, register_version=entry.register_version,
                      due_back=options.due_back)

    w = PageWriter(buf, paper=options.paper, font=font, header=header, footer=footer)
    w.new_page()
    w.finish()
    return buf.getvalue()


def _toc(entries: list[TocEntry], options: SheetOptions, toc_pages: int, *, fiscal_year_label: str,
         data_date: str) -> tuple[bytes, int]:
    font = register_font()
    buf = io.BytesIO()
    printed = options.printed_at.astimezone(_jst()).strftime("%Y-%m-%d %H:%M")

    def header(w: PageWriter) -> float:
        y = personal_band(w, options)
        w.text(LEFT, y - 22, "地区シート　目次", 20, bold=True)
        w.text(RIGHT, y - 20, f"{fiscal_year_label}・{options.edition.ja}・{options.paper}",
               11, align="right")
        w.text(LEFT, y - 40, f"データ時点 {data_date}　{len(entries)} 地区　"
               f"印刷 {printed} JST" + (f"　印刷者 {options.user}" if options.edition.personal
                                       else ""), 9, color=MUTED)
        w.text(LEFT, y - 54, "各地区は表面（奇数ページ）から始まります。両面印刷で地区ごとに分けられます。",
               8, color=MUTED)
        return y - 64

    def footer(canvas, number, total):
        canvas.setFillColor(MUTED)
        if options.edition.personal:
            canvas.setFont(font, 7.5)
            canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, FOOTER_Y, "取扱注意")
        canvas.setFont(font, 9)
        canvas.drawRightString(page_number_x(None), FOOTER_Y, f"目次 {number} / {total}")

    w = PageWriter(buf, paper=options.paper, font=font, header=header, footer=footer,
                   title=f"地区シート 目次（{options.edition.ja}）")
    w.new_page()
    rows = []
    page = _even(toc_pages) + 1
    numbered = any(e.copy_id for e in entries)
    for e in entries:
        pop = "—" if e.population is None else (e.population if isinstance(e.population, str)
                                                 else f"{e.population:,} 人")
        row = (e.code, e.name, pop, f"{e.pages}", f"{page}〜{page + e.pages - 1}")
        rows.append((*row[:2], e.copy_id or "", *row[2:]) if numbered else row)
        page += _even(e.pages)
    cols = (Column("コード", 70), Column("地区名", 220), Column("人口", 90, "right"),
            Column("ページ数", 60, "right"), Column("ページ", 99, "right"))
    if numbered:  # each district's part is its own numbered copy (the ledger's 複製番号)
        cols = (Column("コード", 56), Column("地区名", 180), Column("複製番号", 74),
                Column("人口", 80, "right"), Column("ページ数", 56, "right"), Column("ページ", 93, "right"))
    w.table(cols, rows, size=10, row_h=16, header_h=16, continued="目次（続き）")
    w.finish()
    return buf.getvalue(), w.pages


def _jst():
    return ZoneInfo("Asia/Tokyo")


__all__ = ["merge_sheets", "render_sheet"]


