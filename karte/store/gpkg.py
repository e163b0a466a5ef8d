"""The embedded store: every layer in one GeoPackage file, no server needed.

Writes are atomic: the file is copied beside itself, the layers are written into the copy, and the
copy replaces the original with ``os.replace`` (atomic on POSIX). A crash or Ctrl-C midway leaves
the original untouched. Spatial layers are stored in EPSG:6678; GDAL and QGIS open the file as is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from karte.domain.access import Access
from karte.domain.errors import StoreError
from karte.store.base import Store


class GeoPackageStore(Store):
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.location = str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def layers(self) -> list[str]:
        if not self.exists():
            return []
        # GDAL lists unregistered tables too when the file has no attribute layer: never the log
        return [str(name) for name, _ in pyogrio.list_layers(self.path) if str(name) != AUDIT_TABLE]

    def read(self, layer: str, *, district: str | None = None, access: Access | None = None) -> pd.DataFrame:
        layer = str(layer)
        if layer not in self.layers():
            raise StoreError(f"{self.location} にレイヤ {layer} がありません (karte build を先に実行)")
        where = None
        if district is not None:
            where = f"district_code = '{_quote(district)}'"
        frame = pyogrio.read_dataframe(self.path, layer=layer, where=where)
        if access is None:
            return frame
        return access.filter_rows(layer, frame).reset_index(drop=True)

    def write(self, layers: Mapping[str, pd.DataFrame]) -> None:
        if AUDIT_TABLE in map(str, layers):
            raise StoreError(f"{AUDIT_TABLE} は閲覧記録の表です。レイヤとして書き込めません "
                             "(the access log is append-only)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.gpkg", dir=self.path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            if self.exists():
                shutil.copyfile(self.path, tmp_path)
            else:
                tmp_path.unlink()
            for name, frame in layers.items():
                _write_layer(tmp_path, str(name), frame)
            os.replace(tmp_path, self.path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


    def audit(self, *, actor: str, route: str, layer: str, district: str | None, rows: int) -> None:
        # A plain SQLite table inside the GeoPackage (GDAL and QGIS ignore it), appended in
        # place; atomic layer writes copy the whole file, so the log is carried along.
        with contextlib.closing(sqlite3.connect(self.path)) as con, con:
            con.execute(_AUDIT_DDL)
            con.execute(
                "INSERT INTO karte_audit (at, actor, route, layer, district, rows)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), actor, route, str(layer),
                 district, int(rows)),
            )

    def audit_log(self) -> pd.DataFrame:
        if not self.exists():
            return pd.DataFrame(columns=["at", "actor", "route", "layer", "district", "rows"])
        with contextlib.closing(sqlite3.connect(self.path)) as con:
            con.execute(_AUDIT_DDL)
            return pd.read_sql_query(
                "SELECT at, actor, route, layer, district, rows FROM karte_audit ORDER BY id", con)


#: The access log: a plain SQLite table in the file, appended to, never a layer.
AUDIT_TABLE = "karte_audit"
_AUDIT_DDL = (
    "CREATE TABLE IF NOT EXISTS karte_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
    " actor TEXT NOT NULL, route TEXT NOT NULL, layer TEXT NOT NULL, district TEXT, rows INTEGER)"
)


def _write_layer(path: Path, name: str, frame: pd.DataFrame) -> None:
    if isinstance(frame, gpd.GeoDataFrame):
        geom_type = _promote(frame)
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG", geometry_type=geom_type,
                                promote_to_multi=geom_type.startswith("Multi"))
    else:
        pyogrio.write_dataframe(pd.DataFrame(frame), path, layer=name, driver="GPKG")


def _promote(frame: gpd.GeoDataFrame) -> str:
    kinds = set(frame.geom_type.dropna())
    if kinds <= {"Point"}:
        return "Point"
    if kinds <= {"Polygon", "MultiPolygon"}:
        return "MultiPolygon"
    return "Unknown"


def _quote(text: str) -> str:
    return str(text).replace("'", "''")
