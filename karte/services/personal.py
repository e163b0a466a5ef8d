"""Personal rows as a viewer may see them: read from the store as that viewer, never from a cache.

The store applies the access rules (PostGIS: row-level security as the viewer's database role;
GeoPackage: :meth:`~karte.domain.access.Access.filter_rows`) and writes the read to the access log
with the real user. The rules are applied once more here (they are cheap, and a store that
forgot one would still not leak).

Two things every view of a person gets here, whichever page, file or command shows it:

* **disaster mode** (:mod:`karte.services.disaster`): the viewer's access carries the districts
  of their municipality in disaster mode at the moment of the read, so a district member of such a
  district sees its unconsented entries too, and the read is logged with the mode (``+disaster``
  in the access log's route). Outside disaster mode the viewer's access is used unchanged.
* **the plan status from the plans**: a register row's ``plan_status`` is the status of the
  person's individual evacuation plan when they have one in karte
  (:meth:`karte.snapshot.Snapshot.plan_status_of`), else the value the city imported.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from karte.domain.access import Access
from karte.domain.errors import KarteError
from karte.domain.layers import MUNICIPALITY, Layer
from karte.services.disaster import with_modes
from karte.snapshot import Snapshot, current
from karte.store.base import Store


def read_rows(store: Store, layer: str, access: Access, *, district: str | None = None) -> pd.DataFrame:
    """The rows of personal ``layer`` (of ``district``, or every district) this viewer may see;
    an empty frame, without reading the store, for a viewer who may see none."""
    if not access.sees_personal or (district is not None and not access.may_see_district_rows(district)):
        return _empty()
    snap = _snapshot(store)
    access = with_modes(snap, access)
    rows = store.read(layer, district=district, access=access)
    rows = access.filter_rows(layer, rows).reset_index(drop=True)
    if str(layer) == Layer.REGISTER and snap is not None and len(rows) and "plan_status" in rows.columns:
        rows = rows.copy()
        places = rows[MUNICIPALITY].tolist() if MUNICIPALITY in rows.columns else [None] * len(rows)
        rows["plan_status"] = [snap.plan_status_of(p, m, own) for p, m, own in
                               zip(rows["person_id"], places, rows["plan_status"].tolist(), strict=True)]
    return rows


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


def read_records(store: Store, layer: str, access: Access, *, district: str | None = None,
                 snap: Snapshot | None = None) -> list[dict]:
    """:func:`read_rows` as dicts (:meth:`~karte.store.base.Store.read_records`: what a page renders).
    ``snap``: the build snapshot when the caller has it in hand (one stamp query less)."""
    if not access.sees_personal or (district is not None and not access.may_see_district_rows(district)):
        return []
    snap = snap or _snapshot(store)
    access = with_modes(snap, access)
    rows = access.visible(layer, store.read_records(layer, district=district, access=access))
    if str(layer) == Layer.REGISTER and snap is not None:
        for row in rows:
            row["plan_status"] = snap.plan_status_of(row.get("person_id"), row.get(MUNICIPALITY),
                                                     row.get("plan_status"))
    return rows


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


def _snapshot(store: Store) -> Snapshot | None:
    """The build snapshot, or None for a store without a build (rows are then shown as stored)."""
    try:
        return current(store)
    except KarteError:
        return None


def _geometry_last(frame: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        return frame
    g = frame.geometry.name
    return frame[[c for c in frame.columns if c != g] + [g]]


def _empty() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:6678"))
