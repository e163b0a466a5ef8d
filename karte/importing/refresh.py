"""Keep the kartes in step with an import: reassemble them from the store's layers as they will
be after the import, and update the ``meta`` flags, so the new layer and the kartes built from
it are written together in one atomic store write (never a half-updated karte)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from gis import crs
from karte import history, municipalities
from karte.assemble import assemble_kartes, kartes_frame
from karte.basestats import base_stats, district_counts
from karte.census import reconcile
from karte.domain.history import HistoryLayer
from karte.domain.layers import COOPERATOR_COLUMNS, REGISTER_COLUMNS, SERVICE_COLUMNS, Layer

#: Layers a karte is assembled from.
KARTE_INPUTS = (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES,
                Layer.SHELTERS, Layer.EMERGENCY_SITES)
_EMPTY = {
    Layer.REGISTER: REGISTER_COLUMNS,
    Layer.COOPERATORS: COOPERATOR_COLUMNS,
    Layer.SERVICES: SERVICE_COLUMNS,
    Layer.SHELTERS: ("shelter_id", "name", "address", "welfare", "accepts", "note"),
    Layer.EMERGENCY_SITES: ("site_id", "name", "address", "note"),
}


def updated_meta(meta: Mapping[str, str], *, kind: str, layer: str, small_areas: pd.DataFrame | None,
                 provided: set[str], by_polygon: bool | None, record: dict) -> dict[str, str]:
    """The ``meta`` key/values after importing real data of ``kind``.

    The imported layer is no longer synthetic; after a statistics import, ``age_bands`` is real
    once no small area keeps synthetic bands, and ``elderly_alone``/``disabled`` once the file
    gave them. ``import_<layer>`` records the file name, checksum, row count and time.
    """
    out = dict(meta)
    synthetic = json.loads(out.get("synthetic", "[]"))
    layers = json.loads(out.get("synthetic_layers", "[]"))
    if kind in ("register", "cooperators", "services"):
        layers = [x for x in layers if x != kind]
        synthetic = [x for x in synthetic if x != kind]
    if kind == "stats" and small_areas is not None:
        if "synthetic_age" in small_areas.columns and not small_areas["synthetic_age"].astype(bool).any():
            synthetic = [x for x in synthetic if x != "age_bands"]
        synthetic = [x for x in synthetic if x not in provided]
    out["synthetic"] = json.dumps(synthetic)
    out["synthetic_layers"] = json.dumps(layers)
    if by_polygon is not None:
        out["by_polygon"] = json.dumps(by_polygon)
    out["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out[f"import_{layer}"] = json.dumps(record, ensure_ascii=False)
    if kind in ("register", "cooperators", "services"):  # as of the import, no longer the build's date
        out[f"{kind}_as_of"] = str(record.get("at", ""))[:10] or out.get(f"{kind}_as_of", "")
    if kind == "shelters":
        out["shelters_fetched"] = str(record.get("at", ""))[:10]
    return out


def _object_text(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def meta_frame(meta: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]})


def reassemble(layers: Mapping[str, pd.DataFrame], meta: Mapping[str, str]) -> pd.DataFrame:
    """The ``kartes`` layer rebuilt from ``layers`` (missing point layers count as empty)."""
    frames = {name: layers.get(name) for name in KARTE_INPUTS}
    for name, cols in _EMPTY.items():
        if frames[name] is None:
            frames[name] = gpd.GeoDataFrame({c: [] for c in cols}, geometry=gpd.GeoSeries([], crs=crs.METRIC))
    # pandas' str dtype sums an empty selection to "" (karte.assemble.register_summary would then
    # fail on a district without register rows): hand the summaries object columns
    frames = {name: _object_text(frame) for name, frame in frames.items()}
    by_polygon = json.loads(meta.get("by_polygon", "false"))
    today = dt.date.today()
    fiscal = int(meta.get("fiscal_year") or (today.year if today.month >= 4 else today.year - 1))
    info = {
        "fiscal_year": fiscal,
        "data_date": meta.get("data_date", today.isoformat()),
        "built_at": meta.get("built_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        "synthetic": json.loads(meta.get("synthetic", "[]")),
        "sources": history.sources_block({**meta, "fiscal_year": str(fiscal)}),
    }
    districts = frames[Layer.DISTRICTS]
    counts = district_counts(frames[Layer.SMALL_AREAS], districts=districts, by_polygon=by_polygon)
    stats, city = base_stats(counts, frames[Layer.REGISTER])
    kartes = assemble_kartes(districts=districts, stats=stats, city=city, register=frames[Layer.REGISTER],
                             cooperators=frames[Layer.COOPERATORS], services=frames[Layer.SERVICES],
                             shelters=frames[Layer.SHELTERS], emergency_sites=frames[Layer.EMERGENCY_SITES],
                             meta=info, municipality_names=municipalities.names(frames[Layer.SMALL_AREAS]))
    reconcile.frames_sources(frames[Layer.SMALL_AREAS], census_years=layers.get(reconcile.CENSUS_YEARS),
                             census_areas=layers.get(reconcile.CENSUS_AREAS)).attach(kartes)
    return kartes_frame(kartes)


def updated_history(before: pd.DataFrame | None, kartes: pd.DataFrame, layers: Mapping[str, pd.DataFrame],
                    meta: Mapping[str, str]) -> pd.DataFrame:
    """The ``history`` layer after an import: the reassembled kartes' figures as the rows of the
    build's fiscal year (replacing that year's, keeping the analysis figures recorded for it and
    every other year), so an import keeps its year's snapshot as a build does. Meant to be written
    in the import's one atomic write, beside the kartes (``karte.importing.api._add_derived``)."""
    parsed = {code: json.loads(text) for code, text in zip(kartes["district_code"], kartes["karte_json"],
                                                             strict=True)}
    fiscal = int(meta.get("fiscal_year") or history.current_fiscal_year())
    register = layers.get(Layer.REGISTER)
    cooperators = layers.get(Layer.COOPERATORS)
    services = layers.get(Layer.SERVICES)
    empty = pd.DataFrame({"supporter_ids": [], "cooperator_id": [], "district_code": []})
    rows = history.history_rows(
        parsed, fiscal_year=fiscal, meta=meta,
        salons=history.salons_by_district(services) if services is not None else {},
        supporters=history.supporters_by_district(register if register is not None else empty,
                                                  cooperators if cooperators is not None else empty),
        sources=next(iter(parsed.values())).get("sources") if parsed else None)
    return history.merge_history(before, rows)


#: The layer :func:`updated_history` makes.
HISTORY_LAYER = str(HistoryLayer.HISTORY)
