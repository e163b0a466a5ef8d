"""A small page writer over a ReportLab canvas: running header and footer, headings, and tables
with fixed row heights that repeat their header on every page.

Fixed row heights keep a sheet's page count a simple function of its row counts, which is what a
printed form wants (and what the tests check). Every page is laid out in A4 points; A3 paper
draws the same page enlarged by √2 (the same sheet, readable from farther away on a wall).
Text that does not fit its cell is shrunk a little (never below :data:`MIN_PT`), then wrapped
when the row has room for two lines, and only then cut with "…". A cell value with a line break
("name\nkana") prints as those lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reportlab import rl_config
from reportlab.lib.colors import HexColor, black, white
from reportlab.lib.pagesizes import A3, A4
from reportlab.pdfgen.canvas import Canvas

from karte.render.pdf_fonts import safe_text

PAPER = {"A4": A4, "A3": A3}
WIDTH, HEIGHT = A4
MARGIN = 28.0
LEFT, RIGHT = MARGIN, WIDTH - MARGIN
TOP = HEIGHT - MARGIN
BOTTOM = 40.0  # above the footer
HEADING_H = 24.0  # a section heading with its rule
CONTINUED_H = 16.0  # the "(続き)" line above a table carried over to a new page
#: The smallest type on any sheet (points on A4): fitting text into a cell never shrinks it below.
MIN_PT = 7.0

INK = HexColor("#1a1a1a")
MUTED = HexColor("#555555")
RULE = HexColor("#8c8c8c")
BAND = HexColor("#e6e6e6")
ZEBRA = HexColor("#f4f4f4")
GROUP = HexColor("#d4d4d4")


@dataclass(frozen=True)
class Column:
    """A table column: title, width in points, alignment (``left``, ``right``, ``center``), and
    ``check`` for an empty roll-call box."""

    title: str
    width: float
    align: str = "left"
    check: bool = False


class Strong(str):
    """A cell value printed bold (e.g. a missing supporter: 未定)."""


@dataclass(frozen=True)
class Group:
    """A full-width group row inside a table (e.g. one supporter and the people they go to)."""

    text: str


class _NumberedCanvas(Canvas):
    """A canvas that knows the page count when the footer is drawn ("2 / 5")."""

    def __init__(self, *args, footer: Callable[[Canvas, int, int], None], **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []
        self._footer = footer

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._footer(self, number, total)
            Canvas.showPage(self)
        Canvas.save(self)


class PageWriter:
    """Writes pages top to bottom; ``y`` is the cursor in A4 points."""

    def __init__(
        self,
        target,
        *,
        paper: str,
        font: str,
        header: Callable[[PageWriter], float],
        footer: Callable[[Canvas, int, int], None],
        title: str = "",
        author: str = "",
    ):
        if paper not in PAPER:
            raise ValueError(f"paper should be one of {sorted(PAPER)}, got {paper!r}")
        # binary Flate streams: ReportLab's default ASCII85 layer on top makes files 25 % larger
        # and costs a third of the time of a sheet (a process-wide ReportLab setting)
        rl_config.useA85 = 0
        self.font = font
        self.zoom = PAPER[paper][0] / WIDTH
        self._header = header
        zoom = self.zoom

        def scaled_footer(canvas, number, total):
            canvas.saveState()
            canvas.scale(zoom, zoom)
            footer(canvas, number, total)
            canvas.restoreState()

        self.canvas = _NumberedCanvas(target, pagesize=PAPER[paper], footer=scaled_footer,
                                      initialFontName=font, initialFontSize=9, pageCompression=1,
                                      lang="ja-JP")  # the document language, for screen readers
        self.canvas.setTitle(title)
        self.canvas.setAuthor(author)
        self.canvas.setCreator("karte (地区カルテ)")
        self.pages = 0
        self.y = TOP

    # --- pages --------------------------------------------------------------------------------

    def new_page(self) -> None:
        if self.pages:
            self.canvas.restoreState()
            self.canvas.showPage()
        self.pages += 1
        self.canvas.saveState()
        if self.zoom != 1:
            self.canvas.scale(self.zoom, self.zoom)
        self.y = self._header(self)

    def finish(self) -> None:
        if self.pages:
            self.canvas.restoreState()
            self.canvas.showPage()
        self.canvas.save()

    def ensure(self, height: float) -> None:
        """Start a new page unless ``height`` points are left above the bottom margin."""
        if self.y - height < BOTTOM:
            self.new_page()

    def space(self, height: float) -> None:
        self.y -= height

    # --- text ---------------------------------------------------------------------------------

    def text(self, x, y, text, size, *, color=INK, bold=False, align="left") -> None:
        c = self.canvas
        text = safe_text(text)
        width = c.stringWidth(text, self.font, size)
        if align == "right":
            x -= width
        elif align == "center":
            x -= width / 2
        c.setFillColor(color)
        if not bold:
            c.setFont(self.font, size)
            c.drawString(x, y, text)
            return
        # the font has one weight: a thin outline of the same colour makes it bold. The render
        # mode is graphics state: keep it inside q … Q so the text after it is plain again.
        c.saveState()
        t = c.beginText(x, y)
        t.setFont(self.font, size)
        t.setTextRenderMode(2)
        c.setStrokeColor(color)
        c.setLineWidth(size * 0.035)
        t.textOut(text)
        c.drawText(t)
        c.restoreState()

    def heading(self, text: str, *, note: str = "", keep: float = 60.0, x0: float = LEFT,
                x1: float = RIGHT) -> None:
        """A section heading with a rule from ``x0`` to ``x1``; keeps ``keep`` points of what
        follows on its page."""
        self.ensure(HEADING_H + keep)
        self.y -= 15
        self.text(x0, self.y, text, 12.5, bold=True)
        if note:
            self.text(x1, self.y, note, 8, color=MUTED, align="right")
        self.y -= 5
        self.canvas.setStrokeColor(INK)
        self.canvas.setLineWidth(1.2)
        self.canvas.line(x0, self.y, x1, self.y)
        self.y -= 4

    def paragraph(self, text: str, size: float = 8.5, *, color=MUTED, width: float | None = None,
                  x: float = LEFT) -> None:
        for line in wrap(self.canvas, text, self.font, size, width or (RIGHT - x)):
            self.ensure(size * 1.45)
            self.y -= size * 1.45
            self.text(x, self.y + size * 0.3, line, size, color=color)

    # --- tables -------------------------------------------------------------------------------

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str] | Group],
        *,
        size: float = 9.0,
        row_h: float = 15.0,
        header_h: float = 15.0,
        continued: str = "",
        x: float = LEFT,
        empty: str = "",
    ) -> None:
        """Draw rows under a header, breaking pages as needed (the header repeats, with
        ``continued`` above it). A group row is never left alone at the foot of a page.
        ``empty`` is printed under the header when there are no rows (an empty form says why)."""
        self._table_header(columns, header_h, x)
        if not rows and empty:
            self.text(x + 4, self.y - row_h / 2 - size * 0.35, empty, size, color=MUTED)
            self.y -= row_h
        for i, row in enumerate(rows):
            need = row_h * (2 if isinstance(row, Group) and i + 1 < len(rows) else 1)
            if self.y - need < BOTTOM:
                self.new_page()
                if continued:
                    self.text(x, self.y - 12, continued, 8.5, color=MUTED)
                    self.y -= CONTINUED_H
                self._table_header(columns, header_h, x)
            if isinstance(row, Group):
                self._group_row(columns, row, row_h, size, x)
            else:
                self._row(columns, row, row_h, size, x, zebra=i % 2 == 1)

    def _table_header(self, columns, h, x):
        c = self.canvas
        total = sum(col.width for col in columns)
        c.setFillColor(BAND)
        c.rect(x, self.y - h, total, h, stroke=0, fill=1)
        cx = x
        for col in columns:
            self._cell(col, col.title, cx, self.y - h, h, 8, bold=True)
            cx += col.width
        self.y -= h
        c.setStrokeColor(INK)
        c.setLineWidth(0.8)
        c.line(x, self.y, x + total, self.y)

    def _row(self, columns, row, h, size, x, *, zebra):
        c = self.canvas
        total = sum(col.width for col in columns)
        if zebra:
            c.setFillColor(ZEBRA)
            c.rect(x, self.y - h, total, h, stroke=0, fill=1)
        cx = x
        for col, value in zip(columns, row, strict=True):
            if col.check:
                c.setStrokeColor(INK)
                c.setLineWidth(0.8)
                c.setFillColor(white)
                box = min(10.0, h - 4)
                c.rect(cx + (col.width - box) / 2, self.y - h / 2 - box / 2, box, box, stroke=1, fill=1)
            else:
                self._cell(col, value, cx, self.y - h, h, size)
            cx += col.width
        self.y -= h
        c.setStrokeColor(RULE)
        c.setLineWidth(0.3)
        c.line(x, self.y, x + total, self.y)

    def _group_row(self, columns, row: Group, h, size, x):
        c = self.canvas
        total = sum(col.width for col in columns)
        c.setFillColor(GROUP)
        c.rect(x, self.y - h, total, h, stroke=0, fill=1)
        text, fsize = fit(c, row.text, self.font, size, total - 8)
        self.text(x + 4, self.y - h / 2 - fsize * 0.35, text, fsize, bold=True)
        self.y -= h
        c.setStrokeColor(black)
        c.setLineWidth(0.6)
        c.line(x, self.y, x + total, self.y)

    def _cell(self, col: Column, value, x, y, h, size, *, bold=False):
        text = "" if value is None else str(value)
        if not text:
            return
        bold = bold or isinstance(value, Strong)
        pad = 3.0
        width = col.width - 2 * pad
        if "\n" in text:  # explicit lines (e.g. a name over its kana), each fitted on its own
            parts = text.split("\n")
            fsize = max(size * 0.85, MIN_PT)
            fitted = [fit(self.canvas, part, self.font, fsize, width, min_ratio=MIN_PT / fsize)
                      for part in parts]
            lines, fsize = [line for line, _ in fitted], min(f for _, f in fitted)
        else:
            lines, fsize = fit_lines(self.canvas, text, self.font, size, width,
                                     max_lines=2 if h >= 2.25 * max(size * 0.85, MIN_PT) + 2 else 1)
        lead = fsize * 1.12
        top = y + h / 2 + (len(lines) - 1) * lead / 2 - fsize * 0.35
        for i, line in enumerate(lines):
            ly = top - i * lead
            if col.align == "right":
                self.text(x + col.width - pad, ly, line, fsize, bold=bold, align="right")
            elif col.align == "center":
                self.text(x + col.width / 2, ly, line, fsize, bold=bold, align="center")
            else:
                self.text(x + pad, ly, line, fsize, bold=bold)


def rows_per_page(*, row_h: float, header_h: float, top: float) -> int:
    """How many rows of a table fit between ``top`` (where its header starts) and the bottom."""
    return int((top - header_h - BOTTOM) // row_h)


def fit(canvas, text: str, font: str, size: float, width: float, *, min_ratio: float = 0.8):
    """(text, size) on one line: shrunk down to ``min_ratio`` × size, then cut with "…"."""
    text = safe_text(text)
    w = canvas.stringWidth(text, font, size)
    if w <= width:
        return text, size
    least = min(size, max(size * min_ratio, MIN_PT))
    if w * least / size <= width:
        return text, size * width / w
    size = least
    while text and canvas.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…", size


def fit_lines(canvas, text, font, size, width, *, max_lines=1):
    """Lines and size for a cell: one line (shrunk a little), else two, else cut."""
    if max_lines == 1 or canvas.stringWidth(text, font, size) * max(0.85, MIN_PT / size) <= width:
        line, fsize = fit(canvas, text, font, size, width, min_ratio=0.85)
        return [line], fsize
    small = min(size, max(size * 0.85, MIN_PT))
    lines = wrap(canvas, text, font, small, width)
    if len(lines) <= max_lines:
        return lines, small
    if small > MIN_PT:  # the smallest type before anything is cut
        least = wrap(canvas, text, font, MIN_PT, width)
        if len(least) <= max_lines:
            return least, MIN_PT
        small, lines = MIN_PT, least
    head = lines[: max_lines - 1]
    rest = "".join(lines[max_lines - 1:])
    last, _ = fit(canvas, rest, font, small, width, min_ratio=1.0)
    return [*head, last], small


#: Characters that must not begin a line (Japanese line-breaking rules, 行頭禁則).
_NO_LINE_START = frozenset("）」』】、。・，．：ー〜…")


#: Characters of a number that is never broken across lines (lot numbers, phones, times).
_NUMBER = frozenset("0123456789-－‐:：")


def _number_start(line: str) -> int:
    """Where the run of number characters at the end of ``line`` starts (len(line): none)."""
    i = len(line)
    while i and line[i - 1] in _NUMBER:
        i -= 1
    return i


def wrap(canvas, text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines of at most ``width`` points, character by character (Japanese has no
    spaces), preferring breaks after "・", "、", " " and "（", never inside a number."""
    lines, line = [], ""
    for ch in text:
        if canvas.stringWidth(line + ch, font, size) <= width or not line:
            line += ch
            continue
        if ch in _NO_LINE_START and len(line) > 1:  # 禁則: "）" never begins a line
            lines.append(line[:-1])
            line = line[-1] + ch
            continue
        cut = max(line.rfind(b) for b in ("・", "、", " ", "　", "）"))
        run = _number_start(line) if ch in _NUMBER else len(line)
        if 0 < run < len(line) and run - 1 >= cut:  # a number (lot, phone) moves down whole
            lines.append(line[:run].rstrip())
            line = line[run:] + ch
        elif cut >= len(line) // 4:
            lines.append(line[: cut + 1].rstrip())
            line = line[cut + 1:].lstrip() + ch
        else:
            lines.append(line)
            line = ch
    if line:
        lines.append(line)
    return lines
