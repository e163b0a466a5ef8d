"""Personal rows as a viewer may see them: read from the store as that viewer, never from a cache.

The store applies the access rules (PostGIS: row-level security as the viewer's database role;
GeoPackage: :meth:`~karte.domain.access.Access.filter_rows`) and writes the read to the access log
with the real user. The rules are applied once more here (they are cheap, and a store that
forgot one would still not leak).
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from karte.domain.access import Access
from karte.snapshot import Snapshot
from karte.store.base import Store


def read_rows(store: Store, layer: str, access: Access, *, district: str | None = None) -> pd.DataFrame:
    """The rows of personal ``layer`` (of ``district``, or every district) this viewer may see;
    an empty frame, without reading the store, for a viewer who may see none."""
    if not access.sees_personal or (district is not None and not access.may_see_district_rows(district)):
        return _empty()
    rows = store.read(layer, district=district, access=access)
    return access.filter_rows(layer, rows).reset_index(drop=True)


def with_flags(snapshot: Snapshot, register: pd.DataFrame) -> pd.DataFrame:
    """Register rows (as read by the viewer) with what the analyses found for each person
    (:meth:`~karte.snapshot.Snapshot.person_flags`), the geometry last."""
    flags = snapshot.person_flags(register["person_id"]) if len(register) else snapshot.person_flags([])
    out = register.reset_index(drop=True).copy()
    for col in flags.columns:
        out[col] = flags[col].to_numpy() if len(out) else pd.Series(dtype=flags[col].dtype)
    return _geometry_last(out)


def with_load(snapshot: Snapshot, cooperators: pd.DataFrame) -> pd.DataFrame:
    """Cooperator rows with ``assigned``: how many support-needers each is assigned to."""
    out = cooperators.reset_index(drop=True).copy()
    table = snapshot.supporter_load
    load = table["load"] if "load" in table.columns else pd.Series(dtype=int)
    out["assigned"] = (out["cooperator_id"].astype(str).map(load).fillna(0).astype(int)
                       if len(out) else pd.Series(dtype=int))
    return _geometry_last(out)


def read_records(store: Store, layer: str, access: Access, *, district: str | None = None) -> list[dict]:
    """:func:`read_rows` as dicts (:meth:`~karte.store.base.Store.read_records`: what a page renders)."""
    if not access.sees_personal or (district is not None and not access.may_see_district_rows(district)):
        return []
    return [r for r in store.read_records(layer, district=district, access=access)
            if access.may_see_row(layer, r)]


def person_records(snapshot: Snapshot, register: list[dict]) -> list[dict]:
    """Register rows (as the viewer read them, :func:`read_records`) with what the analyses found
    for each person (:meth:`~karte.snapshot.Snapshot.person_flag`); changed in place."""
    out = register
    for row in out:
        row.update(snapshot.person_flag(row["person_id"]))
    return out


def cooperator_records(snapshot: Snapshot, cooperators: list[dict]) -> list[dict]:
    """Cooperator rows (:func:`read_records`) with ``assigned``: how many support-needers the
    register assigns to each; changed in place."""
    out = cooperators
    for row in out:
        row["assigned"] = snapshot.assigned(row["cooperator_id"])
    return out


def _geometry_last(frame: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        return frame
    g = frame.geometry.name
    return frame[[c for c in frame.columns if c != g] + [g]]


def _empty() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:6678"))
