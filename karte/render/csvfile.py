"""CSV and Excel files that a spreadsheet opens as data, never as formulas.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel and LibreOffice when the file is opened ("CSV injection": a name imported as
``=HYPERLINK("http://…", "詳細")`` or ``+cmd|' /C calc'!A0`` would become a link or a command).
Every CSV and workbook karte writes goes through :func:`safe_cell`, which puts an apostrophe in
front of such text (OWASP's advice: the spreadsheet shows the text, the apostrophe hides, and
nothing runs). Numbers are numbers, and text that is a plain number (``-3``, ``+81``) is left as
it is. Imports warn about such cells too (:mod:`karte.importing.rows`).

Writers (keep this list current): the CSV tables of the API (``api/routes/districts.py``,
:func:`csv_bytes`, rows from :mod:`karte.importing.export`: the import strips the apostrophe again,
:func:`karte.importing.rows.Row.text`, so a download imports back unchanged); anything else that
writes CSV or xlsx for people to open must use
:func:`csv_bytes` or :func:`xlsx_bytes` (and, for a file on disk,
:func:`karte.store.gpkg_files.write_atomic`, which gives it karte's file mode). Not yet:
``karte districts standin --out CSV`` (``karte/districts.py``, pandas ``to_csv`` of generated
district names: no imported text reaches it).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence

#: What a spreadsheet runs as a formula when a text cell starts with it.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)*|\.\d+)([eE][+-]?\d+)?$")


def safe_cell(value):
    """``value`` as a cell that cannot run: text starting with a formula character gets a leading
    ``'`` (unless it is a plain number); ``None`` and NaN become empty; booleans ``true``/``false``;
    numbers pass unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence], *, bom: bool = True) -> bytes:
    """A CSV file (CRLF lines, UTF-8 with a BOM so Excel reads Japanese) with every cell,
    the header's too, through :func:`safe_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return (("\ufeff" if bom else "") + buf.getvalue()).encode("utf-8")


def xlsx_bytes(sheets: dict[str, tuple[Sequence[str], Iterable[Sequence]]]) -> bytes:
    """A workbook (``{sheet name: (header, rows)}``) whose text cells are stored as text: openpyxl
    would store a string starting with ``=`` as a formula, so every cell goes through
    :func:`safe_cell` and is typed as a string explicitly."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for name, (header, rows) in sheets.items():
        sheet = book.create_sheet(title=str(name)[:31])
        for row in [header, *rows]:
            cells = []
            for value in row:
                safe = safe_cell(value)
                cell = WriteOnlyCell(sheet, value=safe)
                if isinstance(safe, str):
                    cell.data_type = "s"  # text, whatever it starts with (openpyxl guesses "f" for "=")
                cells.append(cell)
            sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
