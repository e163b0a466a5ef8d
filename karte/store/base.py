"""The storage interface every karte store implements (GeoPackage now, PostGIS next).

A store holds named layers (:class:`karte.schema.Layer`). Spatial layers are GeoDataFrames in
EPSG:6678 in memory; attribute layers are DataFrames. List-valued fields (``supporter_ids``,
``help_kinds``) are kept as text joined by :data:`LIST_SEPARATOR`; dates as ISO ``YYYY-MM-DD``
text. That keeps every layer lossless in GeoPackage, PostGIS and CSV alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from karte.access import Access

LIST_SEPARATOR = ";"


def split_list(value) -> list[str]:
    """``"a;b"`` -> ``["a", "b"]``; empty or null -> ``[]``."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return []
    return [v for v in str(value).split(LIST_SEPARATOR) if v]


def join_list(values) -> str:
    return LIST_SEPARATOR.join(str(v) for v in values)


class Store(ABC):
    """A place that holds the karte layers.

    Implementations must make :meth:`write` atomic: after a crash or an exception midway the store
    holds exactly what it held before.
    """

    #: Human-readable location (path or URL without password) for messages.
    location: str

    @abstractmethod
    def exists(self) -> bool:
        """Has anything been written yet?"""

    @abstractmethod
    def layers(self) -> list[str]:
        """Names of the layers present."""

    @abstractmethod
    def read(self, layer: str, *, district: str | None = None, access: Access | None = None) -> pd.DataFrame:
        """Read one layer whole, or only the rows whose ``district_code`` is ``district``.

        ``access`` (:class:`karte.access.Access`) narrows personal layers to the rows that user may
        see (PostGIS: row-level security in the database) and names them in the access log; ``None``
        means the store's own trusted user (the build pipeline).

        Raises :class:`karte.errors.StoreError` when the layer does not exist.
        """

    @abstractmethod
    def write(self, layers: Mapping[str, pd.DataFrame]) -> None:
        """Replace the named layers, all of them or none (atomically)."""

    @abstractmethod
    def audit(self, *, actor: str, route: str, layer: str, district: str | None, rows: int) -> None:
        """Append one row to the access log: who read or exported personal rows, when, where
        from, which district and how many rows. Never the rows themselves."""

    def audit_log(self) -> pd.DataFrame:
        """The access log, oldest first (columns: at, actor, route, layer, district, rows)."""
        raise NotImplementedError

    def locate(self, layer: str, *, polygons: str = "districts", field: str = "district_code",
               access: Access | None = None) -> pd.Series:
        """For each row of the point ``layer`` (in :meth:`read` order), ``field`` of the polygon of
        ``polygons`` that contains it; points on a shared border take the lowest value, points
        outside or without a location ``None``. PostGIS answers in the database."""
        from gis.overlay import locate_points

        points = self.read(layer, access=access)
        return locate_points(points, self.read(polygons), field).reset_index(drop=True)

    def read_row(self, layer: str, key: str, *, access: Access | None = None) -> dict:
        """One row of a personal layer by its id, with its ``version`` (for :meth:`update_row`)."""
        raise NotImplementedError(f"{type(self).__name__} does not edit single rows; use PostGIS")

    def update_row(self, layer: str, key: str, changes: Mapping[str, object], *, version: int,
                   access: Access | None = None) -> int:
        """Change one row if it is still at ``version`` (optimistic locking) and return the new
        version; raise :class:`karte.errors.ConflictError` when someone else saved first."""
        raise NotImplementedError(f"{type(self).__name__} does not edit single rows; use PostGIS")

    def meta(self) -> dict[str, str]:
        """The ``meta`` key/value layer as a dict (empty when absent)."""
        if "meta" not in self.layers():
            return {}
        table = self.read("meta")
        return dict(zip(table["key"], table["value"], strict=True))
