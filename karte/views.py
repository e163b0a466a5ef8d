"""What a user sees: the one place that decides it, for every route and format of the web app.

Every web route (HTML page, JSON, GeoJSON, CSV, OGC API items, map tooltips and popups) takes
its data from this module and from nothing else, so one set of rules covers them all:

* the rules on personal rows are those of :class:`karte.domain.access.Access` (``filter_rows``,
  ``may_see_district_rows``); this module applies them, it does not re-implement them;
* public and anonymous users get aggregates only: every count of people from 1 to
  ``max_small`` (default 2, ``KARTE_SUPPRESS_MAX``) is replaced by
  :data:`karte.domain.access.SUPPRESSED` (``"秘匿"``) by :func:`karte.domain.access.suppress`, and a rate or
  share whose count is suppressed is ``None`` (it would give the count away);
* every read of personal rows (register, cooperators) is written to the store's access log
  (who, route, layer, district, how many rows; never the rows). The PostGIS store logs its own
  reads in the database (row-level security decides the rows there too); for the GeoPackage store
  this module calls :meth:`karte.store.base.Store.audit`.

What the public sees of each layer (decided here, documented in ``docs/web-api.md``):

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

The expensive shared inputs (the kartes, the public layers, the citywide evacuation-gap
analysis and the salon coverage, about 3 s on the demo) are computed once per store build
(keyed by the store's location and ``meta.built_at``) and kept in memory; personal rows are never
cached, they are read through the store for each request so that its access rules and log apply.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs
from karte.assemble import personal_section
from karte.domain.access import DEFAULT_SUPPRESS_MAX, SUPPRESSED, Access, Level, suppress
from karte.domain.errors import KarteError, NotFoundError
from karte.domain.layers import Layer
from karte.store.base import Store

__all__ = [
    "FEATURE_KEYS", "LAYERS", "PERSONAL", "SUPPRESSED", "LayerInfo", "cached", "clear_cache",
    "district_codes", "district_list", "districts_table", "karte_view", "layer_view",
    "sheet_context", "store_analysis", "store_lock", "to_web_geojson",
]


@dataclass(frozen=True)
class LayerInfo:
    """A layer the web serves: its key column, Japanese title, and whether it holds personal rows."""

    name: str
    key: str
    title_ja: str
    personal: bool = False
    description: str = ""


#: Every layer the web app serves, in map order (bottom to top). ``layer_view`` accepts these names.
LAYERS: dict[str, LayerInfo] = {i.name: i for i in (
    LayerInfo("districts", "district_code", "地区", description="地区社協の区域と地区の指標"),
    LayerInfo("small_areas", "key_code", "町丁・字", description="小地域（国勢調査）の人口・世帯"),
    LayerInfo("coverage", "district_code", "サロン徒歩圏外",
              description="月1回以上のサロンの徒歩圏から外れる高齢者のいる区域（地区ごと）"),
    LayerInfo("catchments", "service_id", "サロンの徒歩圏",
              description="月1回以上のサロンの徒歩圏（直線半径）"),
    LayerInfo("shelters", "shelter_id", "指定避難所", description="指定避難所（福祉避難所を含む）"),
    LayerInfo("emergency_sites", "site_id", "指定緊急避難場所", description="指定緊急避難場所と災害種別"),
    LayerInfo("services", "service_id", "共助サービス", description="サロン・見守りなどの共助サービス"),
    LayerInfo("cooperators", "cooperator_id", "共助協力者", personal=True,
              description="共助協力者（連絡先を含む個人情報）"),
    LayerInfo("register", "person_id", "要支援者", personal=True,
              description="要支援者名簿（個人情報）と避難支援の空白"),
)}

#: Layer name -> the column that identifies a feature (GeoJSON ``id``, OGC API item id).
FEATURE_KEYS = {name: info.key for name, info in LAYERS.items()}

#: Names of the layers with personal rows.
PERSONAL = frozenset(name for name, info in LAYERS.items() if info.personal)

#: Census count columns of the small areas served on the web.
SMALL_AREA_COUNTS = ("population", "households", "age_0_14", "age_15_64", "age_65_74", "age_75_plus",
                     "elderly_alone", "disabled")
#: Numeric columns of the public layers that are *not* counts of people (never suppressed). Every
#: other numeric column of a layer the public sees is taken for a count of people and suppressed
#: when small: a new count column is safe by default, a new non-count must be listed here.
NOT_COUNTS = frozenset({"small_areas", "area_km2", "salons", "cells", "radius_m"})

#: Rate column -> the count column it would give away (hidden together).
RATE_OF = {
    "elderly_rate": "elderly",
    "gap_rate": "at_risk",
    "uncovered_share": "uncovered_elderly",
    "uncovered_elderly_share": "uncovered_elderly",
    "uncovered_75_plus_share": "uncovered_75_plus",
}


# --- the karte ------------------------------------------------------------------------------------

def karte_view(store: Store, code: str, access: Access, *, include_personal: bool = True,
               max_small: int = DEFAULT_SUPPRESS_MAX) -> dict:
    """The karte of district ``code`` as ``access`` may see it (a JSON-ready dict).

    It is the stored karte (``karte/1``: ``district``, ``base``, ``register``, ``cooperators``,
    ``services``, ``shelters``, ``emergency_sites``…) plus three keys:

    * ``gaps``: evacuation-support gaps, a list of ``{"key", "label", "count", "rate",
      "city_rate"}`` (first row ``key="persons"``: the support-needers on the register);
    * ``coverage``: salon coverage, ``{"salons", "elderly", "uncovered_elderly",
      "uncovered_elderly_share", "uncovered_75_plus", "uncovered_75_plus_share",
      "city_uncovered_elderly_share", "city_uncovered_75_plus_share"}`` (people rounded);
    * ``viewer``: ``{"user", "level", "level_ja", "personal", "max_small", "suppressed"}``
      (``personal``: whether a ``personal`` section is present; ``suppressed``: the marker).

    Public and anonymous users: every count of people from 1 to ``max_small`` is replaced by
    :data:`SUPPRESSED` (``"秘匿"``) and the rate or share beside it by ``None``; there is no
    ``personal`` key. Other users see the numbers and, when they may see the
    district's rows (:meth:`Access.may_see_district_rows`) and ``include_personal``, a ``personal`` key:
    ``{"register": [...], "cooperators": [...]}`` as :func:`karte.assemble.personal_section`
    builds it, from the rows :meth:`Access.filter_rows` leaves them (city staff: every row;
    coordinators and district members: consented rows). That read is written to the access log.

    Raises :class:`karte.domain.errors.NotFoundError` for an unknown district.
    """
    build = _build(store)
    if code not in build.kartes:
        raise NotFoundError(_unknown(code, build))
    karte = json.loads(build.kartes_json[code])
    karte["gaps"] = _gap_rows(build, code)
    karte["coverage"] = _coverage_summary(build, code)
    shows_personal = include_personal and access.may_see_district_rows(code)
    if access.level == Level.PUBLIC:
        _suppress_karte(karte, access, max_small)
    elif shows_personal:
        reg = _personal_rows(store, "register", access, code)
        coop = _personal_rows(store, "cooperators", access, code)
        karte["personal"] = personal_section(reg, coop, include_unconsented=True)
    karte["viewer"] = {"user": access.user, "level": str(access.level),
                       "level_ja": _level_ja(access), "personal": "personal" in karte,
                       "max_small": max_small, "suppressed": SUPPRESSED}
    return karte


def district_codes(store: Store) -> list[str]:
    """Every district code of the current build, sorted."""
    return sorted(_build(store).kartes)


def districts_table(store: Store, access: Access, *,
                    max_small: int = DEFAULT_SUPPRESS_MAX) -> pd.DataFrame:
    """The districts with their measures, without geometry (the ``districts`` layer's columns).

    Columns: ``district_code``, ``district_name``, ``standin``, ``small_areas``, ``area_km2``,
    ``population``, ``elderly``, ``elderly_rate`` (65+ / population), ``support_needers`` (on the
    register), ``at_risk`` (support-needers with at least one evacuation-support gap),
    ``gap_rate`` (at_risk / support_needers), ``salons`` (salons held at least monthly),
    ``uncovered_elderly`` (65+ outside every salon's walking catchment, rounded),
    ``uncovered_share`` (uncovered_elderly / elderly). Public users: counts from 1 to
    ``max_small`` are :data:`SUPPRESSED` and the rate beside them ``None``.
    """
    frame = layer_view(store, "districts", access, max_small=max_small)
    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


def district_list(store: Store, access: Access, *, max_small: int = DEFAULT_SUPPRESS_MAX) -> list[dict]:
    """The districts for the districts list (JSON): one dict per district, sorted by code, with
    ``code``, ``name``, ``standin``, ``area_km2``, ``population``, ``elderly_rate``,
    ``support_needers``, ``gap_rate``, ``salons``, ``uncovered_share`` (public: counts from 1 to
    ``max_small`` :data:`SUPPRESSED`, their rates ``None``)."""
    table = districts_table(store, access, max_small=max_small).sort_values("district_code")
    keep = ("area_km2", "population", "elderly_rate", "support_needers", "gap_rate", "salons",
            "uncovered_share")
    return [{"code": r["district_code"], "name": r["district_name"], "standin": bool(r["standin"]),
             **{k: _json_value(r[k]) for k in keep}}
            for r in table.to_dict(orient="records")]


# --- layers ---------------------------------------------------------------------------------------

def layer_view(store: Store, layer: str, access: Access, *, district: str | None = None,
               max_small: int = DEFAULT_SUPPRESS_MAX) -> gpd.GeoDataFrame:
    """The rows of web layer ``layer`` (a key of :data:`LAYERS`) that ``access`` may see, EPSG:6678.

    Parameters
    ----------
    store
        The karte store.
    layer
        ``districts``, ``small_areas``, ``coverage``, ``catchments``, ``shelters``,
        ``emergency_sites``, ``services``, ``cooperators`` or ``register``.
    access
        The user; ``access.route`` names the route in the access log.
    district
        Only the rows of this district: by ``district_code`` (shelters and emergency sites are
        located in the district polygons; catchments belong to their salon's district).
    max_small
        Public users see counts from 1 to this value as :data:`SUPPRESSED`.

    Returns
    -------
    GeoDataFrame
        One row per feature in the layer's own order, the key column first (``LAYERS[layer].key``,
        unique), geometry last. Every layer has ``district_code`` (``None`` where a point lies
        outside every district). Columns added for the web:

        * ``districts``: ``standin`` and the measures of :func:`districts_table`;
        * ``small_areas``: ``elderly_rate``;
        * ``coverage``: ``cells``, ``elderly``, ``uncovered_elderly``, ``uncovered_75_plus``,
          ``uncovered_elderly_share``, ``uncovered_75_plus_share`` (one row per district with
          uncovered elderly people; geometry: the uncovered parts of the mesh cells);
        * ``catchments``: ``name``, ``venue``, ``frequency``, ``radius_m`` (circle polygons);
        * ``register`` (authorised users only): the register columns plus the gap flags
          ``no_consent``, ``no_location``, ``no_supporter``, ``supporter_far``,
          ``supporter_overloaded``, ``no_plan``, ``no_shelter``, ``at_risk`` (booleans),
          ``gaps`` (how many), ``gap_kinds`` (the kinds joined by ``;``, "" when none; colour the
          map by it), ``supporter_m``, ``shelter_m`` (walking metres, whole, NaN when unknown);
        * ``cooperators`` (authorised users only): the cooperator columns plus ``assigned``
          (support-needers they are assigned to).

        Public users get count columns as ``object`` holding ints, ``None`` or :data:`SUPPRESSED`,
        and no rows at all of ``register`` and ``cooperators``.

    Raises
    ------
    NotFoundError
        Unknown layer or district.
    """
    if layer not in LAYERS:
        raise NotFoundError(f"レイヤ {layer} はありません（{', '.join(LAYERS)}）")
    build = _build(store)
    if district is not None and district not in build.kartes:
        raise NotFoundError(_unknown(district, build))
    if layer in PERSONAL:
        return _personal_layer(store, build, layer, access, district)
    frame = build.public_layer(layer)
    if district is not None:
        frame = frame[frame["district_code"] == district]
    frame = frame.reset_index(drop=True)
    if access.level == Level.PUBLIC:
        frame = _suppress_frame(frame, layer, access, max_small)
    return frame


def to_web_geojson(frame: gpd.GeoDataFrame, *, tolerance_m: float = 10.0, decimals: int = 6,
                   id_column: str | None = None) -> dict:
    """A GeoJSON FeatureCollection (EPSG:4326, lon/lat) of ``frame`` for the web.

    Geometries are simplified in metres first (``tolerance_m``, topology preserved; 0 keeps them
    as they are), then reprojected and their coordinates rounded to ``decimals`` places (6: about
    0.1 m). Properties keep every column except the geometry; missing values become ``null``,
    numpy numbers plain JSON numbers. ``id_column`` (default: none) gives each feature its ``id``.
    """
    out = frame
    if out.crs is None:
        raise KarteError("座標系のないレイヤは GeoJSON にできません")
    geom = out.geometry
    if tolerance_m > 0:
        geom = geom.simplify(tolerance_m, preserve_topology=True)
    geom = geom.to_crs(crs.WGS84).values
    invalid = ~shapely.is_valid(geom) & ~shapely.is_missing(geom)
    if invalid.any():
        geom = geom.copy()
        geom[invalid] = shapely.make_valid(geom[invalid])
    try:
        geom = shapely.set_precision(geom, 10.0 ** -decimals)
    except shapely.errors.GEOSException:
        # GEOS cannot snap some merged mesh pieces to the grid without a topology conflict:
        # round every coordinate instead (the shape may then touch itself; maps draw it alike)
        geom = shapely.set_precision(geom, 10.0 ** -decimals, mode="pointwise")
    props = pd.DataFrame(out.drop(columns=out.geometry.name))
    columns = {name: _json_column(props[name]) for name in props.columns}
    names = list(columns)
    rows = zip(*columns.values(), strict=True) if names else ([] for _ in range(len(props)))
    ids = columns.get(id_column) if id_column is not None else None
    features = []
    for i, (values, g) in enumerate(zip(rows, _geojson_geometries(geom), strict=True)):
        feature = {"type": "Feature", "geometry": g, "properties": dict(zip(names, values, strict=True))}
        if id_column is not None:
            feature["id"] = ids[i] if ids is not None else i
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def cached(store: Store, key: tuple, compute):
    """``compute()`` once per store build and ``key`` (kept with the build, dropped with it).

    For derived public data only (say a layer reprojected for OGC API): never cache personal
    rows, which must be read through the store on each request so its rules and log apply.
    """
    build = _build(store)
    with build._lock:
        if key in build.memo:
            return build.memo[key]
    value = compute()
    with build._lock:
        return build.memo.setdefault(key, value)


def sheet_context(store: Store):
    """The current build's :class:`karte.render.sheet_data.SheetContext` (every layer read once
    by the trusted store, and the citywide gap analysis), for
    ``district_sheet_pdf(store, code, ..., context=sheet_context(store))``. It holds personal
    rows: never serialise it; the sheet applies the access rules and writes the log."""
    return _build(store).ctx


def coverage(store: Store):
    """(salon coverage of every district, the city's shares) of the store's current build, as
    :func:`karte.render.sheet_analysis.analyse_city` gives them; computed once per build."""
    return _build(store).coverage()


def store_analysis(store: Store) -> None:
    """Compute the current build's shared inputs and salon coverage now (the app's warm-up)."""
    _build(store).coverage()


def clear_cache() -> None:
    """Forget every cached build (tests, benchmarks)."""
    with _LOCK:
        _CACHE.clear()
        _BUILT_AT.clear()


# --- personal rows --------------------------------------------------------------------------------

def _personal_rows(store: Store, layer: str, access: Access, district: str | None) -> pd.DataFrame:
    """Read personal rows through the store as ``access`` and log the read (counts only)."""
    if not access.sees_personal:
        return _empty(store, layer)
    with store_lock(store):
        rows = _retry(lambda: store.read(layer, district=district, access=access))
        rows = access.filter_rows(layer, rows).reset_index(drop=True)  # the store did; again is free
        if not _store_logs_reads(store):
            store.audit(actor=access.user, route=access.route, layer=layer,
                        district=district if district is not None else access.district, rows=len(rows))
    return rows


_IO_LOCKS: dict[str, threading.RLock] = {}
_IO_LOCKS_LOCK = threading.Lock()


def store_lock(store: Store):
    """A lock for the reads and writes of a GeoPackage store in this process (a no-op context
    for any other store).

    The access log is written into the GeoPackage itself (SQLite); GDAL reading the file while
    SQLite commits a log row can find its tables momentarily unreadable ("layer … is not
    registered in gpkg_contents"). Every read and log write of this module holds this lock; a
    route that writes to the log itself (the sheet PDF) should hold it too. PostGIS needs none.
    """
    import contextlib

    if getattr(store, "path", None) is None:
        return contextlib.nullcontext()
    with _IO_LOCKS_LOCK:  # not _LOCK: _build holds that one while it takes this
        return _IO_LOCKS.setdefault(store.location, threading.RLock())


def _retry(read, attempts: int = 4):
    """``read()``, tried again after a short pause when GDAL fails on a file another process is
    committing to (several server processes on one GeoPackage)."""
    import time

    from pyogrio.errors import DataLayerError, DataSourceError

    for attempt in range(attempts):
        try:
            return read()
        except (DataSourceError, DataLayerError, ValueError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _empty(store: Store, layer: str) -> gpd.GeoDataFrame:
    """The columns of a personal layer without any row, and without reading a row."""
    columns = _build(store).personal_columns.get(layer, [])
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns},
                            geometry=gpd.GeoSeries([], crs=crs.METRIC), crs=crs.METRIC)


def _personal_layer(store: Store, build: _Build, layer: str, access: Access,
                    district: str | None) -> gpd.GeoDataFrame:
    if not access.sees_personal:
        frame = _empty(store, layer)
    else:
        frame = _personal_rows(store, layer, access, district)
    if layer == "register":
        gaps = build.person_gaps
        extra = gaps.reindex(frame["person_id"].astype(str)).reset_index(drop=True)
        for col in extra.columns:
            frame[col] = extra[col].to_numpy() if len(frame) else pd.Series(dtype=object)
    else:
        frame["assigned"] = (frame["cooperator_id"].map(build.assigned).fillna(0).astype(int)
                             if len(frame) else pd.Series(dtype=int))
    geometry = frame.geometry.name
    return frame[[c for c in frame.columns if c != geometry] + [geometry]]


def _store_logs_reads(store: Store) -> bool:
    """The PostGIS store writes every read of personal rows to its own log in the database."""
    try:
        from karte.store.postgis import PostGISStore
    except ImportError:  # pragma: no cover - the PostGIS extras are installed with karte
        return False
    return isinstance(store, PostGISStore)


# --- suppression ----------------------------------------------------------------------------------

#: karte paths whose numbers are counts of people: (section, key) of dicts or lists of dicts.
_KARTE_COUNTS = {
    "register": ("total", "shareable", "with_supporter", "needs_care_level", "needs_disability",
                 "needs_medical_devices"),
    "cooperators": ("total", "evacuation_capacity"),
}
_KARTE_COUNT_LISTS = (("register", "by_consent"), ("register", "by_plan"), ("cooperators", "by_role"),
                      ("cooperators", "by_help"))


def _suppress_karte(karte: dict, access: Access, max_small: int) -> None:
    def s(v):
        return suppress(v, access=access, max_small=max_small)

    for item in karte["base"]:
        if item.get("unit") not in ("人", "世帯"):
            continue
        item["value"] = s(item["value"])
        item["city"] = s(item["city"])
        if item["value"] == SUPPRESSED:
            for key in ("rate", "share_of_city"):
                if key in item:
                    item[key] = None
    for section, keys in _KARTE_COUNTS.items():
        for key in keys:
            if key in karte.get(section, {}):
                karte[section][key] = s(karte[section][key])
    for section, key in _KARTE_COUNT_LISTS:
        for item in karte.get(section, {}).get(key, []):
            item["count"] = s(item["count"])
    for row in karte["gaps"]:
        row["count"] = s(row["count"])
        if row["count"] == SUPPRESSED:
            row["rate"] = None
    cov = karte["coverage"]
    for count, share in (("uncovered_elderly", "uncovered_elderly_share"),
                         ("uncovered_75_plus", "uncovered_75_plus_share"), ("elderly", None)):
        cov[count] = s(cov[count])
        if share and cov[count] == SUPPRESSED:
            cov[share] = None


def _suppress_frame(frame: gpd.GeoDataFrame, layer: str, access: Access,
                    max_small: int) -> gpd.GeoDataFrame:
    """Counts of people from 1 to ``max_small`` as :data:`SUPPRESSED`, and the rates beside them
    ``None``. Counts: every numeric (not boolean) column but the rates (``*_rate``, ``*_share``,
    ``*share``) and :data:`NOT_COUNTS`."""
    rates = [c for c in frame.columns if _is_rate(c)]
    columns = [c for c in frame.columns
               if c not in NOT_COUNTS and c not in rates and c != frame.geometry.name
               and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if not columns:
        return frame
    out = frame.copy()
    for col in columns:
        values = [None if _missing(v) else suppress(round(float(v)), access=access, max_small=max_small)
                  for v in out[col]]
        out[col] = pd.Series(values, index=out.index, dtype=object)
    for rate in rates:
        count = RATE_OF.get(rate)
        if count is None:
            raise KarteError(f"rate column {rate} of layer {layer} names no count (views.RATE_OF)")
        if count in out.columns:
            out[rate] = out[rate].astype(object).where(out[count] != SUPPRESSED, None)
    return out


def _is_rate(column: str) -> bool:
    return column.endswith(("_rate", "share"))


# --- one build's shared inputs (cached) -----------------------------------------------------------

class _Build:
    """The shared inputs of one store build, computed once and kept (see the module docstring)."""

    def __init__(self, store: Store):
        from karte.render.sheet_data import load_context

        self.ctx = load_context(store)
        self.kartes = self.ctx.kartes
        self.kartes_json = {code: json.dumps(k, ensure_ascii=False) for code, k in self.kartes.items()}
        self.emergency_sites = store.read(Layer.EMERGENCY_SITES)
        self.personal_columns = {"register": list(self.ctx.register.columns),
                                 "cooperators": list(self.ctx.cooperators.columns)}
        gaps = self.ctx.person_gaps
        from gis.gaps import GAP_KINDS

        kinds = [k for k in GAP_KINDS if k in gaps.columns]
        table = pd.DataFrame(gaps[["supporter_m", "shelter_m", *kinds, "gaps", "at_risk"]])
        table[["supporter_m", "shelter_m"]] = table[["supporter_m", "shelter_m"]].round(0)
        table["gap_kinds"] = [";".join(k for k, on in zip(kinds, row, strict=True) if on)
                              for row in gaps[kinds].to_numpy(dtype=bool)]
        table.index = gaps["person_id"].astype(str)
        self.person_gaps = table
        self.assigned = self.ctx.load["load"] if "load" in self.ctx.load.columns else pd.Series(dtype=int)
        self._coverage = None
        self._layers: dict[str, gpd.GeoDataFrame] = {}
        self.memo: dict[tuple, object] = {}
        self._lock = threading.RLock()

    # coverage -------------------------------------------------------------------------------

    def coverage(self):
        """(coverage per district, the city's shares): salon coverage of every district."""
        with self._lock:
            if self._coverage is None:
                from karte.render.sheet_analysis import analyse_city

                self._coverage = analyse_city(self.ctx)
            return self._coverage

    # public layers --------------------------------------------------------------------------

    def public_layer(self, layer: str) -> gpd.GeoDataFrame:
        with self._lock:
            if layer not in self._layers:
                self._layers[layer] = getattr(self, f"_make_{layer}")()
            return self._layers[layer]

    def _make_districts(self) -> gpd.GeoDataFrame:
        d = self.ctx.districts
        coverages, _ = self.coverage()
        gaps = self.ctx.district_gaps
        small = self.ctx.small_areas
        elderly = (pd.to_numeric(small["age_65_74"], errors="coerce")
                   + pd.to_numeric(small["age_75_plus"], errors="coerce"))
        by_district = pd.DataFrame({"district_code": small["district_code"], "elderly": elderly,
                                    "population": pd.to_numeric(small["population"], errors="coerce")}
                                   ).groupby("district_code").sum(min_count=1)
        salons = self.ctx.salons["district_code"].value_counts()
        rows = []
        for r in d.itertuples():
            code = r.district_code
            cov = coverages.get(code)
            pop = by_district["population"].get(code)
            eld = by_district["elderly"].get(code)
            persons = int(gaps.loc[code, "persons"]) if code in gaps.index else 0
            at_risk = int(gaps.loc[code, "at_risk"]) if code in gaps.index else 0
            uncovered = round(cov.uncovered_elderly) if cov else None
            rows.append({
                "district_code": code, "district_name": r.district_name,
                "standin": str(r.district_name).startswith("（仮）"),
                "small_areas": int(r.small_areas) if not _missing(r.small_areas) else None,
                "area_km2": round(r.geometry.area / 1e6, 2),
                "population": _int(pop), "elderly": _int(eld),
                "elderly_rate": _ratio(eld, pop),
                "support_needers": persons, "at_risk": at_risk,
                "gap_rate": _ratio(at_risk, persons),
                "salons": int(salons.get(code, 0)),
                "uncovered_elderly": uncovered,
                "uncovered_share": (_ratio(cov.uncovered_elderly, cov.elderly) if cov else None),
            })
        return gpd.GeoDataFrame(rows, geometry=list(d.geometry), crs=d.crs)

    def _make_small_areas(self) -> gpd.GeoDataFrame:
        s = self.ctx.small_areas
        keep = ["key_code", "name", "district_code", *SMALL_AREA_COUNTS, "concealed"]
        out = s[[c for c in keep if c in s.columns]].copy()
        pop = pd.to_numeric(s["population"], errors="coerce")
        eld = (pd.to_numeric(s["age_65_74"], errors="coerce")
               + pd.to_numeric(s["age_75_plus"], errors="coerce"))
        out["elderly_rate"] = [_ratio(e, p) for e, p in zip(eld, pop, strict=True)]
        out["elderly"] = eld.round().astype("Int64")
        return gpd.GeoDataFrame(out, geometry=s.geometry.values, crs=s.crs)

    def _make_shelters(self) -> gpd.GeoDataFrame:
        return self._located(self.ctx.shelters, "shelter_id")

    def _make_emergency_sites(self) -> gpd.GeoDataFrame:
        return self._located(self.emergency_sites, "site_id")

    def _make_services(self) -> gpd.GeoDataFrame:
        return _geometry_last(self.ctx.services.copy())

    def _make_catchments(self) -> gpd.GeoDataFrame:
        from karte.render.sheet_analysis import catchment_radius

        salons = self.ctx.salons
        radius = catchment_radius(self.ctx.params)
        salons = salons[salons.geometry.notna() & ~salons.geometry.is_empty]
        frame = pd.DataFrame({"service_id": salons["service_id"].to_numpy(),
                              "name": salons["name"].to_numpy(), "venue": salons["venue"].to_numpy(),
                              "frequency": salons["frequency"].to_numpy(),
                              "district_code": salons["district_code"].to_numpy(),
                              "radius_m": round(radius, 1)})
        return gpd.GeoDataFrame(frame, geometry=salons.geometry.buffer(radius, 32).to_numpy(),
                                crs=salons.crs)

    def _make_coverage(self) -> gpd.GeoDataFrame:
        coverages, _ = self.coverage()
        rows, geoms = [], []
        for code in sorted(coverages):
            cov = coverages[code]
            if cov.area is None or shapely.is_empty(cov.area):
                continue
            rows.append({"district_code": code, "cells": cov.cells, "elderly": round(cov.elderly),
                         "uncovered_elderly": round(cov.uncovered_elderly),
                         "uncovered_75_plus": round(cov.uncovered_75_plus),
                         "uncovered_elderly_share": _ratio(cov.uncovered_elderly, cov.elderly),
                         "uncovered_75_plus_share": _ratio(cov.uncovered_75_plus, cov.age_75_plus)})
            geoms.append(cov.area)
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs.METRIC) if rows else gpd.GeoDataFrame(
            {c: [] for c in ("district_code", "cells", "elderly", "uncovered_elderly",
                             "uncovered_75_plus", "uncovered_elderly_share", "uncovered_75_plus_share")},
            geometry=gpd.GeoSeries([], crs=crs.METRIC), crs=crs.METRIC)

    def _located(self, points: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
        from gis.overlay import locate_points

        out = points.copy()
        out["district_code"] = locate_points(points, self.ctx.districts, "district_code").to_numpy()
        cols = [key] + [c for c in out.columns if c not in (key, out.geometry.name)]
        return _geometry_last(out[[*cols, out.geometry.name]])


_CACHE: dict[tuple, _Build] = {}
_LOCK = threading.Lock()


def _build(store: Store) -> _Build:
    """The cached inputs of the store's current build (computed on first use)."""
    if not store.exists():
        from karte.domain.errors import StoreError

        raise StoreError("ストアが空です。karte demo か karte build を先に実行してください")
    key = (store.location, _built_at(store))
    with _LOCK:
        build = _CACHE.get(key)
        if build is None:
            with store_lock(store):
                build = _Build(store)
            for old in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[old]
            _CACHE[key] = build
        return build


_BUILT_AT: dict[str, tuple] = {}
#: How long a store's build stamp is trusted before it is read again, seconds.
_STAMP_SECONDS = 2.0


def _built_at(store: Store) -> str | None:
    """``meta.built_at`` of the store, read again only when the store may have changed.

    Reading ``meta`` costs about 50 ms in a GeoPackage (opening it with GDAL), too much for every
    request. A GeoPackage whose file was replaced (every layer write replaces it: a new inode) is
    read again at once; one changed in place (the access log is appended in place, by every
    personal read) at most every ``_STAMP_SECONDS``, like any other store.
    """
    import os
    import time

    now = time.monotonic()
    path = getattr(store, "path", None)
    inode = os.stat(path).st_ino if path is not None else None
    seen = _BUILT_AT.get(store.location)
    if seen is not None and seen[0] == inode and now - seen[1] < _STAMP_SECONDS:
        return seen[2]
    with store_lock(store):
        built_at = _retry(store.meta).get("built_at")
    _BUILT_AT[store.location] = (inode, now, built_at)
    return built_at


def _gap_rows(build: _Build, code: str) -> list[dict]:
    from karte.render.sheet_data import GAP_LABELS

    gaps = build.ctx.district_gaps
    row = gaps.loc[code] if code in gaps.index else None
    city = gaps.loc["city"] if "city" in gaps.index else None
    persons = int(row["persons"]) if row is not None else 0
    out = [{"key": "persons", "label": "要支援者（名簿登録）", "count": persons, "rate": None,
            "city_rate": None}]
    for kind, label in GAP_LABELS:
        if kind not in gaps.columns:
            continue
        out.append({
            "key": kind, "label": label.format(supporter_m=build.ctx.params.supporter_max_m),
            "count": int(row[kind]) if row is not None else 0,
            "rate": _num(row[f"rate_{kind}"]) if row is not None else None,
            "city_rate": _num(city[f"rate_{kind}"]) if city is not None else None,
        })
    return out


def _coverage_summary(build: _Build, code: str) -> dict:
    coverages, city = build.coverage()
    cov = coverages.get(code)
    salons = int((build.ctx.salons["district_code"] == code).sum())
    return {
        "salons": salons,
        "elderly": round(cov.elderly) if cov else None,
        "uncovered_elderly": round(cov.uncovered_elderly) if cov else None,
        "uncovered_elderly_share": _ratio(cov.uncovered_elderly, cov.elderly) if cov else None,
        "uncovered_75_plus": round(cov.uncovered_75_plus) if cov else None,
        "uncovered_75_plus_share": _ratio(cov.uncovered_75_plus, cov.age_75_plus) if cov else None,
        "city_uncovered_elderly_share": _num(city.get("uncovered_elderly_share")),
        "city_uncovered_75_plus_share": _num(city.get("uncovered_75_plus_share")),
    }


# --- small helpers --------------------------------------------------------------------------------

def _unknown(code: str, build: _Build) -> str:
    return f"地区 {code} はありません (例: {', '.join(sorted(build.kartes)[:5])} …)"


def _level_ja(access: Access) -> str:
    from karte.domain.access import LEVEL_JA

    return LEVEL_JA[access.level]


def _geometry_last(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    g = frame.geometry.name
    return frame[[c for c in frame.columns if c != g] + [g]]


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _int(v):
    return None if _missing(v) else round(float(v))


def _num(v):
    return None if _missing(v) else float(v)


def _ratio(a, b):
    if _missing(a) or _missing(b) or not b:
        return None
    return round(float(a) / float(b), 4)


def _json_value(v):
    if _missing(v):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _json_column(series: pd.Series) -> list:
    """A column as plain JSON values (None for missing; Python numbers, not numpy's)."""
    values = series.astype(object).where(series.notna(), None).tolist()
    if series.dtype == object:
        return [_json_value(v) for v in values]
    return values


def _geojson_geometries(geoms) -> list:
    """GeoJSON geometry dicts of a shapely array (points built directly: the common, big case)."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kinds = shapely.get_type_id(geoms)
    if (kinds[~missing] == 0).all():  # points only
        xs, ys = shapely.get_x(geoms).tolist(), shapely.get_y(geoms).tolist()
        return [None if m else {"type": "Point", "coordinates": [x, y]}
                for m, x, y in zip(missing.tolist(), xs, ys, strict=True)]
    texts = shapely.to_geojson(geoms)
    return [None if m else json.loads(s) for m, s in zip(missing.tolist(), texts, strict=True)]
