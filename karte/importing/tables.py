"""Read a tabular input file (CSV or ``.xlsx``) into rows of text, numbered as the user sees them.

Row numbers are those of the spreadsheet: the first line of the file is row 1, blank rows are
counted (and later skipped), so a message "12行目" points at row 12 in Excel or LibreOffice.
Cells are text: Excel dates become ISO ``YYYY-MM-DD`` and whole numbers lose their ``.0``;
nothing else is changed here (normalisation is :mod:`karte.importing.values`' job).

**Bounds**, checked before a file is parsed whole, so a hostile or broken file costs seconds and
megabytes, never minutes and gigabytes: a CSV of at most :data:`MAX_FILE_BYTES`; a workbook whose
parts unpack to at most :data:`MAX_XLSX_UNPACKED` bytes in all (the zip directory says so before
anything is unpacked, and the zip reader never unpacks more than that), each part at most
:data:`MAX_XLSX_RATIO` times its packed size (a "zip bomb"); then, as rows are read, at most
:data:`MAX_ROWS` rows, :data:`MAX_COLUMNS` columns and :data:`MAX_CELL` characters in a cell. The
first bound crossed stops the reading with an :class:`InputError` naming it (and the row).
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
#: Columns of a row: the widest accepted file (e-Stat's age tables) has about 60.
MAX_COLUMNS = 300
#: Characters in one cell: an address or a note fits in a few hundred.
MAX_CELL = 4_000
#: Bytes of a CSV file.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Bytes a workbook's parts unpack to, in all, and the most a part may grow when unpacked
#: (spreadsheet XML packs about 10:1; a zip bomb, 1,000:1 and more).
MAX_XLSX_UNPACKED = 300 * 1024 * 1024
MAX_XLSX_RATIO = 200


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
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name}: ファイルが大きすぎます ({size / 1e6:,.0f} MB、上限 "
                         f"{MAX_FILE_BYTES / 1e6:,.0f} MB)。分けて取り込んでください")
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
            check_row(source, number, cells)
            rows.append((number, cells))
    except csv.Error as exc:
        raise InputError(f"{source}: CSV として読めません ({len(rows) + 1}行目付近: {exc})") from exc
    return RawTable(source, rows, enc)


def check_row(source: str, number: int, cells) -> None:
    """Raise :class:`InputError` when row ``number`` crosses a bound (rows, columns, cell length)."""
    if number > MAX_ROWS:
        raise InputError(f"{source}: 行数が多すぎます (上限 {MAX_ROWS:,} 行)")
    if len(cells) > MAX_COLUMNS:
        raise InputError(f"{source} {number}行目: 列が多すぎます ({len(cells):,} 列、上限 {MAX_COLUMNS} 列)")
    try:
        if sum(map(len, cells)) <= MAX_CELL:
            return  # no cell can be too long (the usual row: one sum, no loop over the cells)
    except TypeError:  # a cell without a length: look at each
        pass
    for column, cell in enumerate(cells, start=1):
        if isinstance(cell, str) and len(cell) > MAX_CELL:
            raise InputError(f"{source} {number}行目 {column}列目: セルの文字数が多すぎます "
                             f"({len(cell):,} 文字、上限 {MAX_CELL:,} 文字)")


def check_workbook(path: Path) -> None:
    """Refuse a workbook that would unpack to more than :data:`MAX_XLSX_UNPACKED` bytes, or with
    a part that grows more than :data:`MAX_XLSX_RATIO` times, from its zip directory alone
    (nothing is unpacked)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: Excel ブック (.xlsx) として読めません "
                         f"({type(exc).__name__})") from exc
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_UNPACKED:
        raise InputError(f"{path.name}: 展開すると大きすぎる Excel ブックです ({total / 1e6:,.0f} MB、"
                         f"上限 {MAX_XLSX_UNPACKED / 1e6:,.0f} MB)。CSV で保存するか分けてください")
    for part in parts:
        if part.file_size > 1_000_000 and part.file_size > MAX_XLSX_RATIO * max(part.compress_size, 1):
            raise InputError(f"{path.name}: 展開すると異常に大きくなる部分 ({part.filename}) があります。"
                             "Excel で開いて保存し直してください (suspicious compression ratio)")


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    import zipfile

    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - openpyxl is a dependency
        raise InputError("Excel ブックを読むには openpyxl が必要です (pip install openpyxl)") from exc
    check_workbook(path)
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
            cells = [cell_text(v) for v in values]
            while cells and cells[-1] == "":  # empty cells at a row's end are no columns
                cells.pop()
            check_row(path.name, number, cells)
            rows.append((number, cells))
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
