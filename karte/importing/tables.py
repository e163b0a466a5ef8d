"""Read a tabular input file (CSV or ``.xlsx``) into rows of text, numbered as the user sees them.

Row numbers are those of the spreadsheet: the first line of the file is row 1, blank rows are
counted (and later skipped), so a message "12行目" points at row 12 in Excel or LibreOffice.
Cells are text: Excel dates become ISO ``YYYY-MM-DD`` and whole numbers lose their ``.0``;
nothing else is changed here (normalisation is :mod:`karte.importing.values`' job).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

from karte.domain.errors import InputError
from karte.importing.encoding import decode

#: Excel has at most 1,048,576 rows; refuse anything beyond a register's size by a wide margin.
MAX_ROWS = 500_000


@dataclass(frozen=True)
class RawTable:
    """The cells of one sheet or CSV file."""

    source: str                              # file name for messages (never a full path)
    rows: list[tuple[int, list[str]]]        # (row number counted from 1, cells)
    encoding: str                            # detected encoding, or "xlsx"
    sheet: str | None = None                 # the worksheet read (workbooks only)
    sheets: tuple[str, ...] = ()             # every worksheet of the workbook


def read_table(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> RawTable:
    """Read a CSV (UTF-8, UTF-8 BOM, CP932; comma or tab separated) or an ``.xlsx`` workbook.

    ``sheet`` names the worksheet of a workbook (default: the first); ``encoding`` overrides the
    detection for a CSV.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"ファイルがありません: {path.name}")
    if path.is_dir():
        raise InputError(f"{path.name} はフォルダです。ファイルを指定してください")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet)
    if path.suffix.lower() == ".xls":
        raise InputError(f"{path.name}: 古い Excel 形式 (.xls) は読めません。"
                         ".xlsx か CSV で保存し直してください")
    if sheet is not None:
        raise InputError(f"{path.name}: シート名は Excel ブック (.xlsx) にだけ指定できます")
    return parse_csv(path.read_bytes(), source=path.name, encoding=encoding)


def parse_csv(data: bytes, *, source: str, encoding: str | None = None) -> RawTable:
    """Decode and split CSV bytes (see :func:`read_table`)."""
    text, enc = decode(data, source=source, encoding=encoding)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for number, cells in enumerate(reader, start=1):
            if number > MAX_ROWS:
                raise InputError(f"{source}: 行数が多すぎます (上限 {MAX_ROWS:,} 行)")
            rows.append((number, cells))
    except csv.Error as exc:
        raise InputError(f"{source}: CSV として読めません ({len(rows) + 1}行目付近: {exc})") from exc
    return RawTable(source, rows, enc)


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    import zipfile

    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - openpyxl is a dependency
        raise InputError("Excel ブックを読むには openpyxl が必要です (pip install openpyxl)") from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: Excel ブック (.xlsx) として読めません "
                         f"({type(exc).__name__})") from exc
    try:
        names = book.sheetnames
        if sheet is None:
            ws = book[names[0]]
        elif sheet in names:
            ws = book[sheet]
        else:
            raise InputError(f"{path.name}: シート「{sheet}」がありません (あるシート: {', '.join(names)})")
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS:
                raise InputError(f"{path.name}: 行数が多すぎます (上限 {MAX_ROWS:,} 行)")
            rows.append((number, [cell_text(v) for v in values]))
        return RawTable(path.name, rows, "xlsx", ws.title, tuple(names))
    finally:
        book.close()


def cell_text(value) -> str:
    """One Excel cell as text: dates as ISO, whole numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
