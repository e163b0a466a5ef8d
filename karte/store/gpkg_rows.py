"""Row writes on personal and record layers: the checks and SQL behind
:meth:`GeoPackageStore.append_rows`, ``read_row``, ``update_row`` and ``delete_row``.

The access rules are applied here in the application, the same as the PostGIS row-level
security: a row is visible to a user when :meth:`Access.filter_rows` keeps it, writable when it
is visible and :meth:`Access.may_write` allows its district. A row the user may not see is
"not found", with a message that says nothing about it. Every function runs inside the caller's
write transaction: an error anywhere rolls the whole call back.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd
import shapely

from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied, ConflictError, NotFoundError, StoreError
from karte.domain.layers import MUNICIPALITY, SNAPSHOT_LAYERS, LayerSpec
from karte.domain.security import UNLOGGED
from karte.store import gpkg_schema
from karte.store.base import SYSTEM_COLUMNS
from karte.store.gpkg_blob import bounds, to_blob, to_geometries
from karte.store.gpkg_install import quote
from karte.store.gpkg_tables import Table, max_suffix, select
from karte.store.gpkg_values import EXPECTED_JA, plain, to_sql

#: The key of a row's geometry in row dicts (the column of a frame), whatever the table calls it.
GEOMETRY = "geometry"
_TOUCH = ("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
          " WHERE lower(table_name) = lower(?)")
_EXTEND = ("UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?1), ?1),"
           " max_x = max(coalesce(max_x, ?2), ?2), min_y = min(coalesce(min_y, ?3), ?3),"
           " max_y = max(coalesce(max_y, ?4), ?4) WHERE lower(table_name) = lower(?5)")


def append(con: sqlite3.Connection, table: Table, entry: LayerSpec, rows: list[dict],
           access: Access) -> list[dict]:
    """Insert ``rows`` (already allowed for ``access``); the rows as stored."""
    records = _records(table, entry, rows)
    if _sees_part(access, entry):  # the store numbers their rows: a key they chose could collide
        for record in records:       # with a row they cannot see, and the refusal would tell them
            record.pop(entry.key, None)
    _assign_keys(con, table, entry, records)
    first = gpkg_schema.take(con, gpkg_schema.VERSION, len(records))
    at = gpkg_schema.now()
    for i, record in enumerate(records):
        record.update(version=first + i, updated_at=at, updated_by=access.user)
    columns = [c.name for c in table.columns] + [table.geometry] * bool(table.geometry)
    con.executemany(f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    [[r.get(GEOMETRY if c == table.geometry else c) for c in columns] for r in records])
    touched(con, table, entry, [r.get(GEOMETRY) for r in records])
    if logged(entry):
        for district, count in Counter(district_of(entry, r) for r in records).items():
            gpkg_schema.log(con, access, "append", entry.name, district, count)
    return [_as_row(table, r) for r in records]


def visible(con: sqlite3.Connection, table: Table, entry: LayerSpec, key: str,
            access: Access) -> tuple[int, dict] | None:
    """(rowid, row with its system columns) of ``key`` when ``access`` may see it, else None.
    The public and the prefecture level see no row of a personal layer; on the other record
    layers what they may do is :meth:`Access.may_write`'s to say."""
    if (entry.personal and not access.sees_personal) or not table.has(entry.key):
        return None
    where = [(entry.key, key)]
    if table.has(MUNICIPALITY) and entry.personal:  # keys are unique within a municipality
        where.append((MUNICIPALITY, access.municipality))
    rowids, rows = select(con, table, where, system=True)
    if table.has(MUNICIPALITY) and not entry.personal and len(rows):
        # the user's municipality, or rows of none (of users who belong to none: the prefecture
        # level, public accounts); a user of none reaches rows of any
        codes = rows[MUNICIPALITY].to_numpy(dtype=object)
        keep = [c is None or c != c or not access.municipality or c == access.municipality for c in codes]
        rows = rows[keep]
    seen = access.filter_rows(entry.name, rows)
    if seen.empty:
        return None
    return rowids[seen.index[0]], _as_row(table, _stored_values(table, seen.iloc[0]))


def writable(con: sqlite3.Connection, table: Table, entry: LayerSpec, key: str, access: Access,
             version: int, *, update: bool = False) -> tuple[int, dict]:
    """The row ``access`` may change at ``version``: NotFoundError when absent or not visible,
    AccessDenied when visible but not theirs to change, ConflictError when someone saved first."""
    found = visible(con, table, entry, key, access)
    if found is None:
        raise NotFoundError(not_found(entry, key))
    rowid, row = found
    if not access.may_write(entry.name, district_of(entry, row), row.get(MUNICIPALITY), update=update):
        raise AccessDenied(f"{entry.title_ja} ({entry.name}) のこの行を変更する権限がありません "
                           f"({access.level.value})")
    if row["version"] != int(version):
        raise ConflictError(f"{entry.title_ja} の {key} は他の利用者が先に更新しました"
                            f"（読み込んだ版 {version}、現在の版 {row['version']}）。"
                            "読み直してからやり直してください。")
    return rowid, row


def changes(table: Table, entry: LayerSpec, values: Mapping[str, object]) -> dict:
    """The SET values of an update, by the table's column names (the geometry as a blob)."""
    problems: list[str] = []
    out = {}
    for column, value in values.items():
        if column == GEOMETRY and table.geometry:
            out[table.geometry] = _blob(value, table, problems, "")
        elif column in SYSTEM_COLUMNS or column == entry.key:
            problems.append(f"列 {column} は変更できません")
        elif not table.has(column):
            problems.append(f"列 {column} はありません")
        else:
            out[column] = _value(value, table.kind(column), column, problems, "")
    if not out and not problems:
        problems.append("変更がありません")
    if problems:
        raise StoreError(f"{entry.title_ja} ({entry.name}) を更新できません。何も書き込んでいません: "
                         + "; ".join(problems))
    return out


def touched(con: sqlite3.Connection, table: Table, entry: LayerSpec, blobs: list) -> None:
    """Keep ``gpkg_contents`` current after a row write (change time; extent grown to the new
    geometries, as GDAL grows it) and change the stamp when the build snapshot reads the layer."""
    con.execute(_TOUCH, (table.name,))
    for blob in blobs:
        box = None if blob is None else bounds(blob)
        if box is not None:
            con.execute(_EXTEND, (*box, table.name))
    if entry.name in SNAPSHOT_LAYERS:
        gpkg_schema.bump_stamp(con)


def logged(entry: LayerSpec) -> bool:
    """Do row calls on this layer write access-log rows? All but the security layers
    (:data:`karte.domain.security.UNLOGGED`: the sessions and login attempts are themselves the
    record of logins; what city staff do with them is logged by :class:`karte.users.Sessions`)."""
    return str(entry.name) not in UNLOGGED


def _sees_part(access: Access, entry: LayerSpec) -> bool:
    """Does ``access`` see only part of the layer's rows of its municipality (a district member
    on a layer with a district rule)? Then the store numbers the rows they append: a key they
    give is replaced (the PostGIS store does the same in the database, migration 0010)."""
    return access.level == Level.DISTRICT_MEMBER and bool(entry.district_column) and bool(entry.id_prefix)


def district_of(entry: LayerSpec, row: Mapping) -> str | None:
    return row.get(entry.district_column) if entry.district_column else None


def not_found(entry: LayerSpec, key: str) -> str:
    return f"{entry.title_ja} ({entry.name}) に {key} はありません（または権限がありません）"


def _records(table: Table, entry: LayerSpec, rows: list[dict]) -> list[dict]:
    """Each row's values as stored (the geometry as a blob); every problem of every row at once."""
    problems: list[str] = []
    records = []
    for i, row in enumerate(rows, start=1):
        where = f"{i} 行目: "
        record = {}
        for column, value in row.items():
            if column == MUNICIPALITY and not table.has(column):
                continue  # a built layer of an older store, written before municipalities
            if column == GEOMETRY and table.geometry:
                record[GEOMETRY] = _blob(value, table, problems, where)
            elif column in SYSTEM_COLUMNS:
                problems.append(f"{where}列 {column} は指定できません")
            elif not table.has(column):
                problems.append(f"{where}列 {column} はありません")
            else:
                record[column] = _value(value, table.kind(column), column, problems, where)
        records.append(record)
    if problems:
        raise StoreError(f"{entry.title_ja} ({entry.name}) に書き込めません。何も書き込んでいません:\n"
                         + "\n".join(problems))
    return records


def _value(value, kind: str, column: str, problems: list[str], where: str):
    try:
        return to_sql(value, kind)
    except (TypeError, ValueError, OverflowError):
        problems.append(f"{where}列 {column} に{EXPECTED_JA[kind]}でない値があります")
        return None


def _blob(value, table: Table, problems: list[str], where: str) -> bytes | None:
    """A geometry as the layer's GeoPackage blob (a polygon promoted to a multipolygon)."""
    if value is None:
        return None
    if not isinstance(value, shapely.Geometry):
        problems.append(f"{where}列 {GEOMETRY} はジオメトリでなければなりません")
        return None
    if table.geometry_type == "MULTIPOLYGON" and value.geom_type == "Polygon":
        value = shapely.MultiPolygon([value])
    if table.geometry_type != "GEOMETRY" and value.geom_type.upper() != table.geometry_type:
        problems.append(f"{where}列 {GEOMETRY} は {table.geometry_type} でなければなりません")
        return None
    return to_blob(value, table.srs_id)


def _assign_keys(con: sqlite3.Connection, table: Table, entry: LayerSpec, records: list[dict]) -> None:
    """Keep given keys (none may exist already, nor twice), number the others from the layer's
    counter in the file; the counter moves past every given key of the ``id_prefix`` form."""
    key = entry.key
    given = [r[key] for r in records if r.get(key) not in (None, "")]
    scoped = table.has(MUNICIPALITY)  # keys are unique within a municipality
    pairs = [(r.get(MUNICIPALITY) if scoped else None, r[key])
             for r in records if r.get(key) not in (None, "")]
    duplicates = {k for m, k in pairs if pairs.count((m, k)) > 1}
    if given:
        marks = ", ".join("?" * len(given))
        found = con.execute(f"SELECT {quote(MUNICIPALITY) if scoped else 'NULL'}, {quote(key)}"
                            f" FROM {quote(table.name)} WHERE {quote(key)} IN ({marks})", given)
        duplicates |= {k for m, k in found if (m, k) in set(pairs)}
    if duplicates:
        raise StoreError(f"{entry.title_ja} ({entry.name}) に同じ {key} の行があります: "
                         f"{', '.join(sorted(duplicates))}。何も書き込んでいません")
    unkeyed = [r for r in records if r.get(key) in (None, "")]
    if not entry.id_prefix:
        if unkeyed:
            raise StoreError(f"{entry.title_ja} ({entry.name}) の行には {key} が必要です")
        return
    counter = id_counter(entry.name)
    floor = max((int(k[len(entry.id_prefix):]) for k in given if _numbered(k, entry.id_prefix)), default=0)
    if not gpkg_schema.has(con, counter):  # a layer an older store wrote: start past its ids
        floor = max(floor, max_suffix(con, table.name, entry))
    gpkg_schema.raise_to(con, counter, floor)
    if unkeyed:
        first = gpkg_schema.take(con, counter, len(unkeyed))
        for i, record in enumerate(unkeyed):
            record[key] = entry.new_id(first + i)


def id_counter(layer: str) -> str:
    """The name of a record layer's id counter in ``karte_state``."""
    return f"id:{layer}"


def _numbered(key: str, prefix: str) -> bool:
    rest = key[len(prefix):]
    return key.startswith(prefix) and rest.isascii() and rest.isdigit()


def _stored_values(table: Table, row: pd.Series) -> dict:
    """One row of a frame read by :func:`select` as plain stored values (nulls as None)."""
    record = {}
    for column in table.columns:
        value = row[column.name]
        if pd.isna(value):
            value = None
        record[column.name] = value.item() if isinstance(value, np.generic) else value
    if table.geometry:
        record[GEOMETRY] = row[GEOMETRY]
    return record


def _as_row(table: Table, record: dict) -> dict:
    """A row as callers get it: every column in table order (system columns included) with
    plain Python values, and the geometry as a shapely geometry."""
    row = {c.name: plain(record.get(c.name), c.kind) for c in table.columns}
    if table.geometry:
        geometry = record.get(GEOMETRY)
        row[GEOMETRY] = to_geometries([geometry])[0] if isinstance(geometry, bytes) else geometry
    return row
