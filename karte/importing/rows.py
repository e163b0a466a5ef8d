"""Rows of a table as the importer sees them: the header matched, each cell reached by field,
every problem recorded with the row number and the column header as written in the file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from karte.domain.errors import Problem
from karte.importing.headers import FIELDS, HeaderMatch, find_header_row, match_headers
from karte.importing.tables import RawTable
from karte.importing.values import ValueProblem

T = TypeVar("T")


@dataclass
class Findings:
    """Every problem (error) and warning found in one file."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

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
        return str(self.cells[j]).strip(" \t\r\n\u3000")

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
