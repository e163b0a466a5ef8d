"""The storage interface every karte store implements (GeoPackage and PostGIS).

A store holds named layers (:mod:`karte.domain.layers`). Spatial layers are GeoDataFrames in
EPSG:6678 in memory; attribute layers are DataFrames. List-valued fields (``supporter_ids``,
``help_kinds``) are kept as text joined by ``;``; dates as ISO ``YYYY-MM-DD``
text (:func:`karte.domain.layers.split_list`). That keeps every layer lossless in GeoPackage,
PostGIS and CSV alike.

Two ways to write:

* **whole layers** (:meth:`Store.write`): the build, imports and restores replace layers, all
  of the named ones or none;
* **rows** (:meth:`Store.append_rows`, :meth:`Store.update_row`, :meth:`Store.delete_row`):
  people recording decisions, meetings, visits. Each call takes the acting
  :class:`~karte.domain.access.Access`, checks what that user may write (PostGIS: row-level
  security as that user's level), and writes its access-log row in the same transaction. Ids
  of appended rows come from the database; edits are optimistic (a ``version`` per row), so two
  people editing one row never lose a write silently: the second gets
  :class:`~karte.domain.errors.ConflictError`. Several processes on one store lose nothing.

Every read of a personal layer with an ``access`` is narrowed to what that user may see and
written to the access log (counts only, never the rows).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import geopandas as gpd
import pandas as pd
import shapely

from gis.overlay import locate_points
from karte.domain.access import Access

#: Store-managed columns of personal and record layers: the row's version (optimistic locking),
#: when and by whom it was last written. Not part of a layer's frame unless asked for
#: (:meth:`Store.read_full`).
SYSTEM_COLUMNS = ("version", "updated_at", "updated_by")

#: What an access-log row records about a call.
AUDIT_ACTIONS = ("read", "export", "write", "append", "update", "delete")
#: The access log's columns, oldest row first (:meth:`Store.audit_log`).
AUDIT_COLUMNS = ("at", "actor", "level", "route", "action", "layer", "district", "rows")

#: Capability flags (:attr:`Store.capabilities`).
ROWS = "rows"                  #: append_rows / update_row / delete_row / read_row
DATABASE_RLS = "database_rls"  #: the database itself enforces the access rules (row-level security)
SPATIAL_SQL = "spatial_sql"    #: spatial joins run in the database (:meth:`Store.locate`)


class Store(ABC):
    """A place that holds the karte layers.

    Implementations make :meth:`write` atomic (after a crash or an exception midway the store
    holds exactly what it held before) and each row call one transaction. Callers never test a
    store's type: optional operations raise :class:`NotImplementedError` and
    :attr:`capabilities` says which a store has.
    """

    #: Human-readable location (path or URL without password) for messages.
    location: str
    #: What this store can do beyond the whole-layer interface (:data:`ROWS`, ...).
    capabilities: frozenset[str] = frozenset()
    #: The municipality its reads are limited to (:class:`karte.store.scoped.MunicipalityView`);
    #: None: every row.
    municipality: str | None = None

    def close(self) -> None:  # noqa: B027 - a store without resources has nothing to close
        """Release what the store holds open (pooled connections); the next call reopens."""

    # -- whole layers ------------------------------------------------------------------------

    @abstractmethod
    def exists(self) -> bool:
        """Has anything been written yet?"""

    @abstractmethod
    def layers(self) -> list[str]:
        """Names of the layers present (never the access log)."""

    @abstractmethod
    def read(self, layer: str, *, district: str | None = None, municipality: str | None = None,
             access: Access | None = None) -> pd.DataFrame:
        """Read one layer whole, or only the rows whose ``district_code`` is ``district`` and
        (when given) whose ``municipality_code`` is ``municipality`` (district codes are unique
        within a municipality only).

        ``access`` narrows personal layers to the rows that user may see (PostGIS: row-level
        security in the database; GeoPackage: :meth:`Access.filter_rows`) and writes the read
        to the access log; ``None`` means the store's own trusted user (the build pipeline),
        unlogged. System columns (:data:`SYSTEM_COLUMNS`) are left out.

        Every user but the prefecture level and the public belongs to a municipality
        (``access.municipality``) and gets rows of that municipality only, as row-level security
        on PostGIS. Raises :class:`karte.domain.errors.StoreError` when the layer does not exist.
        """

    def read_records(self, layer: str, *, district: str | None = None, municipality: str | None = None,
                     access: Access | None = None, match: Mapping[str, object] | None = None) -> list[dict]:
        """:meth:`read` as a list of dicts, one per row (what a page renders), with the point of a
        point layer as ``x`` and ``y`` (EPSG:6678 metres, None without a location) instead of a
        geometry. The same rows, rules and access-log row as :meth:`read`; a store may answer it
        without building a frame (the GeoPackage store does: a page's reads are its main cost).
        ``match``: only the rows whose columns equal these values (selected in the database by
        both stores: a login's session among every session ever started)."""
        rows = frame_records(self.read(layer, district=district, municipality=municipality, access=access))
        return [r for r in rows if all(r.get(k) == v for k, v in (match or {}).items())]

    def read_full(self, layer: str, *, access: Access | None = None) -> pd.DataFrame:
        """:meth:`read` plus, on personal and record layers, the :data:`SYSTEM_COLUMNS` (what an
        export must carry to be restored exactly)."""
        raise NotImplementedError(f"{type(self).__name__} does not read system columns")

    @abstractmethod
    def write(self, layers: Mapping[str, pd.DataFrame], *, access: Access | None = None) -> None:
        """Replace the named layers, all of them or none (atomically).

        ``access`` is who writes (``None``: the store's trusted user); only city staff may
        replace a personal layer. Rows of personal layers get ``updated_by`` = that user and a
        fresh ``version``, unless the frames carry the system columns (a restore).
        """

    @abstractmethod
    def stamp(self) -> str:
        """A token that changes whenever a snapshot layer (:data:`karte.domain.layers.SNAPSHOT_LAYERS`)
        changes, by a whole-layer write or a row write, in any process. Cheap: one small query,
        so a server may ask on every request. ``""`` for an empty store."""

    # -- rows ----------------------------------------------------------------------------------

    def append_rows(self, layer: str, rows: Sequence[Mapping[str, object]], *,
                    access: Access) -> list[dict]:
        """Insert ``rows`` into ``layer`` as ``access``, in one transaction with its access-log row.

        A row without its key (:attr:`LayerSpec.key`) gets a new id from the database
        (:meth:`LayerSpec.new_id`: never reused, unique across processes); a row without its
        ``municipality_code`` gets the user's. Keys are unique within a municipality. A record layer
        (:attr:`LayerSpec.records`) that does not exist yet is created with its declared
        columns. Returns the rows as stored: every column of the layer, the key, ``version``.

        Raises :class:`~karte.domain.errors.AccessDenied` when the user may not write a row
        (another district, a level without write rights), and
        :class:`~karte.domain.errors.StoreError` for a duplicate key or a value of the wrong kind.
        """
        raise NotImplementedError(f"{type(self).__name__} does not write single rows")

    def read_row(self, layer: str, key: str, *, access: Access) -> dict:
        """One row by its key, with its ``version`` (for :meth:`update_row`), read as ``access``
        and logged. :class:`~karte.domain.errors.NotFoundError` when absent or not visible to
        the user (the message does not say which)."""
        raise NotImplementedError(f"{type(self).__name__} does not read single rows")

    def update_row(self, layer: str, key: str, changes: Mapping[str, object], *, version: int,
                   access: Access) -> int:
        """Change one row if it is still at ``version`` and return the new version.

        :class:`~karte.domain.errors.ConflictError` when someone else saved first (nothing is
        written); :class:`~karte.domain.errors.NotFoundError` when the row is absent or not the
        user's to change. Logged with the acting user.
        """
        raise NotImplementedError(f"{type(self).__name__} does not edit single rows")

    def delete_row(self, layer: str, key: str, *, version: int, access: Access) -> None:
        """Delete one row if it is still at ``version`` (the same errors as :meth:`update_row`)."""
        raise NotImplementedError(f"{type(self).__name__} does not delete single rows")

    # -- the access log -------------------------------------------------------------------------

    @abstractmethod
    def audit(self, *, access: Access, layer: str, district: str | None, rows: int,
              action: str = "read") -> None:
        """Append one row to the access log: who (``access.user`` at ``access.level``), when,
        which route (``access.route``), what (:data:`AUDIT_ACTIONS`), which layer and district,
        how many rows. Never the rows themselves. For reads and exports the store does not log
        itself (a printed sheet, a CSV download)."""

    def audit_log(self) -> pd.DataFrame:
        """The access log, oldest first (:data:`AUDIT_COLUMNS`)."""
        raise NotImplementedError

    # -- helpers every store gets --------------------------------------------------------------

    def locate(self, layer: str, *, polygons: str = "districts", field: str = "district_code",
               access: Access | None = None) -> pd.Series:
        """For each row of the point ``layer`` (in :meth:`read` order), ``field`` of the polygon of
        ``polygons`` that contains it; points on a shared border take the lowest value, points
        outside or without a location ``None``. PostGIS answers in the database."""
        points = self.read(layer, access=access)
        return locate_points(points, self.read(polygons), field).reset_index(drop=True)

    def meta(self) -> dict[str, str]:
        """The ``meta`` key/value layer as a dict (empty when absent)."""
        if "meta" not in self.layers():
            return {}
        table = self.read("meta")
        return dict(zip(table["key"], table["value"], strict=True))


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts (:meth:`Store.read_records`): no geometry, ``x`` and ``y``
    of a point (None without one); missing values None. Column by column, far faster than
    pandas' ``to_dict("records")``."""
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    names = [c for c in frame.columns if c != geometry]
    columns = [[None if (isinstance(v, float) and v != v) or v is pd.NA else v for v in frame[c].tolist()]
               for c in names]
    if geometry is not None:
        geoms = frame.geometry.to_numpy()
        located = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        names += ["x", "y"]
        xs, ys = shapely.get_x(geoms).tolist(), shapely.get_y(geoms).tolist()
        columns += [[float(v) if ok else None for v, ok in zip(xs, located, strict=True)],
                    [float(v) if ok else None for v, ok in zip(ys, located, strict=True)]]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
