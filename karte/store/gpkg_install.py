"""Replace layers of the store with the tables GDAL wrote into a scratch GeoPackage.

GDAL (through pyogrio) writes new layers into a private scratch file: it builds the table, the
``gpkg_*`` metadata rows and the R-tree. Inside one write transaction on the store, with the
scratch file attached read-only as ``scratch``, each layer is then moved across with plain SQL:

1. :func:`prepare`: ``gpkg_*`` tables the store lacks (a new file) and spatial reference systems;
2. :func:`install_table`: the old table, its R-tree and its metadata rows are dropped, the new
   table and R-tree are created from the scratch file's own DDL and their rows copied;
3. :func:`install_triggers`: the triggers are created last, so the copy fires none of them (they
   call the ``ST_*`` functions of GDAL's SQLite).

A layer that is replaced keeps its place in ``gpkg_contents`` (the order :meth:`layers` lists).
Table names are compared case-insensitively, as SQLite and GDAL do.
"""

from __future__ import annotations

import sqlite3

_RTREE = "gpkg_rtree_index"
#: Creation order of schema objects: tables (the R-tree's virtual table too), then indexes;
#: triggers come last, after the rows.
_ORDER = {"table": 0, "index": 1}
_CONTENTS = "gpkg_contents"


def quote(name: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + str(name).replace('"', '""') + '"'


def prepare(con: sqlite3.Connection) -> None:
    """Create the ``gpkg_*`` tables (and their triggers) the store lacks, copying the GeoPackage
    header of a new file, and add the scratch file's spatial reference systems."""
    new_file = not _exists(con, "main", _CONTENTS)
    missing = [r for r in con.execute(
        "SELECT type, name, sql FROM scratch.sqlite_master WHERE sql IS NOT NULL"
        " AND tbl_name LIKE 'gpkg\\_%' ESCAPE '\\'"
        " AND lower(name) NOT IN (SELECT lower(name) FROM main.sqlite_master)")]
    for _, _, sql in sorted(missing, key=lambda r: _ORDER.get(r[0], 2)):
        con.execute(sql)
    if new_file:
        for pragma in ("application_id", "user_version"):
            number = int(con.execute(f"PRAGMA scratch.{pragma}").fetchone()[0])
            con.execute(f"PRAGMA main.{pragma} = {number}")
    columns = _common_columns(con, "gpkg_spatial_ref_sys")
    con.execute(f"INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys ({columns}) "
                f"SELECT {columns} FROM scratch.gpkg_spatial_ref_sys")
    if _exists(con, "scratch", "gpkg_extensions"):  # extensions of no layer (e.g. gpkg_crs_wkt)
        columns = _common_columns(con, "gpkg_extensions")
        con.execute(
            f"INSERT INTO main.gpkg_extensions ({columns}) SELECT {columns} FROM scratch.gpkg_extensions s"
            " WHERE (s.table_name IS NULL OR s.table_name LIKE 'gpkg\\_%' ESCAPE '\\') AND NOT EXISTS"
            " (SELECT 1 FROM main.gpkg_extensions m WHERE m.table_name IS s.table_name"
            " AND m.column_name IS s.column_name AND m.extension_name = s.extension_name)")


def install_table(con: sqlite3.Connection, layer: str) -> None:
    """Replace ``layer`` in the store by the scratch file's table of that name, rows included,
    triggers not yet (:func:`install_triggers`)."""
    position = _drop(con, layer)
    objects = _objects(con, layer)
    for kind, _, sql in objects:
        if kind in _ORDER:
            con.execute(sql)
    for kind, name, _ in objects:
        if kind == "table":
            con.execute(f"INSERT INTO main.{quote(name)} SELECT * FROM scratch.{quote(name)}")
    for table in _metadata_tables(con):
        columns = _common_columns(con, table)
        if table == _CONTENTS and position is not None:
            con.execute(f"INSERT INTO main.{table} (rowid, {columns}) SELECT ?, {columns}"
                        f" FROM scratch.{table} WHERE lower(table_name) = lower(?)", (position, layer))
        else:
            con.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM scratch.{table}"
                        " WHERE lower(table_name) = lower(?)", (layer,))


def install_triggers(con: sqlite3.Connection, layer: str) -> None:
    """Create the scratch file's triggers of ``layer`` (R-tree upkeep, feature counts), and an
    index on its district column (a district's rows are read on every personal page: without it
    a read scans the whole register)."""
    for kind, _, sql in _objects(con, layer):
        if kind == "trigger":
            con.execute(sql)
    columns = {row[1] for row in con.execute(f"PRAGMA main.table_info({quote(layer)})")}
    if "district_code" in columns:
        con.execute(f"CREATE INDEX IF NOT EXISTS main.{quote(f'karte_ix_{layer}_district_code')} "
                    f"ON {quote(layer)} (district_code)")


def _drop(con: sqlite3.Connection, layer: str) -> int | None:
    """Drop ``layer``'s table, R-tree and metadata rows from the store; its gpkg_contents rowid."""
    position = None
    if _exists(con, "main", _CONTENTS):
        hit = con.execute("SELECT rowid FROM main.gpkg_contents WHERE lower(table_name) = lower(?)",
                          (layer,)).fetchone()
        position = hit[0] if hit else None
    for rtree in _rtrees(con, "main", layer):
        con.execute(f"DROP TABLE IF EXISTS main.{quote(rtree)}")
    hit = con.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' AND lower(name) = lower(?)",
                      (layer,)).fetchone()
    if hit:
        con.execute(f"DROP TABLE main.{quote(hit[0])}")  # its indexes and triggers go with it
    for table in _tables_with_layer_rows(con, "main"):
        con.execute(f"DELETE FROM main.{table} WHERE lower(table_name) = lower(?)", (layer,))
    return position


def _objects(con: sqlite3.Connection, layer: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of the scratch file's table ``layer``, its R-trees, indexes and
    triggers; tables first (the R-tree's own shadow tables are made by its CREATE)."""
    rtrees = [r.lower() for r in _rtrees(con, "scratch", layer)]
    marks = ", ".join("?" * len(rtrees)) or "NULL"
    rows = con.execute(
        "SELECT type, name, sql FROM scratch.sqlite_master WHERE sql IS NOT NULL"
        f" AND (lower(tbl_name) = lower(?) OR lower(name) IN ({marks})) ORDER BY rowid",
        (layer, *rtrees)).fetchall()
    return sorted(rows, key=lambda r: _ORDER.get(r[0], 2))


def _rtrees(con: sqlite3.Connection, schema: str, layer: str) -> list[str]:
    if not _exists(con, schema, "gpkg_extensions"):
        return []
    return [f"rtree_{t}_{c}" for t, c in con.execute(
        f"SELECT table_name, column_name FROM {schema}.gpkg_extensions"
        " WHERE extension_name = ? AND lower(table_name) = lower(?)", (_RTREE, layer))]


def _metadata_tables(con: sqlite3.Connection) -> list[str]:
    """The scratch file's gpkg_* tables with rows per layer, gpkg_contents first."""
    tables = _tables_with_layer_rows(con, "scratch")
    return sorted(tables, key=lambda t: t != _CONTENTS)


def _tables_with_layer_rows(con: sqlite3.Connection, schema: str) -> list[str]:
    return [r[0] for r in con.execute(
        f"SELECT m.name FROM {schema}.sqlite_master m WHERE m.type = 'table'"
        " AND m.name LIKE 'gpkg\\_%' ESCAPE '\\' AND m.name != 'gpkg_spatial_ref_sys'"
        f" AND EXISTS (SELECT 1 FROM pragma_table_info(m.name, '{schema}') WHERE name = 'table_name')")]


def _common_columns(con: sqlite3.Connection, table: str) -> str:
    """The columns ``table`` has in both files (main's order), quoted and joined."""
    scratch = {r[0] for r in con.execute("SELECT name FROM pragma_table_info(?, 'scratch')", (table,))}
    main = [r[0] for r in con.execute("SELECT name FROM pragma_table_info(?, 'main')", (table,))]
    return ", ".join(quote(c) for c in main if c in scratch)


def _exists(con: sqlite3.Connection, schema: str, table: str) -> bool:
    return con.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
                       (table,)).fetchone() is not None
