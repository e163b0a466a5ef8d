"""QGIS's own tables in a GeoPackage: layer styles (``layer_styles``) and projects (``qgis_projects``).

The tables are written exactly as QGIS writes them, so QGIS reads them as its own:

* ``layer_styles`` as QGIS's OGR provider creates it (``QgsOgrUtils::saveStyle``): an attributes
  table (registered in ``gpkg_contents``, no ``gpkg_extensions`` row: QGIS adds none) with an
  ``id`` key and the columns of :data:`STYLE_COLUMNS`; a row per layer and style name, ``f_table_schema``
  empty; QGIS loads the row with ``useAsDefault`` set when it opens the layer;
* ``qgis_projects`` as QGIS's GeoPackage project storage creates it
  (``QgsGeoPackageProjectStorage``): ``name TEXT PRIMARY KEY, metadata BLOB, content BLOB``, not
  registered in ``gpkg_contents``; ``content`` is the ``.qgz`` (a zip of the ``.qgs``) as hex
  text, ``metadata`` a JSON text with ``last_modified_time`` (UTC) and ``last_modified_user``.

:func:`write_qgis` replaces karte's rows in one SQLite transaction (QGIS's upsert: a row is found by
layer, geometry column and style name, never duplicated); a style or project whose content did
not change keeps its row as it was, update time included, so writing twice changes nothing. Other
styles (a user's own, saved from QGIS) are kept, no longer the default of a layer karte styles.
Python's ``sqlite3`` only, as for the rest of the store (:mod:`karte.store.gpkg`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from karte.domain.errors import StoreError
from karte.store.gpkg_install import quote

STYLES_TABLE = "layer_styles"
PROJECTS_TABLE = "qgis_projects"
#: The columns of ``layer_styles`` after its ``id`` key, in QGIS's order.
STYLE_COLUMNS = ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
                 "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time")
#: What GDAL makes of QGIS's field definitions (String(256)…, Integer(Boolean), DateTime with
#: CURRENT_TIMESTAMP default) with the FID column ``id``.
CREATE_STYLES = (
    'CREATE TABLE "layer_styles" ( "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
    '"f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256), '
    '"f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT, '
    '"useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30), '
    "\"update_time\" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
)
CREATE_PROJECTS = "CREATE TABLE qgis_projects(name TEXT PRIMARY KEY, metadata BLOB, content BLOB)"
#: The user QGIS records as the project's last editor.
PROJECT_USER = "karte"
BUSY_TIMEOUT_S = 30.0


class StyleRow(Protocol):
    """One style to write (:class:`karte.render.qgis_styles.LayerStyle` is one)."""

    layer: str
    geometry_column: str
    name: str
    qml: str
    sld: str
    description: str


@dataclass(frozen=True)
class FeatureTable:
    """A feature layer of the file, as its GeoPackage metadata describes it."""

    name: str
    geometry_column: str
    geometry_type: str
    columns: tuple[str, ...]
    extent: tuple[float, float, float, float] | None
    srs_id: int


def feature_tables(path: str | Path) -> list[FeatureTable]:
    """The feature layers of the GeoPackage ``path`` (``gpkg_contents`` order)."""
    with _connect(path) as con:
        rows = con.execute(
            "SELECT c.table_name, g.column_name, g.geometry_type_name, c.min_x, c.min_y, c.max_x, c.max_y,"
            " g.srs_id FROM gpkg_contents c JOIN gpkg_geometry_columns g"
            " ON lower(g.table_name) = lower(c.table_name)"
            " WHERE c.data_type = 'features' ORDER BY c.rowid").fetchall()
        tables = []
        for name, column, kind, x0, y0, x1, y1, srs in rows:
            columns = tuple(r[1] for r in con.execute(f"PRAGMA table_info({quote(name)})"))
            extent = None if None in (x0, y0, x1, y1) else (float(x0), float(y0), float(x1), float(y1))
            tables.append(FeatureTable(name, column, str(kind).upper(), columns, extent, int(srs or 0)))
        return tables


def write_qgis(path: str | Path, styles: Sequence[StyleRow], project: bytes | None = None, *,
               project_name: str = "karte", now: datetime | None = None) -> None:
    """Write ``styles`` as the default styles of their layers and ``project`` (``.qgz`` bytes) as
    the project ``project_name``, in one transaction on the GeoPackage ``path``.

    ``now`` (default: the current time) is the update time of what changes.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"GeoPackage がありません: {path}")
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    with _connect(path) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            _ensure_styles_table(con, stamp)
            changed = _write_styles(con, styles, stamp)
            if changed:
                con.execute("UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?",
                            (_iso_ms(stamp), STYLES_TABLE))
            _count(con)
            if project is not None:
                _write_project(con, project_name, project, stamp)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def read_styles(path: str | Path) -> list[dict]:
    """Every row of ``layer_styles`` (empty when the file has none), ``id`` order."""
    with _connect(path) as con:
        if not _has_table(con, STYLES_TABLE):
            return []
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(f"SELECT * FROM {STYLES_TABLE} ORDER BY rowid")]


def read_project(path: str | Path, name: str = "karte") -> bytes | None:
    """The ``.qgz`` bytes of the project ``name`` stored in the file (None when absent)."""
    with _connect(path) as con:
        if not _has_table(con, PROJECTS_TABLE):
            return None
        row = con.execute(f"SELECT content FROM {PROJECTS_TABLE} WHERE name = ?", (name,)).fetchone()
    if row is None or row[0] is None:
        return None
    content = row[0]
    return bytes.fromhex(content.decode("ascii") if isinstance(content, bytes) else content)


# --- steps --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _connect(path: str | Path):
    try:
        con = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(f"GeoPackage を開けません: {path} ({exc})") from exc
    try:
        yield con
    finally:
        con.close()


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() \
        is not None


def _ensure_styles_table(con: sqlite3.Connection, stamp: datetime) -> None:
    """``layer_styles`` as QGIS creates it; a table of that name without QGIS's columns (a copy of
    it made by another tool) is replaced."""
    if _has_table(con, STYLES_TABLE):
        present = {r[1] for r in con.execute(f"PRAGMA table_info({STYLES_TABLE})")}
        if {"id", *STYLE_COLUMNS} <= present:
            _register(con, stamp)
            return
        con.execute(f"DROP TABLE {STYLES_TABLE}")
        for table in ("gpkg_contents", "gpkg_ogr_contents"):
            if _has_table(con, table):
                con.execute(f"DELETE FROM {table} WHERE lower(table_name) = ?", (STYLES_TABLE,))
    con.execute(CREATE_STYLES)
    _register(con, stamp)


def _register(con: sqlite3.Connection, stamp: datetime) -> None:
    """The ``gpkg_contents`` row of an attributes table (as GDAL writes it for QGIS)."""
    if con.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", (STYLES_TABLE,)).fetchone():
        return
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change,"
                " srs_id) VALUES (?, 'attributes', ?, '', ?, 0)",
                (STYLES_TABLE, STYLES_TABLE, _iso_ms(stamp)))


def _write_styles(con: sqlite3.Connection, styles: Sequence[StyleRow], stamp: datetime) -> bool:
    changed = False
    written: set[tuple[str, str]] = set()
    for s in styles:
        key = (s.layer, s.geometry_column)
        if key in written:
            raise StoreError(f"レイヤ {s.layer} のスタイルが二つあります")
        written.add(key)
        # the layer's other styles are kept, no longer its default (as QGIS does)
        cur = con.execute(f"UPDATE {STYLES_TABLE} SET useAsDefault = 0 WHERE f_table_name = ?"
                          " AND f_geometry_column = ? AND styleName <> ? AND useAsDefault",
                          (s.layer, s.geometry_column, s.name))
        changed |= cur.rowcount > 0
        rows = con.execute(f"SELECT rowid, styleQML, styleSLD, useAsDefault, description, f_table_catalog,"
                           f" owner FROM {STYLES_TABLE} WHERE f_table_schema = '' AND f_table_name = ?"
                           " AND f_geometry_column = ? AND styleName = ? ORDER BY rowid",
                           (s.layer, s.geometry_column, s.name)).fetchall()
        for extra in rows[1:]:  # never two rows for one style
            con.execute(f"DELETE FROM {STYLES_TABLE} WHERE rowid = ?", (extra[0],))
            changed = True
        wanted = (s.qml, s.sld, 1, s.description, "", "")
        if rows and tuple(rows[0][1:]) == wanted:
            continue
        changed = True
        if rows:
            con.execute(f"UPDATE {STYLES_TABLE} SET styleQML = ?, styleSLD = ?, useAsDefault = 1,"
                        " description = ?, f_table_catalog = '', owner = '', update_time = ? WHERE rowid = ?",
                        (s.qml, s.sld, s.description, _iso_ms(stamp), rows[0][0]))
        else:
            con.execute(f"INSERT INTO {STYLES_TABLE} ({', '.join(quote(c) for c in STYLE_COLUMNS)})"
                        " VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', NULL, ?)",
                        (s.layer, s.geometry_column, s.name, s.qml, s.sld, s.description, _iso_ms(stamp)))
    # karte's styles of layers no longer in the file
    names = sorted({s.name for s in styles})
    for name in names:
        for rowid, table, column in con.execute(
                f"SELECT rowid, f_table_name, f_geometry_column FROM {STYLES_TABLE} WHERE styleName = ?",
                (name,)).fetchall():
            if (table, column) not in written:
                con.execute(f"DELETE FROM {STYLES_TABLE} WHERE rowid = ?", (rowid,))
                changed = True
    return changed


def _count(con: sqlite3.Connection) -> None:
    """GDAL's cached feature count of ``layer_styles`` kept true."""
    if _has_table(con, "gpkg_ogr_contents"):
        con.execute("INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count)"
                    f" VALUES (?, (SELECT count(*) FROM {STYLES_TABLE}))", (STYLES_TABLE,))


def _write_project(con: sqlite3.Connection, name: str, qgz: bytes, stamp: datetime) -> None:
    if not _has_table(con, PROJECTS_TABLE):
        con.execute(CREATE_PROJECTS)
    content = qgz.hex()
    row = con.execute(f"SELECT content FROM {PROJECTS_TABLE} WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] == content:
        return
    metadata = json.dumps({"last_modified_time": stamp.strftime("%Y-%m-%dT%H:%M:%S"),
                           "last_modified_user": PROJECT_USER}, ensure_ascii=False)
    if row is None:
        con.execute(f"INSERT INTO {PROJECTS_TABLE} (name, metadata, content) VALUES (?, ?, ?)",
                    (name, metadata, content))
    else:
        con.execute(f"UPDATE {PROJECTS_TABLE} SET metadata = ?, content = ? WHERE name = ?",
                    (metadata, content, name))


def _iso_ms(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
