"""The store's own tables inside the GeoPackage: the access log and the store state.

Both are plain SQLite tables named ``karte_*``: not registered in ``gpkg_contents``, so they are
never layers (GDAL and QGIS list them only in a file without any attribute layer, and
:meth:`GeoPackageStore.layers` never). Every function here runs inside a transaction the caller
holds, so a log row, a counter step or a stamp change commits or rolls back with the write it
belongs to.

* ``karte_audit``: the access log, one row per read or write of personal rows (counts only);
* ``karte_state``: named values: the store-wide row ``version`` counter, one id counter per
  record layer (``id:<layer>``) and the build ``stamp``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

from karte.domain.access import Access

AUDIT_TABLE = "karte_audit"
STATE_TABLE = "karte_state"
#: The prefix of every table the store adds to the file: never a layer name.
PREFIX = "karte_"

_AUDIT_DDL = (
    "CREATE TABLE karte_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
    " actor TEXT NOT NULL, level TEXT, route TEXT NOT NULL, action TEXT NOT NULL,"
    " layer TEXT NOT NULL, district TEXT, rows INTEGER NOT NULL)")
_STATE_DDL = "CREATE TABLE karte_state (name TEXT PRIMARY KEY NOT NULL, value NOT NULL)"
_CURRENT = ("SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'karte_state'),"
            " (SELECT count(*) FROM pragma_table_info('karte_audit') WHERE name IN ('level', 'action'))")
#: Names in karte_state: the row version counter, the build stamp.
VERSION = "version"
STAMP = "stamp"


def is_current(con: sqlite3.Connection) -> bool:
    """Are both tables there in their current shape? (One cheap query.)"""
    return con.execute(_CURRENT).fetchone() == (1, 2)


def upgrade(con: sqlite3.Connection) -> None:
    """Create the tables, or bring an older file's access log up to date in place (it lacked
    ``level`` and ``action``: its rows were reads, or exports by the route ``export``)."""
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE name IN (?, ?)",
                                       (AUDIT_TABLE, STATE_TABLE))}
    if STATE_TABLE not in names:
        con.execute(_STATE_DDL)
        if _has_layers(con):  # an older file with layers: its snapshot is not "empty"
            bump_stamp(con)
    if AUDIT_TABLE not in names:
        con.execute(_AUDIT_DDL)
        return
    columns = {r[0] for r in con.execute("SELECT name FROM pragma_table_info('karte_audit')")}
    if "level" not in columns:
        con.execute("ALTER TABLE karte_audit ADD COLUMN level TEXT")
    if "action" not in columns:
        con.execute("ALTER TABLE karte_audit ADD COLUMN action TEXT NOT NULL DEFAULT 'read'")
        con.execute("UPDATE karte_audit SET action = 'export' WHERE route = 'export'")


def log(con: sqlite3.Connection, access: Access, action: str, layer: str, district: str | None,
        rows: int) -> None:
    """Append one access-log row (who, when, what; never the rows themselves)."""
    con.execute(
        "INSERT INTO karte_audit (at, actor, level, route, action, layer, district, rows)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now(), access.user, access.level.value, access.route, action, str(layer), district, int(rows)))


def now() -> str:
    """UTC now as ISO text with seconds (``2026-11-30T09:00:00+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def value(con: sqlite3.Connection, name: str) -> int:
    """A counter's current value (0 before its first step)."""
    hit = con.execute("SELECT value FROM karte_state WHERE name = ?", (name,)).fetchone()
    return int(hit[0]) if hit else 0


def has(con: sqlite3.Connection, name: str) -> bool:
    """Has the counter ``name`` been started?"""
    return con.execute("SELECT 1 FROM karte_state WHERE name = ?", (name,)).fetchone() is not None


def take(con: sqlite3.Connection, name: str, count: int = 1) -> int:
    """Step the counter ``name`` by ``count`` and return the first of the values taken."""
    last = con.execute(
        "INSERT INTO karte_state (name, value) VALUES (?, ?) ON CONFLICT (name)"
        " DO UPDATE SET value = value + excluded.value RETURNING value", (name, count)).fetchone()[0]
    return int(last) - count + 1


def raise_to(con: sqlite3.Connection, name: str, at_least: int) -> None:
    """Move the counter ``name`` up to ``at_least`` (never down: values are never reused)."""
    con.execute("INSERT INTO karte_state (name, value) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET value = max(value, excluded.value)", (name, int(at_least)))


def stamp(con: sqlite3.Connection) -> str:
    """The build stamp; ``""`` before the first write of a snapshot layer."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'karte_state'").fetchone():
        return ""  # an older file opened read-only: not upgraded
    hit = con.execute("SELECT value FROM karte_state WHERE name = ?", (STAMP,)).fetchone()
    return str(hit[0]) if hit else ""


def bump_stamp(con: sqlite3.Connection) -> None:
    """A new random stamp: unique even across files swapped in place of each other."""
    con.execute("INSERT INTO karte_state (name, value) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET value = excluded.value", (STAMP, uuid.uuid4().hex))


def _has_layers(con: sqlite3.Connection) -> bool:
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_contents'").fetchone():
        return False
    return con.execute("SELECT 1 FROM gpkg_contents LIMIT 1").fetchone() is not None
