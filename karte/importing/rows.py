"""Rows of a table as the importer sees them: the header matched, each cell reached by field,
every problem recorded with the row number and the column header as written in the file.

At most :data:`MAX_LISTED` problems (and as many warnings) are kept; the rest are counted, and
the last line of the list says how many more there were (a file of garbage gives a thousand
lines to read, not a million). A cell that a spreadsheet would take for a formula (it starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a plain number) is imported as
written, with a warning at its row and column: every CSV and workbook karte writes neutralises it
(:mod:`karte.render.csvfile`), but whoever opens the original file should know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from karte.domain.errors import Problem
from karte.importing.headers import FIELDS, HeaderMatch, find_header_row, match_headers
from karte.importing.tables import RawTable
from karte.importing.values import ValueProblem

T = TypeVar("T")

#: Problems (and warnings) listed per file; the rest are counted.
MAX_LISTED = 1_000
#: What a spreadsheet runs as a formula (OWASP's list: = + - @ tab CR), unless it is a number.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)*|\.\d+)([eE][+-]?\d+)?$")


def looks_like_formula(text: str) -> bool:
    """Would a spreadsheet read ``text`` as a formula (``=1+2``, ``@SUM(1)``, ``+cmd|…``)? A plain
    number (``-3``, ``+81``) is not one."""
    return bool(text) and text.startswith(FORMULA_START) and not _NUMBER.match(text.strip())


def _unneutralised(text: str) -> str:
    """A cell as it was before karte's CSV writer neutralised it (``'=1+2`` -> ``=1+2``): the
    apostrophe :func:`karte.render.csvfile.safe_cell` puts before formula-looking text is not
    data, so a downloaded CSV imports back unchanged."""
    if text.startswith("'") and looks_like_formula(text[1:]):
        return text[1:]
    return text


@dataclass(frozen=True)
class MoreProblems(Problem):
    """The last line of a capped list: how many more problems were found and not listed."""

    counter: list = field(default_factory=lambda: [0], compare=False, repr=False)

    def format(self, *, verbose: bool = False) -> str:
        n = self.counter[0]
        text = (f"{self.file}: ほか {n:,} 件は表示していません（最初の {MAX_LISTED:,} 件だけを表示。"
                "合わせて直してから、もう一度取り込んでください）")
        return text + (f" ({n:,} more not listed)" if verbose else "")


class Capped(list):
    """A list of problems that keeps the first :data:`MAX_LISTED` and counts the rest, with one
    :class:`MoreProblems` line at its end once there are more."""

    def __init__(self, source: str, items: Iterable[Problem] = ()):
        super().__init__()
        self.source = source
        self.more: MoreProblems | None = None
        self.extend(items)

    @property
    def total(self) -> int:
        """Every problem found, listed or not."""
        return len(self) - (self.more is not None) + (self.more.counter[0] if self.more else 0)

    def append(self, item: Problem) -> None:
        if self.more is None and len(self) < MAX_LISTED:
            super().append(item)
            return
        if self.more is None:
            self.more = MoreProblems(f"{self.source}（以下省略）", None, None, "", "")
            super().append(self.more)
        self.more.counter[0] += 1

    def extend(self, items: Iterable[Problem]) -> None:
        for item in items:
            self.append(item)

    def __iadd__(self, items):
        self.extend(items)
        return self


@dataclass
class Findings:
    """Every problem (error) and warning found in one file (the first :data:`MAX_LISTED` of each
    listed, the rest counted)."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def __post_init__(self):
        self.problems = Capped(self.source, self.problems)
        self.warnings = Capped(self.source, self.warnings)

    def error(self, row: int | None, column: str | None, ja: str, en: str) -> None:
        self.problems.append(Problem(self.source, row, column, ja, en))

    def warn(self, row: int | None, column: str | None, ja: str, en: str) -> None:
        self.warnings.append(Problem(self.source, row, column, ja, en))


class Row:
    """One data row: ``text(field)`` gives the cell, ``parse(field, parser)`` reads it and records
    a problem (at this row, in this column) when it cannot."""

    def __init__(self, number: int, cells: list[str], match: HeaderMatch, kind: str,
                 findings: Findings):
        self.number = number
        self.cells = cells
        self.match = match
        self.kind = kind
        self.findings = findings
        self.ok = True
        self._flagged: set[str] = set()

    def has(self, field: str) -> bool:
        return field in self.match.fields

    def column(self, field: str) -> str:
        """The column's header as written in the file (or the first accepted name)."""
        if field in self.match.names:
            return self.match.names[field]
        names = FIELDS[self.kind].get(field)
        return names[0] if names else field

    def text(self, field: str) -> str:
        j = self.match.fields.get(field)
        if j is None or j >= len(self.cells):
            return ""
        raw = _unneutralised(str(self.cells[j]))
        if field not in self._flagged and looks_like_formula(raw.lstrip(" \u3000")):
            self._flagged.add(field)
            self.warn(field, "表計算ソフトで数式になる文字（= + - @ など）で始まっています"
                             "（書き出す CSV・Excel では先頭に ' を付けます）",
                      "starts like a spreadsheet formula: kept as text, neutralised on export")
        return raw.strip(" \t\r\n\u3000")

    def error(self, field: str | None, ja: str, en: str) -> None:
        self.ok = False
        self.findings.error(self.number, self.column(field) if field else None, ja, en)

    def warn(self, field: str | None, ja: str, en: str) -> None:
        self.findings.warn(self.number, self.column(field) if field else None, ja, en)

    def parse(self, field: str, parser: Callable[[str], T], *, required: bool = False,
              default=None, empty: tuple[str, str] | None = None) -> T | None:
        """``parser(cell)``; an empty cell gives ``default``, or a problem when ``required``
        (``empty``: its Japanese and English message)."""
        text = self.text(field)
        if text == "":
            if required:
                ja, en = empty or ("値が空です (必須の項目です)", "required cell is empty")
                self.error(field, ja, en)
            return default
        try:
            return parser(text)
        except ValueProblem as exc:
            self.error(field, exc.ja, exc.en)
            return default
        except (ValueError, OverflowError, KeyError):
            self.error(field, "値を読み取れません", "unreadable value")
            return default


def iter_rows(table: RawTable, kind: str, findings: Findings, *, header_rows: int = 1,
              ignore: tuple[str, ...] = ()) -> tuple[HeaderMatch | None, Iterator[Row]]:
    """Find the header row, match it, and yield the non-blank data rows after it.

    ``header_rows`` > 1 skips extra header lines (e-Stat's second row of labels).
    """
    idx = find_header_row(kind, table.rows)
    if idx is None:
        names = "、".join(names[0] for names in FIELDS[kind].values())
        where, hint, hint_en = "", "", ""
        if table.sheet is not None:
            where = f"シート「{table.sheet}」に"
            others = [s for s in table.sheets if s != table.sheet]
            if others:
                hint = f"。ほかのシート ({'、'.join(others)}) なら --sheet で指定してください"
                hint_en = f" (sheet {table.sheet}; choose another with --sheet)"
        findings.error(None, None, f"{where}見出し行が見つかりません (見出しの例: {names}){hint}",
                       f"no header row found{hint_en}")
        return None, iter(())
    number, header = table.rows[idx]
    before = len(findings.problems)
    match = match_headers(kind, header, row=number, source=table.source,
                          problems=findings.problems, warnings=findings.warnings, ignore=ignore)
    if len(findings.problems) > before:  # rows read through a wrong header would only add noise
        return match, iter(())
    body = table.rows[idx + header_rows:]

    def gen() -> Iterator[Row]:
        for n, cells in body:
            if not any(str(c).strip(" \t\r\n\u3000") for c in cells):
                continue
            if len(cells) > len(header) and any(str(c).strip() for c in cells[len(header):]):
                findings.warn(n, None, "見出しのない列に値があります (読み込みません)",
                              "values beyond the last header")
            yield Row(n, cells, match, kind, findings)

    return match, gen()
