"""Map layers as a viewer may see them, for every format the web serves (GeoJSON, OGC API, pages).

What the public sees of each layer (documented in ``docs/web-api.md``):

========================  =====================================================================
layer                     public / anonymous
========================  =====================================================================
districts                 polygons, names, district measures (small counts suppressed)
small_areas               polygons and census counts (small counts suppressed)
shelters, emergency_sites everything (published by GSI)
services                  everything, including ``contact``: it is the organiser's published
                          contact, printed on the public sheet too
catchments, coverage      salon catchments; uncovered areas with their (suppressed) counts
register                  nothing (an empty frame with the columns)
cooperators               nothing: role and help counts appear only as karte aggregates
========================  =====================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from karte.domain.access import DEFAULT_SUPPRESS_MAX, Access, Level
from karte.domain.errors import NotFoundError
from karte.domain.layers import LAYERS as STORE_LAYERS
from karte.domain.layers import Layer
from karte.render.webmap import to_web_geojson
from karte.services import suppression
from karte.services.personal import read_rows, with_flags, with_load
from karte.services.suppression import suppress_frame
from karte.snapshot import Snapshot, current


@dataclass(frozen=True)
class WebLayer:
    """A layer the web serves: its key column, Japanese title, and whether it holds personal rows."""

    name: str
    key: str
    title_ja: str
    description: str = ""

    @property
    def personal(self) -> bool:
        entry = STORE_LAYERS.get(self.name)
        return bool(entry and entry.personal)


#: Every layer the web serves, in map order (bottom to top).
WEB_LAYERS: dict[str, WebLayer] = {w.name: w for w in (
    WebLayer("districts", "district_code", "地区", "地区社協の区域と地区の指標"),
    WebLayer("small_areas", "key_code", "町丁・字", "小地域（国勢調査）の人口・世帯"),
    WebLayer("coverage", "district_code", "サロン徒歩圏外",
             "月1回以上のサロンの徒歩圏から外れる高齢者のいる区域（地区ごと）"),
    WebLayer("catchments", "service_id", "サロンの徒歩圏", "月1回以上のサロンの徒歩圏（直線半径）"),
    WebLayer("shelters", "shelter_id", "指定避難所", "指定避難所（福祉避難所を含む）"),
    WebLayer("emergency_sites", "site_id", "指定緊急避難場所", "指定緊急避難場所と災害種別"),
    WebLayer("services", "service_id", "共助サービス", "サロン・見守りなどの共助サービス"),
    WebLayer("cooperators", "cooperator_id", "共助協力者", "共助協力者（連絡先を含む個人情報）"),
    WebLayer("register", "person_id", "要支援者", "要支援者名簿（個人情報）と避難支援の空白"),
)}
#: Layer name -> the column that identifies a feature (GeoJSON ``id``, OGC API item id).
FEATURE_KEYS = {name: w.key for name, w in WEB_LAYERS.items()}
#: Names of the web layers with personal rows.
PERSONAL = frozenset(name for name, w in WEB_LAYERS.items() if w.personal)


def layer_view(store, layer: str, access: Access, *, district: str | None = None,
               max_small: int = DEFAULT_SUPPRESS_MAX) -> gpd.GeoDataFrame:
    """The rows of web layer ``layer`` (a key of :data:`WEB_LAYERS`) that ``access`` may see, EPSG:6678.

    Parameters
    ----------
    store
        The karte store.
    layer
        ``districts``, ``small_areas``, ``coverage``, ``catchments``, ``shelters``,
        ``emergency_sites``, ``services``, ``cooperators`` or ``register``.
    access
        The viewer; ``access.route`` names the route in the access log.
    district
        Only the rows of this district (``district_code``; points are located in the district
        polygons; catchments belong to their salon's district).
    max_small
        Viewers of suppressed figures (:func:`karte.services.suppression.applies`: the public,
        the prefecture level, a district member outside their district) see counts from 1 to
        this value as ``SUPPRESSED``, and the counts that would give them away
        (complementary suppression: :mod:`karte.services.suppression`).

    Returns
    -------
    GeoDataFrame
        One row per feature, the key column first, geometry last; the public layers as
        :meth:`karte.snapshot.Snapshot.layer` derives them. ``register`` (authorised viewers
        only): the register columns plus what the analyses found per person (one boolean per gap
        kind, ``gaps``, ``at_risk``, ``gap_kinds``, ``needs_care``, ``supporter_m``,
        ``shelter_m``); ``cooperators``: plus ``assigned``. Public viewers get count columns as
        ``object`` (ints, ``None`` or ``SUPPRESSED``) and no rows of the personal layers.

    Raises
    ------
    NotFoundError
        Unknown layer or district.
    """
    if layer not in WEB_LAYERS:
        raise NotFoundError(f"レイヤ {layer} はありません（{', '.join(WEB_LAYERS)}）")
    snap = current(store)
    if district is not None and district not in snap.kartes:
        raise NotFoundError(f"地区 {district} はありません (例: {', '.join(snap.codes[:5])} …)")
    if layer in PERSONAL:
        return _personal_layer(store, snap, layer, access, district)
    frame = snap.layer(layer)
    if district is not None:
        frame = frame[frame["district_code"] == district]
    frame = frame.reset_index(drop=True)
    if not suppression.applies(access, district):
        return frame
    shown = suppress_frame(frame, layer, max_small, snapshot=snap)
    if access.level == Level.DISTRICT_MEMBER and "district_code" in frame.columns and shown is not frame:
        # the member's own district exactly (they see its persons), every other one suppressed
        own = pd.Series((frame["district_code"] == access.district).to_numpy(), index=shown.index)
        if own.any():
            shown = shown.copy()
            for column in shown.columns:
                if column != shown.geometry.name and shown[column].dtype != frame[column].dtype:
                    shown[column] = shown[column].where(~own, frame[column].astype(object))
    return shown


def layer_geojson(store, layer: str, access: Access, *, district: str | None = None,
                  max_small: int = DEFAULT_SUPPRESS_MAX, tolerance_m: float = 5.0) -> bytes:
    """:func:`layer_view` as GeoJSON bytes for web maps (simplified ``tolerance_m`` metres, 6
    decimals, EPSG:4326; :func:`karte.render.webmap.to_web_geojson`), the feature ``id`` from
    :data:`FEATURE_KEYS`.

    A public layer's answer is the same for every viewer of one audience
    (:func:`karte.services.suppression.audience`), so it is simplified, reprojected and encoded
    once per build, district and audience (the snapshot's memo); a personal layer's is made from
    the viewer's own read on every call (filtered and logged in the store)."""

    def encode() -> bytes:
        frame = layer_view(store, layer, access, district=district, max_small=max_small)
        data = to_web_geojson(frame, tolerance_m=tolerance_m, id_column=FEATURE_KEYS[layer])
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    if layer in PERSONAL or layer not in WEB_LAYERS:
        return encode()
    key = ("geojson", layer, district, suppression.audience(access, district), max_small, tolerance_m)
    return current(store).memo(key, encode)


def _personal_layer(store, snap: Snapshot, layer: str, access: Access,
                    district: str | None) -> gpd.GeoDataFrame:
    if access.sees_personal:
        rows = read_rows(store, layer, access, district=district)
    else:  # the columns, no row, no read
        rows = snap.analysis_inputs()[layer].iloc[0:0].copy()
    if not isinstance(rows, gpd.GeoDataFrame) or rows.geometry.name not in rows.columns:
        rows = snap.analysis_inputs()[layer].iloc[0:0].copy()
    return with_flags(snap, rows) if layer == Layer.REGISTER else with_load(snap, rows)


def json_value(v):
    """A value as plain JSON (None for missing; Python numbers, not numpy's)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v
