"""Values between the GeoPackage's SQL columns and pandas: frames read exactly as pyogrio reads
them, and single values checked for a row write.

A column's kind comes from its declared SQL type, mapped as GDAL maps GeoPackage types to OGR
field types and pyogrio those to numpy: ``TEXT`` text (``str``, ``object`` when every value is
null), ``INTEGER`` int64, ``MEDIUMINT`` int32, ``SMALLINT``/``TINYINT`` int16, ``BOOLEAN`` bool,
``REAL``/``DOUBLE`` float64, ``FLOAT`` float32, ``DATETIME`` datetime64[ms]; integer and boolean
columns with a null become float64 with NaN, as pyogrio returns them. (karte keeps dates as ISO
text; a ``DATETIME`` column comes only from a frame written with a datetime64 column.)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from karte.store.gpkg_blob import to_geometries

_KINDS = {"BOOLEAN": "bool", "TINYINT": "int16", "SMALLINT": "int16", "MEDIUMINT": "int32",
          "INT": "int64", "INTEGER": "int64", "BIGINT": "int64", "FLOAT": "float32",
          "DOUBLE": "float64", "REAL": "float64", "DATETIME": "datetime",
          "BLOB": "blob"}
#: What a user is told a column expected (error messages).
EXPECTED_JA = {"bool": "真偽値", "int16": "整数", "int32": "整数", "int64": "整数", "float32": "数値",
               "float64": "数値", "text": "文字列", "datetime": "日時", "blob": "バイナリ"}


@dataclass(frozen=True)
class Column:
    """One attribute column of a layer table: its name and kind (numpy dtype name, ``text``,
    ``datetime`` or ``blob``)."""

    name: str
    kind: str


def kind_of(declared: str) -> str:
    """The kind of a declared SQL column type (``TEXT(20)`` -> ``text``)."""
    return _KINDS.get(declared.split("(")[0].strip().upper(), "text")


def frame(columns: list[Column], values: list[tuple], blobs: list | None, crs) -> pd.DataFrame:
    """The frame pyogrio would return: one array per column built as pyogrio builds it, then
    the geometry (from GeoPackage blobs) as the column ``geometry``; no geometry, a DataFrame."""
    data = {c.name: _array(v, c.kind) for c, v in zip(columns, values, strict=True)}
    table = pd.DataFrame(data, columns=[c.name for c in columns])
    if blobs is None:
        return table
    return gpd.GeoDataFrame(table, geometry=to_geometries(blobs), crs=crs)


def _array(values: tuple, kind: str):
    if kind in ("text", "blob"):
        return np.array(values, dtype=object)
    if kind == "datetime":
        # GDAL hands datetimes to pyogrio as ISO text with milliseconds
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601").dt.as_unit("ms")
    has_null = any(v is None for v in values)
    if kind.startswith("int") or kind == "bool":
        if has_null:
            return np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
        return np.array(values, dtype=kind)
    return np.array([math.nan if v is None else v for v in values], dtype=kind)


def plain(value, kind: str):
    """A stored SQL value as a plain Python value for a row dict (booleans as ``bool``)."""
    if value is None:
        return None
    return bool(value) if kind == "bool" else value


def to_sql(value, kind: str):
    """``value`` as stored in a column of ``kind``; ``None`` for a null.

    Raises ``ValueError`` or ``TypeError`` for a value of the wrong kind (the caller names the
    column, never the value).
    """
    if _is_null(value):
        return None
    if kind == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, dt.date):  # dates are kept as ISO text
            return value.isoformat()
        raise TypeError("not text")
    if kind == "bool":
        if isinstance(value, bool | np.bool_) or (isinstance(value, int | np.integer) and value in (0, 1)):
            return int(value)
        raise TypeError("not a boolean")
    if kind.startswith("int"):
        if isinstance(value, bool | np.bool_):
            raise TypeError("a boolean is not an integer")
        if isinstance(value, float | np.floating) and not float(value).is_integer():
            raise ValueError("not integral")
        return int(value.strip()) if isinstance(value, str) else int(value)
    if kind.startswith("float"):
        if isinstance(value, bool | np.bool_):
            raise TypeError("a boolean is not a number")
        return float(value)
    if kind == "datetime":
        return pd.Timestamp(value).isoformat()
    if isinstance(value, bytes):
        return value
    raise TypeError(kind)


def _is_null(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)
