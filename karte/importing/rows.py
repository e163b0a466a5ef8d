"""Rows of a table as the importer sees them: the header matched, each cell reached by field,
every problem recorded with the row number and the column header as written in the file.

At most :data:`MAX_LISTED` problems (and as many warnings) are kept; the rest are counted, and
the last line of the list says how many more there were (a file of garbage gives a thousand
lines to read, not a million). A cell that a spreadsheet would take for a formula (it starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a plain number) is imported as
written, with a warning at its row and column: every CSV and workbook karte writes neutralises it
(:mod:`karte.render.csvfile`), but whoever opens the original file should know.

The rows of :func:`iter_rows` share one :class:`Columns`: each column's cells are trimmed and
checked for formulas once per distinct value, and :meth:`Row.parse` with a pure parser reads a
column's outcomes worked out once per distinct text (dates, consent words and addresses repeat);
the problems are still recorded row by row, in the order of the file, as each row asks.

:func:`read_parts` goes further for a reader written as :class:`Part` s (the point kinds): each
part runs once per distinct combination of its cells, on a probe row that keeps what it found,
and only the rows where something was found are visited, to record it at their row and column in
the order a row-by-row reader would (the first :data:`MAX_LISTED` listed are the same ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import NamedTuple, TypeVar

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
#: What :meth:`Row.text` trims from both ends of a cell.
_BLANK = " \t\r\n\u3000"
#: A cell starting with none of these (nor empty) is its own text (right-trimmed), not a formula.
_SPECIAL_START = frozenset(("", "'", *_BLANK, *FORMULA_START))


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
                 findings: Findings, *, table: Columns | None = None, index: int = 0):
        self.number = number
        self.cells = cells
        self.match = match
        self.kind = kind
        self.findings = findings
        self.ok = True
        self._flagged: set[str] = set()
        self._table = table          # the cells read column by column, shared by every row
        self._index = index          # this row's position in ``table``

    def has(self, field: str) -> bool:
        return field in self.match.fields

    def column(self, field: str) -> str:
        """The column's header as written in the file (or the first accepted name)."""
        if field in self.match.names:
            return self.match.names[field]
        names = FIELDS[self.kind].get(field)
        return names[0] if names else field

    def text(self, field: str) -> str:
        if self._table is not None:
            texts, formulas = self._table.column(field)
            i = self._index
            if formulas is not None and formulas[i] and field not in self._flagged:
                self._flagged.add(field)
                self._warn_formula(field)
            return texts[i]
        j = self.match.fields.get(field)
        if j is None or j >= len(self.cells):
            return ""
        raw = _unneutralised(str(self.cells[j]))
        if field not in self._flagged and looks_like_formula(raw.lstrip(" \u3000")):
            self._flagged.add(field)
            self._warn_formula(field)
        return raw.strip(_BLANK)

    def _warn_formula(self, field: str) -> None:
        self.warn(field, "表計算ソフトで数式になる文字（= + - @ など）で始まっています"
                         "（書き出す CSV・Excel では先頭に ' を付けます）",
                  "starts like a spreadsheet formula: kept as text, neutralised on export")

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
        outcomes = None if self._table is None else self._table.outcomes(field, parser)
        value, problem = outcomes[self._index] if outcomes is not None else _outcome(parser, text)
        if problem is not None:
            self.error(field, *problem)
            return default
        return list(value) if isinstance(value, list) else value


def _outcome(parser: Callable[[str], T], text: str) -> tuple[T | None, tuple[str, str] | None]:
    """``(parser(text), None)``, or ``(None, (ja, en))`` when the cell cannot be read."""
    try:
        return parser(text), None
    except ValueProblem as exc:
        return None, (exc.ja, exc.en)
    except (ValueError, OverflowError, KeyError):
        return None, ("値を読み取れません", "unreadable value")


#: Modules whose module-level functions are pure functions of the cell text (their results may
#: be shared between cells holding the same text).
_PURE_MODULES = frozenset({"karte.importing.values", "karte.importing.kinds", "karte.importing.points",
                           "karte.importing.geocode"})


class Columns:
    """The data rows of a table read column by column, once for every row: each field's cell
    text (unneutralised and trimmed, as :meth:`Row.text` gives it) and whether it looks like a
    formula, worked out once per distinct cell value; and the outcome of each pure parser per
    distinct text (addresses, dates and controlled words repeat a lot)."""

    def __init__(self, body: list[tuple[int, list[str]]], match: HeaderMatch, kind: str = "",
                 findings: Findings | None = None, *, width: int | None = None):
        self.body = body
        self.match = match
        self.kind = kind
        self.findings = findings
        self.width = width           # the header's number of cells (values beyond it are not read)
        self.columns: dict[str, tuple[list[str], list[bool] | None]] = {}
        self.known: dict[Callable, dict[str, list[tuple] | None]] = {}   # parser -> field -> outcomes
        self._cells: list[tuple[str, ...]] | None = None                # the body's cells by column

    def data_rows(self) -> list[int]:
        """Positions in ``body`` of the rows that hold more than blanks."""
        # some cell holds more than blanks <=> the joined cells do
        return [i for i, (_n, cells) in enumerate(self.body) if "".join(map(str, cells)).strip(_BLANK)]

    def row(self, i: int) -> Row:
        """The :class:`Row` at position ``i`` of ``body`` (recording into ``findings``)."""
        number, cells = self.body[i]
        return Row(number, cells, self.match, self.kind, self.findings, table=self, index=i)

    def note_beyond(self, i: int) -> None:
        """Warn when the row at ``i`` has values beyond the last header."""
        number, cells = self.body[i]
        if self.width is not None and len(cells) > self.width and \
                any(str(c).strip() for c in cells[self.width:]):
            self.findings.warn(number, None, "見出しのない列に値があります (読み込みません)",
                               "values beyond the last header")

    def column(self, field: str) -> tuple[list[str], list[bool] | None]:
        """The field's texts, one per row of ``body``, and the formula flags (None: no formula)."""
        found = self.columns.get(field)
        if found is None:
            found = self.columns[field] = self._read(self.match.fields.get(field))
        return found

    def _read(self, j: int | None) -> tuple[list[str], list[bool] | None]:
        if j is None:
            return [""] * len(self.body), None
        if self._cells is None:                     # every column at once (zip is C)
            self._cells = list(zip_longest(*(cells for _n, cells in self.body), fillvalue=""))
        raw = [str(c) for c in self._cells[j]] if j < len(self._cells) else [""] * len(self.body)
        seen: dict[str, tuple[str, bool]] = {}
        for value in set(raw):
            if value[:1] not in _SPECIAL_START:      # neither quoted, blank nor a formula at its start
                seen[value] = (value.rstrip(_BLANK), False)
                continue
            plain = _unneutralised(value)
            seen[value] = (plain.strip(_BLANK), looks_like_formula(plain.lstrip(" \u3000")))
        texts = [seen[v][0] for v in raw]
        if not any(formula for _text, formula in seen.values()):
            return texts, None
        return texts, [seen[v][1] for v in raw]

    def outcomes(self, field: str, parser: Callable) -> list[tuple] | None:
        """``parser``'s outcome (:func:`_outcome`) for the field's cell in each row of ``body``,
        worked out once per distinct text; None when ``parser`` is not a module-level function
        of :data:`_PURE_MODULES` (a lambda or closure may depend on more than the text)."""
        if getattr(parser, "__module__", None) not in _PURE_MODULES or \
                "<" in getattr(parser, "__qualname__", "<"):
            return None                  # not kept either: a lambda is a new object per row
        by_field = self.known.setdefault(parser, {})
        found = by_field.get(field)
        if found is None:
            texts = self.column(field)[0]
            by_text = {text: _outcome(parser, text) for text in set(texts) if text}
            empty = (None, None)
            found = by_field[field] = [by_text.get(text, empty) for text in texts]
        return found


# --- row readers in parts, each worked out once per distinct value ---------------------------

@dataclass(frozen=True)
class Part:
    """One step of a row reader: ``read(row, ctx)`` looks at the cells of ``fields`` only (and
    at nothing else of the row: not its number) and returns some of the record's values (a
    dict; a part may also give any other result). It records problems on ``row`` as a reader
    does. :func:`read_parts` calls it once per distinct combination of those cells."""

    fields: tuple[str, ...]
    read: Callable[[Row, object], object]


class _Probe(Row):
    """A row of a part's cells only, that keeps what the part records (the cells it read, its
    problems and warnings) as events to be replayed on the real rows holding those cells."""

    def __init__(self, match: HeaderMatch, kind: str, index: dict[str, int], key: tuple[str, ...]):
        # not Row.__init__: no number, cells or findings (a probe is made per distinct value);
        # the cells are the key itself, reached through the part's field -> position map
        self.match, self.kind, self.index, self.key = match, kind, index, key
        self._table = None
        self.events: list[tuple] = []
        self.loud = False                # recorded a problem or a warning

    def text(self, field: str) -> str:
        self.events.append((Row.text, field))
        return self.key[self.index[field]]   # KeyError: the part reads a field it does not declare

    def error(self, field: str | None, ja: str, en: str) -> None:
        self.events.append((Row.error, field, ja, en))
        self.loud = True

    def warn(self, field: str | None, ja: str, en: str) -> None:
        self.events.append((Row.warn, field, ja, en))
        self.loud = True


class _Outcome(NamedTuple):
    """What one part gave for one combination of cells."""

    value: object
    events: list[tuple]
    raised: tuple[str, str] | None      # the ValueProblem a reader let through (drops the row)
    loud: bool                          # more than cells read: to be replayed on the row


@dataclass
class PartsRead:
    """:func:`read_parts`' result for the rows it kept: ``values[k][j]`` is part ``k``'s result
    for kept row ``j``; ``positions[j]`` its position in ``columns.body``; :meth:`row` gives the
    :class:`Row` to record further problems on (the same object the replay used, if any)."""

    columns: Columns
    positions: list[int]
    values: list[list]
    rows: dict[int, Row]

    def row(self, j: int) -> Row:
        i = self.positions[j]
        found = self.rows.get(i)
        if found is None:
            found = self.rows[i] = self.columns.row(i)
        return found

    def number(self, j: int) -> int:
        return self.columns.body[self.positions[j]][0]


def read_parts(columns: Columns, parts: list[Part], ctx: object) -> PartsRead:
    """Read every data row of ``columns`` through ``parts`` (in order), as a reader calling each
    part on each row would, and record what they find in the same order: the parts run once per
    distinct combination of their cells, and only the rows where something was found (or a cell
    looks like a formula, or has values beyond the header) are visited one by one, to record it
    at their row and column. A :class:`~karte.importing.values.ValueProblem` a part lets through
    is a problem of the row (column unknown), and drops the row, as in ``read_points``."""
    positions = columns.data_rows()
    every = len(positions) == len(columns.body)
    keyed: list[tuple[list, dict[object, _Outcome]]] = []     # per part: each row's key, the outcomes
    attention: set[int] = set()
    for part in parts:
        texts = [columns.column(f)[0] for f in part.fields]
        keys = texts[0] if len(texts) == 1 else list(zip(*texts, strict=True))
        if not every:
            keys = [keys[i] for i in positions]
        index = {f: n for n, f in enumerate(part.fields)}
        memo = {key: _run(part, columns, index, key if len(texts) > 1 else (key,), ctx) for key in set(keys)}
        loud = {key for key, found in memo.items() if found.loud}
        if loud:
            attention.update(j for j, key in enumerate(keys) if key in loud)
        keyed.append((keys, memo))
    for f in list(columns.columns):               # rows with a formula-like cell the parts read
        flags = columns.column(f)[1]
        if flags is not None:
            attention.update(j for j, i in enumerate(positions) if flags[i])
    if columns.width is not None:
        width = columns.width
        attention.update(j for j, i in enumerate(positions) if len(columns.body[i][1]) > width)
    rows: dict[int, Row] = {}
    dropped: set[int] = set()
    for j in sorted(attention):
        i = positions[j]
        columns.note_beyond(i)
        row = rows[i] = columns.row(i)
        for keys, memo in keyed:
            found = memo[keys[j]]
            for method, *args in found.events:
                method(row, *args)
            if found.raised is not None:
                row.error(None, *found.raised)
                dropped.add(j)
                break
    values = []
    for keys, memo in keyed:
        value = {key: found.value for key, found in memo.items()}
        values.append([value[key] for j, key in enumerate(keys) if j not in dropped] if dropped
                      else list(map(value.__getitem__, keys)))
    kept = [i for j, i in enumerate(positions) if j not in dropped] if dropped else positions
    return PartsRead(columns, kept, values, rows)


def _run(part: Part, columns: Columns, index: dict[str, int], key: tuple[str, ...], ctx: object) -> _Outcome:
    probe = _Probe(columns.match, columns.kind, index, key)
    try:
        value, raised = part.read(probe, ctx), None
    except ValueProblem as exc:
        value, raised = None, (exc.ja, exc.en)
    return _Outcome(value, probe.events, raised, probe.loud or raised is not None)


def iter_rows(table: RawTable, kind: str, findings: Findings, *, header_rows: int = 1,
              ignore: tuple[str, ...] = ()) -> tuple[HeaderMatch | None, Iterator[Row]]:
    """Find the header row, match it, and yield the non-blank data rows after it.

    ``header_rows`` > 1 skips extra header lines (e-Stat's second row of labels).
    """
    match, columns = read_columns(table, kind, findings, header_rows=header_rows, ignore=ignore)
    if columns is None:
        return match, iter(())

    def gen() -> Iterator[Row]:
        for i in columns.data_rows():
            columns.note_beyond(i)
            yield columns.row(i)

    return match, gen()


def read_columns(table: RawTable, kind: str, findings: Findings, *, header_rows: int = 1,
                 ignore: tuple[str, ...] = ()) -> tuple[HeaderMatch | None, Columns | None]:
    """Find the header row and match it (problems recorded), and give the data rows after it
    read column by column; no :class:`Columns` when the header is missing or wrong."""
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
        return None, None
    number, header = table.rows[idx]
    before = len(findings.problems)
    match = match_headers(kind, header, row=number, source=table.source,
                          problems=findings.problems, warnings=findings.warnings, ignore=ignore)
    if len(findings.problems) > before:  # rows read through a wrong header would only add noise
        return match, None
    return match, Columns(table.rows[idx + header_rows:], match, kind, findings, width=len(header))
