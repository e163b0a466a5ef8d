"""The annual plan table (年次計画) as councils keep it: read from rows of cells, written back in
the same layout.

The layout (Oshu's 第2次奥州市地域福祉活動計画の年次計画, ``data/plans/oshu_annual_plan.csv``)::

    第2次奥州市地域福祉活動計画の年次計画            <- title (the plan's name before 「の年次計画」)
    「◆」 検討及び協議                               <- legend lines (optional; checked)
    …
    項目 | 第1期 |      |      | 第2期 |      | 担当  <- heading row; period groups merged over years
         | H28   | H29  | H30  | H31   | H32  |       <- the years (H28, 令和6年度, R8, 2026年度…)
    1 一人ひとりが福祉への理解を深めること            <- basic goal (基本目標): number, text
    (1) 地域共生社会の実現に向けた…を発信しよう       <- promotion goal (推進目標)
    ①対象を限定した広報活動の実施 | ○◆ | ○◆ | ○★ | ○■ | ○◎ | 総務企画課   <- action item
    ④気軽に…の実施⇒2(1)③に包括 | ○◆ | ○◆ | ○★ | -  | -  | -    <- merged into another item

The heading rows may be repeated further down (a printed table's page break): they are skipped.
Every cell holds marks of the legend (:data:`karte.domain.history.MARKS`), ``-`` (not
applicable), a merge pointer (``⇒2(1)③``) or nothing. Anything else is a problem with its row and
column; so is a year heading out of range, a year twice, an item twice, or a merge pointer to an
item the table does not have.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from karte.domain.errors import InputError
from karte.domain.history import (
    MARK_BY_SYMBOL,
    MARKS,
    Cell,
    merge_pointer,
    narrow,
    parse_cell,
    parse_fiscal_year,
    short_fiscal_label,
)


class Findings(Protocol):
    """Where problems go (:class:`karte.importing.rows.Findings`): ``error`` and ``warn`` with
    (row, column, Japanese, English)."""

    def error(self, row: int | None, column: str | None, ja: str, en: str) -> None: ...

    def warn(self, row: int | None, column: str | None, ja: str, en: str) -> None: ...


ITEM_HEADING = "項目"
SECTION_HEADING = "担当"
#: Year columns must lie within these fiscal years (平成元年度 to the current year + this many).
FIRST_YEAR = 1989
YEARS_AHEAD = 20
MAX_YEARS = 20

_GOAL = re.compile(r"^(?P<no>\d{1,2})[\s.．、]*(?P<text>\D.*)$")
_PROMOTION = re.compile(r"^[(（](?P<no>\d{1,2})[)）]\s*(?P<text>.+)$")
_ITEM = re.compile(r"^(?P<no>[①-⑳㉑-㉟])\s*(?P<text>.+)$")
_LEGEND = re.compile(r"^[「『\[](?P<symbol>.)[」』\]]\s*(?P<label>.+)$")


@dataclass
class PlanItem:
    """One action item of the table with its cells per fiscal year."""

    goal_no: str
    goal: str
    promotion_no: str
    promotion: str
    item_no: str
    item: str
    section: str = ""
    merged_into: str = ""
    cells: dict[int, Cell] = field(default_factory=dict)
    row: int | None = None

    @property
    def ref(self) -> str:
        """``2(1)③``: how the table refers to the item (merge pointers)."""
        return f"{self.goal_no}({self.promotion_no}){self.item_no}"


@dataclass
class PlanTable:
    """A whole annual plan table: the plan's name, the layout to write it back, the items."""

    name: str
    title: str = ""
    legend: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    year_labels: dict[int, str] = field(default_factory=dict)
    periods: list[tuple[str, int]] = field(default_factory=list)
    items: list[PlanItem] = field(default_factory=list)
    item_heading: str = ITEM_HEADING
    section_heading: str = SECTION_HEADING

    @property
    def first_year(self) -> int | None:
        return min(self.years) if self.years else None

    @property
    def last_year(self) -> int | None:
        return max(self.years) if self.years else None

    def layout(self) -> dict:
        """What :func:`rows_of` needs beyond the items (kept with the plan in the store)."""
        return {
            "title": self.title,
            "legend": list(self.legend),
            "year_labels": {str(y): label for y, label in self.year_labels.items()},
            "periods": [list(p) for p in self.periods],
            "item_heading": self.item_heading,
            "section_heading": self.section_heading,
        }


def parse_rows(
    rows: list[tuple[int, list[str]]], findings: Findings, *, name: str | None = None, this_year: int
) -> PlanTable | None:
    """The plan table in ``rows`` (row number, cells), every problem in ``findings``; None when
    no heading row is found (that problem recorded)."""
    cleaned = [(n, [str(c or "").strip() for c in cells]) for n, cells in rows]
    head = next((i for i, (_, cells) in enumerate(cleaned) if _is_heading(cells)), None)
    if head is None:
        findings.error(
            None,
            None,
            f"見出しの行（「{ITEM_HEADING}」と「{SECTION_HEADING}」のある行）が見つかりません",
            "no heading row with 項目 and 担当",
        )
        return None
    number, heading = cleaned[head]
    item_col = heading.index(ITEM_HEADING)
    section_col = heading.index(SECTION_HEADING)
    table = PlanTable(name="")
    _before(cleaned[:head], table, findings)
    year_row, year_cells = number, heading
    years = _year_columns(heading, item_col, section_col)
    body = head + 1
    if not years and body < len(cleaned):
        year_row, year_cells = cleaned[body]
        years = _year_columns(year_cells, item_col, section_col)
        body += 1
        table.periods = _periods(heading, item_col, section_col)
    if not years:
        findings.error(
            year_row,
            None,
            "年度の列（H28、令和6年度、R8、2026年度など）が見つかりません",
            "no fiscal-year columns",
        )
        return None
    _check_years(years, year_row, this_year, findings)
    table.years = [y for _, y, _ in years]
    table.year_labels = {y: label for _, y, label in years}
    table.name = name or _plan_name(table.title)
    if not table.name:
        findings.error(
            None,
            None,
            "計画の名前が分かりません（表題の行を書くか、名前を指定してください）",
            "the plan has no name (no title row)",
        )
    _body(cleaned[body:], table, years, item_col, section_col, findings)
    return table


def _is_heading(cells: list[str]) -> bool:
    return ITEM_HEADING in cells and SECTION_HEADING in cells


def _before(rows, table: PlanTable, findings: Findings) -> None:
    """Title and legend lines above the heading."""
    for number, cells in rows:
        text = next((c for c in cells if c), "")
        if not text:
            continue
        legend = _LEGEND.match(text)
        if legend:
            symbol = legend.group("symbol")
            mark = MARK_BY_SYMBOL.get(symbol)
            if mark is None:
                known = "、".join(f"「{m.symbol}」{m.label}" for m in MARKS)
                findings.error(
                    number,
                    "凡例",
                    f"凡例の記号「{symbol}」は karte の凡例にありません（{known}）",
                    f"unknown legend symbol {symbol!r}",
                )
            elif legend.group("label").strip() != mark.label:
                findings.warn(
                    number,
                    "凡例",
                    f"凡例「{symbol}」の説明「{legend.group('label').strip()}」は"
                    f"karte の「{mark.label}」として読みます",
                    "legend label differs",
                )
            table.legend.append(text)
        elif not table.title:
            table.title = text


def _plan_name(title: str) -> str:
    return re.sub(r"(の)?年次(計画|表)$", "", title).strip()


def _year_columns(cells: list[str], item_col: int, section_col: int) -> list[tuple[int, int, str]]:
    """(column, fiscal year, heading) of the cells between the item and section columns that read
    as fiscal years."""
    out = []
    for col in range(item_col + 1, section_col):
        label = cells[col] if col < len(cells) else ""
        year = parse_fiscal_year(label)
        if year is not None:
            out.append((col, year, label))
    return out


def _periods(heading: list[str], item_col: int, section_col: int) -> list[tuple[str, int]]:
    """Period groups over the year columns (第1期 over three years…), from the heading row whose
    merged cells arrive as a label followed by empty cells."""
    out: list[tuple[str, int]] = []
    for col in range(item_col + 1, section_col):
        label = heading[col] if col < len(heading) else ""
        if label or not out:
            out.append((label, 1))
        else:
            out[-1] = (out[-1][0], out[-1][1] + 1)
    return out if any(label for label, _ in out) else []


def _check_years(years, row: int, this_year: int, findings: Findings) -> None:
    last = this_year + YEARS_AHEAD
    seen: dict[int, str] = {}
    for _, year, label in years:
        if not FIRST_YEAR <= year <= last:
            findings.error(
                row,
                label,
                f"年度 {year}（{label}）は範囲外です（{FIRST_YEAR}〜{last}年度）",
                f"fiscal year {year} out of range {FIRST_YEAR}-{last}",
            )
        if year in seen:
            findings.error(
                row,
                label,
                f"年度 {year} の列が2つあります（「{seen[year]}」と「{label}」）",
                f"fiscal year {year} twice",
            )
        seen.setdefault(year, label)
    ordered = [y for _, y, _ in years]
    if len(ordered) > MAX_YEARS:
        findings.error(
            row, None, f"年度の列が多すぎます（{len(ordered)} 列、上限 {MAX_YEARS}）", "too many years"
        )
    if len(set(ordered)) == len(ordered) and ordered != list(range(ordered[0], ordered[0] + len(ordered))):
        findings.error(
            row,
            None,
            "年度の列は1年ずつ続けて並べてください（" + "、".join(label for _, _, label in years) + "）",
            "fiscal years not consecutive",
        )


def _body(rows, table: PlanTable, years, item_col: int, section_col: int, findings: Findings) -> None:
    goal_no = goal = promotion_no = promotion = ""
    seen: dict[str, int] = {}
    labels = {y: label for _, y, label in years}
    for number, cells in rows:
        cells = cells + [""] * (section_col + 1 - len(cells))
        if not any(cells) or _is_heading(cells):
            continue
        raw = cells[item_col].strip()
        text = narrow(raw)  # one character for one: positions in text are positions in raw
        year_cells = {year: cells[col] for col, year, _ in years}
        if not text and all(parse_fiscal_year(v) is not None for v in year_cells.values()):
            continue  # a repeated year row
        marked = any(v.strip() for v in year_cells.values())
        if m := _ITEM.match(text):
            if not promotion_no:
                findings.error(
                    number,
                    table.item_heading,
                    "取組項目の前に基本目標（1 …）と推進目標（(1) …）の行が必要です",
                    "an item before its goals",
                )
                continue
            item_text, pointer = merge_pointer(raw[m.start("text") :])
            item = PlanItem(
                goal_no,
                goal,
                promotion_no,
                promotion,
                m.group("no"),
                item_text,
                section=cells[section_col].strip(),
                merged_into=pointer,
                row=number,
            )
            for year, raw in year_cells.items():
                cell = parse_cell(raw)
                if isinstance(cell, str):
                    findings.error(number, labels[year], cell, f"unknown mark in {raw!r}")
                    continue
                if cell.text:
                    item.cells[year] = cell
            if item.ref in seen:
                findings.error(
                    number,
                    table.item_heading,
                    f"項目「{item.ref}」が重複しています（{seen[item.ref]}行目と同じ番号）",
                    f"item {item.ref} twice",
                )
                continue
            seen[item.ref] = number
            table.items.append(item)
        elif m := _PROMOTION.match(text):
            promotion_no, promotion = m.group("no"), raw[m.start("text") :].strip()
            if not goal_no:
                findings.error(
                    number,
                    table.item_heading,
                    "推進目標の前に基本目標（1 …）の行が必要です",
                    "a promotion goal before its basic goal",
                )
            if marked:
                findings.error(
                    number,
                    table.item_heading,
                    "推進目標の行には記号を書けません（取組項目の行に書いてください）",
                    "marks on a goal row",
                )
        elif m := _GOAL.match(text):
            goal_no, goal = m.group("no"), raw[m.start("text") :].strip()
            promotion_no = promotion = ""
            if marked:
                findings.error(
                    number,
                    table.item_heading,
                    "基本目標の行には記号を書けません（取組項目の行に書いてください）",
                    "marks on a goal row",
                )
        else:
            findings.error(
                number,
                table.item_heading,
                "項目の番号が読めません（基本目標「1 …」、推進目標「(1) …」、"
                "取組項目「① …」のいずれかで始めてください）",
                "unreadable item number",
            )
    refs = {item.ref for item in table.items}
    for item in table.items:
        targets = [item.merged_into] + [c.merged_into for c in item.cells.values() if c.merged_into]
        for target in filter(None, targets):
            if target not in refs:
                findings.error(
                    item.row,
                    table.item_heading,
                    f"包括先の項目「{target}」が表にありません",
                    f"merge target {target} not in the table",
                )
            elif target == item.ref:
                findings.error(
                    item.row,
                    table.item_heading,
                    "項目を自分自身に包括することはできません",
                    "an item merged into itself",
                )


# --- writing the layout back ------------------------------------------------------------------------


def rows_of(table: PlanTable) -> list[list[str]]:
    """The table as rows of cells, in the layout :func:`parse_rows` reads (title, legend, heading
    rows, goals, items), so an export loads back unchanged."""
    years = sorted(table.years)
    labels = {y: table.year_labels.get(y) or short_fiscal_label(y) for y in years}
    width = len(years) + 2
    out: list[list[str]] = []
    if table.title or table.name:
        out.append(_pad([table.title or f"{table.name}の年次計画"], width))
        out.append(_pad([], width))
    legend = table.legend or [f"「{m.symbol}」 {m.label}" for m in MARKS]
    out += [_pad([line], width) for line in legend]
    out.append(_pad([], width))
    periods = table.periods if sum(span for _, span in table.periods) == len(years) else []
    if periods:
        heading = [table.item_heading]
        for label, span in periods:
            heading += [label] + [""] * (span - 1)
        out.append([*heading, table.section_heading])
        out.append(["", *[labels[y] for y in years], ""])
    else:
        out.append([table.item_heading, *[labels[y] for y in years], table.section_heading])
    goal = promotion = None
    for item in table.items:
        if item.goal_no != goal:
            goal, promotion = item.goal_no, None
            out.append(_pad([f"{item.goal_no} {item.goal}"], width))
        if item.promotion_no != promotion:
            promotion = item.promotion_no
            out.append(_pad([f"({item.promotion_no}) {item.promotion}"], width))
        text = f"{item.item_no}{item.item}" + (f"⇒{item.merged_into}に包括" if item.merged_into else "")
        out.append([text, *[item.cells[y].text if y in item.cells else "" for y in years], item.section])
    return out


def _pad(cells: list[str], width: int) -> list[str]:
    return cells + [""] * (width - len(cells))


# --- from and to the store's layers ---------------------------------------------------------------------


def table_from_layers(plan: dict, items: list[dict], marks: list[dict]) -> PlanTable:
    """A plan as stored (its ``welfare_plans`` row, its ``plan_items`` and ``plan_marks`` rows) as a
    :class:`PlanTable` (the layout kept with the plan, the marks parsed)."""
    layout = json.loads(plan.get("layout") or "{}") if isinstance(plan.get("layout"), str) else {}
    first, last = _int(plan.get("first_year")), _int(plan.get("last_year"))
    labels = {int(k): v for k, v in (layout.get("year_labels") or {}).items()}
    years = list(range(first, last + 1)) if first is not None and last is not None else sorted(labels)
    table = PlanTable(
        name=str(plan.get("name") or plan.get("key") or ""),
        title=layout.get("title", ""),
        legend=list(layout.get("legend", [])),
        years=years,
        year_labels={y: labels.get(y) or short_fiscal_label(y) for y in years},
        periods=[(str(a), int(b)) for a, b in layout.get("periods", [])],
        item_heading=layout.get("item_heading", ITEM_HEADING),
        section_heading=layout.get("section_heading", SECTION_HEADING),
    )
    cells: dict[str, dict[int, Cell]] = {}
    for mark in marks:
        cell = parse_cell(mark.get("marks") or "")
        if isinstance(cell, Cell) and cell.text and _int(mark.get("fiscal_year")) is not None:
            cells.setdefault(str(mark["item_id"]), {})[int(mark["fiscal_year"])] = cell
    for item in sorted(items, key=lambda r: (_int(r.get("position")) or 0, str(r.get("item_id")))):
        table.items.append(
            PlanItem(
                goal_no=_text(item.get("goal_no")),
                goal=_text(item.get("goal")),
                promotion_no=_text(item.get("promotion_no")),
                promotion=_text(item.get("promotion")),
                item_no=_text(item.get("item_no")),
                item=_text(item.get("item")),
                section=_text(item.get("section")),
                merged_into=_text(item.get("merged_into")),
                cells=cells.get(str(item.get("item_id")), {}),
            )
        )
    return table


def _int(v) -> int | None:
    if v is None or v == "" or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    return int(v)


def _text(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    return str(v)


def write_table(table: PlanTable, out: Path, *, encoding: str = "utf-8-sig") -> Path:
    """Write the table to ``out``: ``.xlsx`` (title and period headings merged, as printed) or
    ``.csv`` (``encoding``: UTF-8 with BOM by default, ``cp932`` for older Excel)."""
    rows = rows_of(table)
    out = Path(out)
    if out.suffix.lower() == ".xlsx":
        _write_xlsx(table, rows, out)
    elif out.suffix.lower() == ".csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        try:
            out.write_bytes(buffer.getvalue().encode(encoding))
        except UnicodeEncodeError as exc:
            raise InputError(
                f"{out.name}: {encoding} で書けない文字があります（{exc.object[exc.start]}）。"
                "UTF-8 で書き出してください"
            ) from exc
    else:
        raise InputError(f"{out.name}: 書き出せるのは .xlsx か .csv です")
    return out


def _write_xlsx(table: PlanTable, rows: list[list[str]], out: Path) -> None:
    # openpyxl costs 0.16 s to import: only when a workbook is written
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "年次計画"
    width = len(table.years) + 2
    thin = Side(style="thin", color="8C8C8C")
    heading_rows = []
    for r, cells in enumerate(rows, start=1):
        for c, value in enumerate(cells, start=1):
            sheet.cell(row=r, column=c, value=value or None)
        if cells and cells[0] == table.item_heading:
            heading_rows.append(r)
    if table.title or table.name:
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
        sheet.cell(row=1, column=1).font = Font(bold=True, size=13)
    first = heading_rows[0] if heading_rows else None
    if first is not None:
        periods = table.periods if sum(span for _, span in table.periods) == len(table.years) else []
        col = 2
        for _, span in periods:
            if span > 1:
                sheet.merge_cells(start_row=first, start_column=col, end_row=first, end_column=col + span - 1)
            col += span
        if periods:  # the item and section headings span both heading rows
            sheet.merge_cells(start_row=first, start_column=1, end_row=first + 1, end_column=1)
            sheet.merge_cells(start_row=first, start_column=width, end_row=first + 1, end_column=width)
        last_heading = first + (1 if periods else 0)
        fill = PatternFill("solid", fgColor="E6E6E6")
        for r in range(first, sheet.max_row + 1):
            for c in range(1, width + 1):
                cell = sheet.cell(row=r, column=c)
                cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
                if r <= last_heading:
                    cell.fill = fill
                    cell.font = Font(bold=True)
                    cell.alignment = Alignment(horizontal="center", vertical="center")
                elif 1 < c < width:
                    cell.alignment = Alignment(horizontal="center")
                elif c == 1:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.column_dimensions["A"].width = 60
    for c in range(2, width):
        sheet.column_dimensions[get_column_letter(c)].width = 8
    sheet.column_dimensions[get_column_letter(width)].width = 14
    book.save(out)
