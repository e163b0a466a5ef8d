"""A layer's table as stored in the GeoPackage: its description, its rows as a frame, and the
store-managed numbers in it (row versions, record ids).

Everything here runs on a ``sqlite3`` connection inside a transaction the caller holds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import pyproj
import shapely

from karte.domain.errors import StoreError
from karte.domain.layers import LAYERS, LayerSpec
from karte.store import gpkg_schema
from karte.store.base import SYSTEM_COLUMNS
from karte.store.gpkg_blob import to_geometries
from karte.store.gpkg_install import quote
from karte.store.gpkg_values import Column, frame, kind_of

#: Name prefixes of tables that are never layers.
#: QGIS's own tables in a GeoPackage (karte.store.gpkg_styles): styles and projects, not layers.
RESERVED_PREFIXES = (gpkg_schema.PREFIX, "gpkg_", "rtree_", "sqlite_", "layer_styles", "qgis_projects")


@dataclass(frozen=True)
class Table:
    """A layer's table: attribute columns in table order (system columns included, the fid and
    geometry columns not), the geometry column, its GeoPackage type name, SRS id and CRS."""

    name: str
    columns: tuple[Column, ...]
    geometry: str | None = None
    geometry_type: str | None = None
    srs_id: int = 0
    crs: pyproj.CRS | None = None

    def has(self, column: str | None) -> bool:
        return any(c.name == column for c in self.columns)

    def kind(self, column: str) -> str:
        return next(c.kind for c in self.columns if c.name == column)


def layer_names(con: sqlite3.Connection) -> list[str]:
    """The layers in ``gpkg_contents`` order (the order they were first written)."""
    if not has_table(con, "gpkg_contents"):
        return []
    names = [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents"
                                       " WHERE data_type IN ('features', 'attributes') ORDER BY rowid")]
    return [n for n in names if not n.lower().startswith(RESERVED_PREFIXES)]


def describe(con: sqlite3.Connection, layer: str, location: str) -> Table:
    """The table of ``layer`` (case-insensitive, as GDAL matches names); StoreError when absent."""
    hit = None
    if has_table(con, "gpkg_contents"):
        hit = con.execute("SELECT table_name FROM gpkg_contents WHERE lower(table_name) = lower(?)"
                          " AND data_type IN ('features', 'attributes')", (layer,)).fetchone()
    if hit is None or hit[0].lower().startswith(RESERVED_PREFIXES):
        raise missing(location, layer)
    name = hit[0]
    geometry = con.execute(
        "SELECT g.column_name, g.geometry_type_name, g.srs_id, s.organization,"
        " s.organization_coordsys_id, s.definition FROM gpkg_geometry_columns g"
        " LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id"
        " WHERE lower(g.table_name) = lower(?)", (name,)).fetchone()
    geometry_column = geometry[0] if geometry else None
    columns = tuple(Column(r[1], kind_of(r[2])) for r in con.execute(f"PRAGMA table_info({quote(name)})")
                    if r[1] != geometry_column and not (r[5] and r[2].upper() == "INTEGER"))
    if geometry is None:
        return Table(name, columns)
    return Table(name, columns, geometry_column, geometry[1].upper(), geometry[2], _crs(*geometry[2:]))


def tracked(con: sqlite3.Connection, layer: str, location: str) -> Table:
    """The table of a personal or record layer, given what an older store lacks: the system
    columns (versions from the store-wide counter) and a record layer's declared columns added
    since the layer was made (empty in the old rows)."""
    table = describe(con, layer, location)
    entry = LAYERS.get(table.name)
    declared = [(c.name, _SQL_KIND[c.kind]) for c in (entry.columns if entry and entry.records else ())]
    absent = [(c, "INTEGER" if c == "version" else "TEXT") for c in SYSTEM_COLUMNS if not table.has(c)]
    absent += [(name, kind) for name, kind in declared if not table.has(name)]
    if not absent:
        return table
    for column, kind in absent:
        con.execute(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column)} {kind}")
    fill_versions(con, table.name)
    return describe(con, layer, location)


#: The SQL type a record layer's declared column kind is stored as (GDAL's GeoPackage types).
_SQL_KIND = {"text": "TEXT", "integer": "INTEGER", "float": "REAL", "boolean": "BOOLEAN"}


def select(con: sqlite3.Connection, table: Table, where: list[tuple[str, object]], *, system: bool,
           none: bool = False) -> tuple[list[int], pd.DataFrame]:
    """(rowids, frame) of the rows matching every ``column = value`` of ``where`` (bound
    parameters, never SQL text), in file order; without the system columns unless ``system``;
    ``none``: no row, only the columns."""
    columns = [c for c in table.columns if system or c.name not in SYSTEM_COLUMNS]
    fields = [quote(c.name) for c in columns] + [quote(table.geometry)] * bool(table.geometry) + ["rowid"]
    sql = f"SELECT {', '.join(fields)} FROM {quote(table.name)}"
    if where:
        sql += " WHERE " + " AND ".join(f"{quote(c)} = ?" for c, _ in where)
    rows = [] if none else con.execute(sql + " ORDER BY rowid", [v for _, v in where]).fetchall()
    values = list(zip(*rows, strict=True)) if rows else [()] * len(fields)
    blobs = values[len(columns)] if table.geometry else None
    return list(values[-1]), frame(columns, values[:len(columns)], blobs, table.crs)


def select_records(con: sqlite3.Connection, table: Table, where: list[tuple[str, object]], *,
                   system: bool, none: bool = False) -> list[dict]:
    """The rows :func:`select` finds as dicts (no frame built): values as SQLite gives them
    (booleans as ``bool``), the geometry of a point as ``x``, ``y`` (None without one)."""
    columns = [c for c in table.columns if system or c.name not in SYSTEM_COLUMNS]
    fields = [quote(c.name) for c in columns] + [quote(table.geometry)] * bool(table.geometry)
    sql = f"SELECT {', '.join(fields)} FROM {quote(table.name)}"
    if where:
        sql += " WHERE " + " AND ".join(f"{quote(c)} = ?" for c, _ in where)
    rows = [] if none else con.execute(sql + " ORDER BY rowid", [v for _, v in where]).fetchall()
    names = [c.name for c in columns]
    booleans = [i for i, c in enumerate(columns) if c.kind == "bool"]
    out = []
    for row in rows:
        record = dict(zip(names, row, strict=False))
        for i in booleans:
            if row[i] is not None:
                record[names[i]] = bool(row[i])
        out.append(record)
    if table.geometry:
        geoms = to_geometries([row[len(columns)] for row in rows])
        points = shapely.get_type_id(geoms) == 0
        xs, ys = shapely.get_x(geoms).tolist(), shapely.get_y(geoms).tolist()
        for record, ok, x, y in zip(out, points.tolist(), xs, ys, strict=True):
            located = ok and x == x
            record["x"], record["y"] = (x, y) if located else (None, None)
    return out


def fill_versions(con: sqlite3.Connection, table: str) -> None:
    """Rows without a version get new ones from the store-wide counter, which then moves past
    every version in the table (restored ones included): versions are never reused."""
    base = gpkg_schema.value(con, gpkg_schema.VERSION)
    con.execute(f"UPDATE {quote(table)} SET version = ? + rowid WHERE version IS NULL", (base,))
    top = con.execute(f"SELECT max(version) FROM {quote(table)}").fetchone()[0]
    if top is not None:
        gpkg_schema.raise_to(con, gpkg_schema.VERSION, top)


def max_suffix(con: sqlite3.Connection, table: str, entry: LayerSpec) -> int:
    """The largest number after ``entry.id_prefix`` among the table's ids of that form (0: none)."""
    n = len(entry.id_prefix)
    key = quote(entry.key)
    top = con.execute(
        f"SELECT max(CAST(substr({key}, ?1) AS INTEGER)) FROM {quote(table)}"
        f" WHERE substr({key}, 1, ?2) = ?3 AND length({key}) > ?2 AND substr({key}, ?1) NOT GLOB '*[^0-9]*'",
        (n + 1, n, entry.id_prefix)).fetchone()[0]
    return int(top or 0)


def has_table(con: sqlite3.Connection, name: str) -> bool:
    hit = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return hit.fetchone() is not None


def missing(location: str, layer: str) -> StoreError:
    return StoreError(f"{location} にレイヤ {layer} がありません (karte build を先に実行)")


@lru_cache(maxsize=32)
def _crs(srs_id: int, organization: str | None, code: int | None,
         definition: str | None) -> pyproj.CRS | None:
    """The CRS as pyogrio reports it: the authority code when there is one, else the WKT; none
    for the GeoPackage's undefined systems (ids 0 and -1)."""
    if srs_id <= 0 or organization is None:
        return None
    if organization.upper() == "EPSG":
        return pyproj.CRS.from_user_input(f"EPSG:{code}")
    return pyproj.CRS.from_wkt(definition)
