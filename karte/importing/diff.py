"""What an import changes: rows added, removed and updated per district, compared by id.

Values are compared in a normal form that survives a store round trip (nulls and empty text
alike, booleans as 0/1, whole floats as integers; geometries within half a metre), so loading the
same file twice reports no change and writes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

WHOLE_CITY = "全市"
#: Geometries closer than this (metres, vertex by vertex) are the same: a GeoJSON round trip in
#: longitude/latitude moves vertices by millimetres.
GEOMETRY_TOLERANCE_M = 0.5


@dataclass
class ChangeReport:
    """Changes to one layer; ``by_district`` maps a district code to added/removed/updated counts."""

    layer: str
    by_district: dict[str, dict[str, int]] = field(default_factory=dict)
    unchanged: int = 0

    def _total(self, what: str) -> int:
        return sum(d[what] for d in self.by_district.values())

    @property
    def added(self) -> int:
        return self._total("added")

    @property
    def removed(self) -> int:
        return self._total("removed")

    @property
    def updated(self) -> int:
        return self._total("updated")

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated)

    def count(self, district: str | None, what: str) -> None:
        key = district if district else WHOLE_CITY
        slot = self.by_district.setdefault(key, {"added": 0, "removed": 0, "updated": 0})
        slot[what] += 1

    def table(self) -> list[tuple[str, int, int, int]]:
        """(district, added, removed, updated) rows sorted by district, without unchanged ones."""
        return [(d, c["added"], c["removed"], c["updated"]) for d, c in sorted(self.by_district.items())
                if c["added"] or c["removed"] or c["updated"]]


def normal(value) -> str:
    """The comparable text of one cell (see the module doc)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, BaseGeometry):
        return "" if value.is_empty else shapely.to_wkt(value, rounding_precision=1)
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else f"{value:.9g}"
    return str(value)


def _normal_column(values: np.ndarray) -> list[str]:
    """:func:`normal` of every cell of a column, worked out once per distinct value (a column of
    text is itself; equal values of any type have the same normal text)."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "string":                                 # text, perhaps with empty cells
        missing = pd.isna(values)
        return values.tolist() if not missing.any() else np.where(missing, "", values).tolist()
    memo: dict[tuple[type, object], str] = {}
    out: list[str] = []
    for value in values:
        if type(value) is str:
            out.append(value)
            continue
        try:
            key = (type(value), value)
            text = memo.get(key)
        except TypeError:  # unhashable: no memo
            out.append(normal(value))
            continue
        if text is None:
            text = memo[key] = normal(value)
        out.append(text)
    return out


def _signatures(frame: pd.DataFrame, id_field: str, columns: list[str]) -> dict[str, tuple]:
    """Row id -> the normal text of ``columns`` (in that order; a missing column reads as empty)."""
    n = len(frame)
    texts = [_normal_column(frame[c].to_numpy(dtype=object)) if c in frame.columns else [""] * n
             for c in columns]
    ids = _normal_column(frame[id_field].to_numpy(dtype=object))
    return dict(zip(ids, zip(*texts, strict=True) if texts else [()] * n, strict=True))


def _geometries(frame: pd.DataFrame | None, id_field: str) -> dict[str, object]:
    if frame is None or not isinstance(frame, gpd.GeoDataFrame) or not len(frame):
        return {}
    return dict(zip(_normal_column(frame[id_field].to_numpy(dtype=object)), frame.geometry.to_numpy(),
                    strict=True))


def same_geometry(a, b) -> bool:
    """Equal within :data:`GEOMETRY_TOLERANCE_M` (survives reprojection and file round trips)."""
    a_empty = a is None or a.is_empty
    b_empty = b is None or b.is_empty
    if a_empty or b_empty:
        return a_empty and b_empty
    if a.geom_type == "Point" and b.geom_type == "Point":
        return a.distance(b) <= GEOMETRY_TOLERANCE_M
    # vertex order and start point may differ after a round trip: compare shapes, not sequences
    return bool(shapely.hausdorff_distance(a, b) <= GEOMETRY_TOLERANCE_M)


def diff_layer(old: pd.DataFrame | None, new: pd.DataFrame, *, layer: str, id_field: str,
               columns: list[str] | None = None, district_field: str | None = "district_code",
               ) -> ChangeReport:
    """Compare ``new`` with ``old`` (None: the layer does not exist yet) row by row by ``id_field``.

    ``columns``: what to compare (default: every column of either frame, geometry included).
    Added and updated rows count under their new district, removed rows under their old one.
    """
    report = ChangeReport(layer)
    if columns is None:
        extra = [c for c in (old.columns if old is not None else []) if c not in new.columns]
        names = list(new.columns) + extra
        columns = [c for c in names if c != id_field]
    geometry = [c for c in columns if _is_geometry(new, c) or _is_geometry(old, c)]
    columns = [c for c in columns if c not in geometry]
    new_sig = _signatures(new, id_field, columns)
    old_sig = _signatures(old, id_field, columns) if old is not None and len(old) else {}
    new_geom = _geometries(new, id_field) if geometry else {}
    old_geom = _geometries(old, id_field) if geometry else {}
    new_district = _districts(new, id_field, district_field)
    old_district = _districts(old, id_field, district_field) if old is not None and len(old) else {}
    for key, sig in new_sig.items():
        if key not in old_sig:
            report.count(new_district.get(key), "added")
        elif old_sig[key] != sig or (geometry and not same_geometry(old_geom.get(key),
                                                                    new_geom.get(key))):
            report.count(new_district.get(key), "updated")
        else:
            report.unchanged += 1
    for key in old_sig:
        if key not in new_sig:
            report.count(old_district.get(key), "removed")
    return report


def _is_geometry(frame: pd.DataFrame | None, column: str) -> bool:
    return isinstance(frame, gpd.GeoDataFrame) and column == frame.geometry.name


def _districts(frame: pd.DataFrame, id_field: str, district_field: str | None) -> dict[str, str | None]:
    if district_field is None:
        return {}
    ids = _normal_column(frame[id_field].to_numpy(dtype=object))
    if district_field == id_field:
        return dict(zip(ids, ids, strict=True))
    if district_field not in frame.columns:
        return {}
    districts = _normal_column(frame[district_field].to_numpy(dtype=object))
    return {k: (d or None) for k, d in zip(ids, districts, strict=True)}
