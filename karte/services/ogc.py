"""OGC API - Features of the public layers: catalogue, CRS, queryables, CQL2 filters, sorting, paging.

What a viewer gets is :func:`karte.services.layers.layer_view`'s answer, as everywhere: public
layers only (personal layers are not collections), and for the public every count of people from
1 to ``KARTE_SUPPRESS_MAX`` is 「秘匿」; a column holding one is text in every feature ("12",
"秘匿") so GDAL and QGIS never read a hidden count as 0.

Encoded once per build (:meth:`karte.snapshot.Snapshot.memo`, the one cache): for each
collection and audience, the geometries cleaned to the collection's declared type (valid,
exterior rings counter-clockwise, no empty part: ``MultiPolygon`` or ``Point``), every
property value as JSON, an STR-tree over the CRS84 geometries; for each CRS asked for, each
feature's GeoJSON head (id and geometry, in that CRS's axis order, rounded). An items request
then selects indices (bbox through the tree, properties and CQL2 through numpy, see
:mod:`karte.services.ogc_filter`), sorts and pages them, and joins the encoded bytes: no
frame, no geometry and no JSON encoder on the request path.

Coordinate systems (Part 2): CRS84 (default), EPSG:4326 and JGD2011 geographic (EPSG:6668),
both latitude first, and the JGD2011 plane rectangular zones I–XIX (EPSG:6669–6687, northing
first, metres; zone X, EPSG:6678, is Aomori's and the storage CRS). Answers carry
``Content-Crs``; an unknown CRS is a 400 in Japanese and English. Coordinates: 6 decimals in
degrees (about 0.1 m), 3 in metres.

Links are built from ``base``, the absolute URL of the OGC landing page that the route computes
once (``request.url_for``); nothing here reads a request.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import numpy as np
import shapely
from pyproj import Transformer

from gis import crs as gcrs
from gis.geometry import polygonal
from karte.domain.access import DEFAULT_SUPPRESS_MAX, SUPPRESSED, Access
from karte.domain.errors import InputError, NotFoundError
from karte.services import ogc_filter
from karte.services.layers import FEATURE_KEYS, json_value, layer_view
from karte.snapshot import current

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
MAX_OFFSET = 10_000_000

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
)

# --- coordinate reference systems -----------------------------------------------------------------

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
_ZONES = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV",
          "XVI", "XVII", "XVIII", "XIX")


@dataclass(frozen=True)
class CrsDef:
    """A coordinate reference system the API answers in: its OGC URI, the pyproj code, a Japanese
    title, whether its first axis is north (latitude, or the plane zones' X), and the decimals
    of coordinates written in it."""

    uri: str
    code: str
    title: str
    north_first: bool
    decimals: int

    @property
    def geographic(self) -> bool:
        return self.decimals > 3


#: Every CRS of the ``crs``, ``bbox-crs`` and ``filter-crs`` parameters, CRS84 first.
SUPPORTED_CRS: dict[str, CrsDef] = {c.uri: c for c in (
    CrsDef(CRS84, "OGC:CRS84", "WGS 84 経緯度（経度, 緯度の順）", False, 6),
    CrsDef(EPSG_URI + "4326", "EPSG:4326", "WGS 84 緯度経度（緯度, 経度の順）", True, 6),
    CrsDef(EPSG_URI + "6668", "EPSG:6668", "JGD2011 緯度経度（緯度, 経度の順）", True, 6),
    *(CrsDef(f"{EPSG_URI}{6669 + i}", f"EPSG:{6669 + i}",
             f"JGD2011 平面直角座標系 第{zone}系（X 北, Y 東の順, m）", True, 3)
      for i, zone in enumerate(_ZONES)),
)}
#: The CRS the layers are kept in (JGD2011 plane rectangular zone X, Aomori's).
STORAGE_CRS = EPSG_URI + "6678"
assert SUPPORTED_CRS[STORAGE_CRS].code == gcrs.METRIC


def crs_def(uri: str, parameter: str = "crs") -> CrsDef:
    """The supported CRS named by ``uri``; :class:`InputError` (400) in Japanese and English for
    any other."""
    found = SUPPORTED_CRS.get(uri)
    if found is None:
        raise InputError(f"{parameter} の座標参照系 {uri[:120]!r} には対応していません / unsupported CRS "
                         f"in {parameter}: use {CRS84}, {EPSG_URI}4326, 6668 or 6669-6687")
    return found


_TRANSFORMERS = threading.local()


def _transformer(src: str, dst: str) -> Transformer:
    """pyproj transformer (x = east, y = north), one per thread (a Transformer is not shared)."""
    table = getattr(_TRANSFORMERS, "table", None)
    if table is None:
        table = _TRANSFORMERS.table = {}
    key = (src, dst)
    if key not in table:
        table[key] = Transformer.from_crs(src, dst, always_xy=True)
    return table[key]


def reproject(geoms, src: str, dst: str):
    if src == dst:
        return geoms
    tr = _transformer(src, dst)
    return shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def _east_north(geom, crs: CrsDef):
    """A geometry written in ``crs``'s axis order, as x = east, y = north."""
    return shapely.transform(geom, lambda c: c[:, ::-1]) if crs.north_first else geom




# --- the collections ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prop:
    """A property of a collection: name, JSON type (``string``, ``integer``, ``number``,
    ``boolean``) and its Japanese title."""

    name: str
    type: str
    title: str


@dataclass(frozen=True)
class CollectionSpec:
    """An OGC collection: a public web layer with its declared geometry type and properties."""

    id: str
    title: str
    description: str
    geometry: str  # "MultiPolygon" or "Point"
    properties: tuple[Prop, ...]

    @property
    def key(self) -> str:
        return FEATURE_KEYS[self.id]

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.properties if p.name == name), None)


def _s(name, title):
    return Prop(name, "string", title)


def _i(name, title):
    return Prop(name, "integer", title)


def _n(name, title):
    return Prop(name, "number", title)


def _b(name, title):
    return Prop(name, "boolean", title)


_DISTRICT = _s("district_code", "地区コード")
_MUNICIPALITY = _s("municipality_code", "市区町村コード")
HAZARDS = (("flood", "洪水"), ("landslide", "崖崩れ・土石流・地滑り"), ("storm_surge", "高潮"),
           ("earthquake", "地震"), ("tsunami", "津波"), ("fire", "大規模な火事"),
           ("inland_flood", "内水氾濫"), ("volcano", "火山現象"))

#: Every collection, in the order of the catalogue. Their properties are what
#: :func:`karte.services.layers.layer_view` answers (``tests/test_ogc_service.py`` checks it).
COLLECTIONS: dict[str, CollectionSpec] = {c.id: c for c in (
    CollectionSpec("districts", "地区", "地区社協の区域（仮の地区を含む）と主な指標", "MultiPolygon", (
        _DISTRICT, _s("district_name", "地区名"), _b("standin", "仮の地区"), _i("small_areas", "小地域の数"),
        _n("area_km2", "面積（km²）"), _i("population", "人口"), _i("elderly", "高齢者（65歳以上）"),
        _n("elderly_rate", "高齢化率"), _i("support_needers", "要支援者"),
        _i("at_risk", "避難支援に空白のある要支援者"), _n("gap_rate", "避難支援の空白の割合"),
        _i("salons", "サロンの数"), _i("uncovered_elderly", "サロン徒歩圏外の高齢者"),
        _n("uncovered_share", "サロン徒歩圏外の高齢者の割合"))),
    CollectionSpec("small_areas", "小地域（町丁・字）",
                   "2015年国勢調査の小地域と人口・年齢構成（公開時は少人数を秘匿）", "MultiPolygon", (
        _s("key_code", "小地域コード"), _s("name", "町丁・字"), _DISTRICT, _i("population", "人口"),
        _i("households", "世帯"), _i("age_0_14", "0〜14歳"), _i("age_15_64", "15〜64歳"),
        _i("age_65_74", "65〜74歳"), _i("age_75_plus", "75歳以上"), _i("elderly_alone", "一人暮らし高齢者"),
        _i("disabled", "障がい者"), _b("concealed", "国勢調査で秘匿された地域"),
        _n("elderly_rate", "高齢化率"), _i("elderly", "高齢者（65歳以上）"))),
    CollectionSpec("shelters", "指定避難所", "国土地理院の指定避難所（福祉避難所を含む）", "Point", (
        _s("shelter_id", "避難所ID"), _MUNICIPALITY, _s("name", "名称"), _s("address", "住所"),
        _b("welfare", "福祉避難所"), _s("accepts", "受け入れ対象"), _s("note", "備考"), _DISTRICT)),
    CollectionSpec("emergency_sites", "指定緊急避難場所", "国土地理院の指定緊急避難場所と災害種別", "Point", (
        _s("site_id", "避難場所ID"), _MUNICIPALITY, _s("name", "名称"), _s("address", "住所"),
        *(_b(f"hazard_{key}", f"対応する災害: {ja}") for key, ja in HAZARDS), _s("note", "備考"), _DISTRICT)),
    CollectionSpec("services", "共助サービス", "サロン・見守り・生活支援などの共助サービス", "Point", (
        _s("service_id", "サービスID"), _MUNICIPALITY, _s("kind", "種類"), _s("name", "名称"),
        _s("operator", "運営"), _s("venue", "会場"), _s("frequency", "頻度"), _s("schedule", "日程"),
        _s("contact", "連絡先（公開されている窓口）"), _s("target", "対象"), _DISTRICT)),
    CollectionSpec("coverage", "サロン徒歩圏外",
                   "月1回以上のサロンの徒歩圏から外れる高齢者のいる区域（地区ごと）", "MultiPolygon", (
        _DISTRICT, _i("cells", "メッシュの数"), _i("elderly", "高齢者（65歳以上）"),
        _i("uncovered_elderly", "徒歩圏外の高齢者"), _i("uncovered_75_plus", "徒歩圏外の75歳以上"),
        _n("uncovered_elderly_share", "徒歩圏外の高齢者の割合"),
        _n("uncovered_75_plus_share", "徒歩圏外の75歳以上の割合"))),
    CollectionSpec("catchments", "サロンの徒歩圏", "月1回以上のサロンの徒歩圏（直線半径）", "MultiPolygon", (
        _s("service_id", "サービスID"), _s("name", "名称"), _s("venue", "会場"), _s("frequency", "頻度"),
        _DISTRICT, _n("radius_m", "半径（m）"))),
)}


def spec_of(collection: str) -> CollectionSpec:
    """The collection ``collection``; :class:`NotFoundError` (404) for any other name."""
    spec = COLLECTIONS.get(collection)
    if spec is None:
        raise NotFoundError(f"コレクション {collection[:64]} はありません / no collection {collection[:64]} "
                            f"（{', '.join(COLLECTIONS)}）")
    return spec


# --- one collection of one build, as one audience sees it ------------------------------------

@dataclass
class Built:
    """A collection encoded once per build and audience (see the module docstring)."""

    spec: CollectionSpec
    max_small: int
    ids: list[str]
    index: dict[str, int]
    names: list[str]                    # properties in the order served
    types: dict[str, str]               # JSON type of each property as served
    hidden: frozenset[str]              # count columns shown as text (some value is 「秘匿」)
    table: ogc_filter.Table
    value_json: dict[str, list[bytes]]  # per property: each feature's value as JSON
    props_json: list[bytes]             # each feature's whole properties object
    storage: np.ndarray                 # clean geometries, EPSG:6678
    wgs: np.ndarray                     # the same in CRS84, unrounded (spatial predicates)
    tree: shapely.STRtree
    extent: list[float]
    _sort: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n(self) -> int:
        return len(self.ids)

    def sort_key(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(missing, key) arrays of property ``name`` for sorting: a hidden count sorts as the
        middle of its range (1..max_small), so the order never tells one hidden value from another."""
        with self._lock:
            if name not in self._sort:
                col = self.table.columns[name]
                if col.kind == "string":
                    text = [s if s is not None else "" for s in col.text]
                    _, key = np.unique(np.array(text, dtype=object), return_inverse=True)
                    key = key.astype(float)
                    missing = col.null.copy()
                elif col.kind == "boolean":
                    key, missing = col.flag.astype(float), col.null.copy()
                else:
                    key = col.num.copy()
                    if col.hidden is not None:
                        key[col.hidden] = (1 + self.max_small) / 2
                    missing = np.isnan(key)
                    key[missing] = 0.0
                self._sort[name] = (missing, key)
            return self._sort[name]


def audience(access: Access, max_small: int) -> tuple:
    """The memo key of what ``access`` sees of the public layers: :func:`layer_view` decides by
    the viewer (level, municipality, district), so the key holds all of them."""
    return (str(access.level), access.municipality, access.district, int(max_small))


def collection_data(store, collection: str, access: Access, *,
                    max_small: int = DEFAULT_SUPPRESS_MAX) -> Built:
    """Collection ``collection`` of the store's current build as ``access`` sees it (encoded once
    per build and audience, in the snapshot's memo)."""
    return snapshot_data(current(store), store, collection, access, max_small)


def snapshot_data(snap, store, collection: str, access: Access, max_small: int) -> Built:
    """:func:`collection_data` of the snapshot ``snap`` (a request asks for it once)."""
    spec = spec_of(collection)
    return snap.memo(("ogc", spec.id, audience(access, max_small)), lambda: build_collection(
        spec, layer_view(store, spec.id, access, max_small=max_small), max_small))


def build_collection(spec: CollectionSpec, frame, max_small: int) -> Built:
    """Encode ``frame`` (a layer as :func:`layer_view` gives it, already suppressed for the
    public) as collection ``spec``: the values, their JSON, the clean geometries, the trees."""
    geometry = frame.geometry.name
    names = [c for c in frame.columns if c != geometry]
    ids = [str(v) for v in frame[spec.key]]
    columns, value_json, types, hidden = {}, {}, {}, set()
    for name in names:
        values = [json_value(v) for v in frame[name].tolist()]
        declared = spec.prop(name)
        kind = declared.type if declared else _infer(values)
        if kind == "integer":  # a count in a float column (it has a gap) is still a whole number
            values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
        if any(v == SUPPRESSED for v in values):
            hidden.add(name)
            values = [None if v is None else str(v) for v in values]
        columns[name] = _column(name, kind, values)
        types[name] = "string" if name in hidden else kind
        value_json[name] = [json.dumps(v, ensure_ascii=False).encode() for v in values]
    keys = {name: json.dumps(name).encode() + b":" for name in names}
    props = [b"{" + b",".join(keys[name] + value_json[name][i] for name in names) + b"}"
             for i in range(len(ids))]
    storage = clean(frame.geometry.values, spec.geometry)
    wgs = reproject(storage, gcrs.METRIC, "OGC:CRS84")
    present = wgs[~shapely.is_missing(wgs)]
    extent = ([round(v, 6) for v in shapely.total_bounds(present)] if len(present)
              else [-180.0, -90.0, 180.0, 90.0])
    table = ogc_filter.Table(n=len(ids), columns=columns, geometry=wgs)
    return Built(spec=spec, max_small=max_small, ids=ids, index={k: i for i, k in enumerate(ids)},
                 names=names, types=types, hidden=frozenset(hidden), table=table, value_json=value_json,
                 props_json=props, storage=storage, wgs=wgs, tree=shapely.STRtree(wgs), extent=extent)


def _infer(values) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "integer"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "number"
    return "string"


def _column(name: str, kind: str, values: list) -> ogc_filter.Column:
    null = np.array([v is None for v in values], dtype=bool)
    if kind == "string":
        return ogc_filter.Column(name, kind, null, text=np.array(values, dtype=object))
    if kind == "boolean":
        return ogc_filter.Column(name, kind, null, flag=np.array([bool(v) for v in values], dtype=bool))
    # a number compares with a number, and with text as it is shown ("12", or "秘匿" when hidden):
    # so `population = '秘匿'` means the same to every viewer and in every build
    num = np.array([_number(v) for v in values], dtype=float)
    text = np.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                    dtype=object)
    shown = np.array([v == SUPPRESSED for v in values], dtype=bool)
    return ogc_filter.Column(name, kind, null, num=num, text=text, hidden=shown)


def _number(v) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except ValueError:
        return math.nan


# --- geometries -------------------------------------------------------------------------------

def clean(geoms, declared: str) -> np.ndarray:
    """Geometries as a collection of type ``declared`` holds them: valid, ``MultiPolygon`` (a
    polygon promoted, what overlay left as a collection reduced to its polygons, exterior rings
    counter-clockwise as RFC 7946 asks) or ``Point``; None where nothing of that type is left."""
    out = np.array(geoms, dtype=object)
    present = ~shapely.is_missing(out)
    bad = present & ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    if declared == "MultiPolygon":
        out = polygonal(out)
        out = np.array([_multi(g) for g in out], dtype=object)
        present = ~shapely.is_missing(out)
        out[present] = shapely.orient_polygons(out[present])
    elif declared == "Point":
        out = np.array([_point(g) for g in out], dtype=object)
    else:  # pragma: no cover - a registry entry with another type
        raise ValueError(declared)
    empty = ~shapely.is_missing(out) & shapely.is_empty(out)
    out[empty] = None
    return out


def _multi(geom):
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    parts = [p for p in shapely.get_parts(geom) if not p.is_empty]
    return shapely.MultiPolygon(parts) if parts else None


def _point(geom):
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type == "Point":
        return geom
    return geom.centroid if geom.geom_type != "MultiPoint" else shapely.get_parts(geom)[0]


def geometries_in(snap, built: Built, crs: CrsDef, access: Access, max_small: int):
    """(geometries, STR-tree) of the collection in ``crs``, x = east, y = north, unrounded: what
    a box or a filter written in that CRS is compared with (once per build, audience and CRS)."""
    if crs.uri == CRS84:
        return built.wgs, built.tree

    def compute():
        geoms = reproject(built.storage, gcrs.METRIC, crs.code)
        return geoms, shapely.STRtree(geoms)

    return snap.memo(("ogc-geoms", built.spec.id, audience(access, max_small), crs.uri), compute)


def encoded_geometries(built: Built, crs: CrsDef) -> list[bytes]:
    """Each feature's geometry as GeoJSON in ``crs`` (its axis order, rounded), clean as
    :func:`clean` makes it; ``null`` for a feature without one."""
    geoms = reproject(built.storage, gcrs.METRIC, crs.code)
    grid = 10.0 ** -crs.decimals
    if built.spec.geometry == "MultiPolygon":
        geoms = _snap_polygons(geoms, grid)
    else:
        present = ~shapely.is_missing(geoms)
        geoms = geoms.copy()
        geoms[present] = shapely.set_precision(geoms[present], grid)
    present = ~shapely.is_missing(geoms)
    geoms[present] = shapely.transform(geoms[present], lambda c: np.round(c, crs.decimals))
    if crs.north_first:  # oriented as x = east, y = north first: a client swapping back sees RFC 7946
        geoms[present] = shapely.transform(geoms[present], lambda c: c[:, ::-1])
    text = shapely.to_geojson(geoms)
    return [b"null" if t is None else t.encode() for t in text]


def _snap_polygons(geoms: np.ndarray, grid: float) -> np.ndarray:
    out = np.array(geoms, dtype=object)
    present = ~shapely.is_missing(out)
    bad = present & ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    try:
        out[present] = shapely.set_precision(out[present], grid)
    except shapely.errors.GEOSException:
        for i in np.flatnonzero(present):
            out[i] = _snap_one(out[i], grid)
    return clean(out, "MultiPolygon")


def _snap_one(geom, grid: float):
    try:
        return shapely.set_precision(geom, grid)
    except shapely.errors.GEOSException:
        return shapely.make_valid(shapely.set_precision(geom, grid, mode="pointwise"))


def feature_heads(snap, built: Built, crs: CrsDef, access: Access, max_small: int) -> list[bytes]:
    """``{"type":"Feature","id":…,"geometry":…`` of each feature in ``crs``: once per build,
    audience and CRS (at most :data:`SUPPORTED_CRS` of them)."""
    def compute():
        geometries = encoded_geometries(built, crs)
        return [b'{"type":"Feature","id":' + json.dumps(i, ensure_ascii=False).encode() + b',"geometry":' + g
                for i, g in zip(built.ids, geometries, strict=True)]

    return snap.memo(("ogc-heads", built.spec.id, audience(access, max_small), crs.uri), compute)


# --- answers --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """An answer ready to send: body bytes, media type, extra headers."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _check_only(params: Sequence[tuple[str, str]], allowed: set[str]) -> dict[str, str]:
    """The parameters as a dict: each at most once, none outside ``allowed``, ``f`` json."""
    out: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            raise InputError(f"パラメータ {name[:64]} はありません / unknown parameter {name[:64]}")
        if name in out:
            raise InputError(f"パラメータ {name} が 2 回あります / parameter {name} given twice")
        out[name] = value
    if out.get("f", "json") not in ("json", "geojson"):
        raise InputError("f は json か geojson です / f must be json or geojson")
    return out


def landing(base: str, docs: str, params: Sequence[tuple[str, str]] = ()) -> Answer:
    """The landing page (``/ogc``)."""
    _check_only(params, {"f"})
    return Answer(dumps({
        "title": "地区カルテ OGC API - Features",
        "description": "青森市の地区カルテのレイヤ（地区、小地域、避難所、共助サービス、サロンの徒歩圏）",
        "links": [
            {"href": base, "rel": "self", "type": JSON, "title": "this document"},
            {"href": f"{base}/api", "rel": "service-desc", "type": OPENAPI, "title": "OpenAPI definition"},
            {"href": docs, "rel": "service-doc", "type": "text/html", "title": "API documentation"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": JSON,
             "title": "conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": JSON, "title": "collections"},
        ],
    }), JSON)


def conformance(params: Sequence[tuple[str, str]] = ()) -> Answer:
    """``/ogc/conformance``: exactly the classes implemented (each backed by a test)."""
    _check_only(params, {"f"})
    return Answer(dumps({"conformsTo": list(CONFORMANCE)}), JSON)


def collections(store, access: Access, base: str, *, max_small: int = DEFAULT_SUPPRESS_MAX,
                params: Sequence[tuple[str, str]] = ()) -> Answer:
    """``/ogc/collections``: every collection's metadata."""
    _check_only(params, {"f"})
    snap = current(store)
    return Answer(dumps({
        "links": [{"href": f"{base}/collections", "rel": "self", "type": JSON}],
        "crs": list(SUPPORTED_CRS),
        "collections": [_metadata(snapshot_data(snap, store, cid, access, max_small), base)
                        for cid in COLLECTIONS],
    }), JSON)


def collection(store, cid: str, access: Access, base: str, *, max_small: int = DEFAULT_SUPPRESS_MAX,
               params: Sequence[tuple[str, str]] = ()) -> Answer:
    """``/ogc/collections/{id}``."""
    built = collection_data(store, cid, access, max_small=max_small)
    _check_only(params, {"f"})
    return Answer(dumps(_metadata(built, base)), JSON)


def _metadata(built: Built, base: str) -> dict:
    spec = built.spec
    here = f"{base}/collections/{spec.id}"
    return {
        "id": spec.id, "title": spec.title, "description": spec.description, "itemType": "feature",
        "geometryType": spec.geometry,
        "crs": list(SUPPORTED_CRS), "storageCrs": STORAGE_CRS,
        "extent": {"spatial": {"bbox": [built.extent], "crs": CRS84}},
        "links": [
            {"href": here, "rel": "self", "type": JSON, "title": spec.title},
            {"href": f"{here}/items", "rel": "items", "type": GEOJSON, "title": spec.title},
            {"href": f"{here}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": SCHEMA_JSON, "title": "queryables"},
            {"href": f"{here}/sortables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables",
             "type": SCHEMA_JSON, "title": "sortables"},
        ],
    }


def queryables(store, cid: str, access: Access, base: str, *, max_small: int = DEFAULT_SUPPRESS_MAX,
               params: Sequence[tuple[str, str]] = (), sortables: bool = False) -> Answer:
    """``/collections/{id}/queryables`` (Part 3) or, with ``sortables``, ``…/sortables``: a JSON
    Schema of the properties a filter (or ``sortby``) may name, their types as served."""
    built = collection_data(store, cid, access, max_small=max_small)
    _check_only(params, {"f"})
    spec = built.spec
    props = {}
    if not sortables:
        props[ogc_filter.GEOMETRY] = {"title": "図形", "format": f"geometry-{spec.geometry.lower()}",
                                      "x-ogc-role": "primary-geometry"}
    for name in built.names:
        props[name] = _property_schema(built, name)
    kind = "sortables" if sortables else "queryables"
    return Answer(dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{spec.id}/{kind}",
        "type": "object", "title": spec.title, "properties": props, "additionalProperties": False,
    }), SCHEMA_JSON)


def _property_schema(built: Built, name: str) -> dict:
    prop = built.spec.prop(name)
    out = {"title": prop.title if prop else name, "type": built.types[name]}
    if name == built.spec.key:
        out["x-ogc-role"] = "id"
    if name in built.hidden:
        out["description"] = (f"人数。1〜{built.max_small} 人は「{SUPPRESSED}」（文字列）。数と比べると、"
                              f"「{SUPPRESSED}」の値は不明として扱い一致しません / a count as text; "
                              f"hidden counts compare as unknown")
    return out


# --- items --------------------------------------------------------------------------------------

#: Parameters of the items request besides the queryable properties.
ITEM_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang",
                   "filter-crs", "sortby", "properties")
_INT = re.compile(r"^[0-9]{1,9}$")
#: ``datetime``: an RFC 3339 date or date-time, or an interval of two (``..`` open).
_INSTANT = (r"(\.\.|[0-9]{4}-[0-9]{2}-[0-9]{2}"
            r"(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?)")
DATETIME_PATTERN = f"^{_INSTANT}(/{_INSTANT})?$"
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_DATETIME = re.compile(DATETIME_PATTERN)


@dataclass(frozen=True)
class ItemsQuery:
    """An items request, checked."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple | None = None           # (CrsDef, geometry x = east, y = north, or None: empty)
    crs: CrsDef = SUPPORTED_CRS[CRS84]
    datetime: str | None = None
    filter: dict | None = None
    filter_crs: CrsDef = SUPPORTED_CRS[CRS84]
    equals: tuple = ()                  # (name, value) of the property parameters
    sortby: tuple[tuple[str, bool], ...] = ()   # (name, descending)
    properties: tuple[str, ...] | None = None
    given: tuple[tuple[str, str], ...] = ()


def items_query(built: Built, params: Sequence[tuple[str, str]]) -> ItemsQuery:
    """The items parameters checked against the collection; :class:`InputError` (400) for an
    unknown parameter or property, a repeated parameter, or a value out of range."""
    p = _check_only(params, set(ITEM_PARAMETERS) | set(built.names))
    limit = _int(p, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(p, "offset", 0, 0, MAX_OFFSET)
    crs = crs_def(p["crs"]) if "crs" in p else SUPPORTED_CRS[CRS84]
    bbox_crs = crs_def(p["bbox-crs"], "bbox-crs") if "bbox-crs" in p else SUPPORTED_CRS[CRS84]
    bbox = (bbox_crs, _bbox(p["bbox"], bbox_crs)) if "bbox" in p else None
    if "datetime" in p and not _DATETIME.match(p["datetime"]):
        raise InputError("datetime は RFC 3339 の日時か期間（a/b、.. は無制限）です / datetime must be an "
                         "RFC 3339 instant or interval")
    filter_crs = crs_def(p["filter-crs"], "filter-crs") if "filter-crs" in p else SUPPORTED_CRS[CRS84]
    tree = None
    if "filter" in p:
        tree = ogc_filter.parse(p["filter"], p.get("filter-lang"))
        unknown = ogc_filter.properties_of(tree) - set(built.names) - {ogc_filter.GEOMETRY}
        if unknown:
            name = sorted(unknown)[0][:64]
            raise InputError(f"プロパティ {name} はありません / unknown property {name}（queryables を参照）")
    elif "filter-lang" in p:
        ogc_filter.parse("TRUE", p["filter-lang"])  # checks the name
    equals = tuple((name, _equal_value(built, name, p[name])) for name in built.names if name in p)
    return ItemsQuery(limit=limit, offset=offset, bbox=bbox, crs=crs, datetime=p.get("datetime"),
                      filter=tree, filter_crs=filter_crs, equals=equals,
                      sortby=_sortby(built, p.get("sortby")),
                      properties=_properties(built, p.get("properties")), given=tuple(params))


def _int(p: dict, name: str, default: int, lo: int, hi: int) -> int:
    if name not in p:
        return default
    text = p[name].strip()
    if not _INT.match(text) or not lo <= int(text) <= hi:
        raise InputError(f"{name} は {lo}〜{hi} の整数です / {name} must be an integer from {lo} to {hi}")
    return int(text)


def _bbox(text: str, crs: CrsDef):
    """The box in ``crs`` written x = east, y = north; None for an empty box (south of its lower
    corner above the upper one, or west above east in metres). In degrees, west above east is a
    box across the antimeridian (Part 1)."""
    parts = text.split(",")
    if len(parts) not in (4, 6) or not all(_NUMBER.match(v) for v in parts):
        raise InputError("bbox は数 4 つ（または 6 つ）をカンマで区切ります / bbox takes 4 (or 6) numbers")
    values = [float(v) for v in parts]
    if not all(math.isfinite(v) for v in values):
        raise InputError("bbox に数でない値があります / bbox holds a value that is not a number")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    a0, b0, a1, b1 = values  # in the CRS's axis order
    west, south, east, north = (b0, a0, b1, a1) if crs.north_first else (a0, b0, a1, b1)
    if south > north:
        return None
    if west > east:
        if not crs.geographic:
            return None
        return shapely.MultiPolygon([shapely.box(west, south, max(west, 180.0), north),
                                     shapely.box(min(east, -180.0), south, east, north)])
    return shapely.box(west, south, east, north)


def _equal_value(built: Built, name: str, text: str):
    kind = built.table.columns[name].kind
    if kind == "string":
        return text
    if kind == "boolean":
        if text not in ("true", "false"):
            raise InputError(f"{name} は true か false です / {name} must be true or false")
        return text == "true"
    if not _NUMBER.match(text) or not math.isfinite(float(text)):
        raise InputError(f"{name} は数です / {name} must be a number")
    return float(text)


def _sortby(built: Built, text: str | None) -> tuple[tuple[str, bool], ...]:
    if text is None:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part.lstrip("+-").strip()
        if name not in built.names:
            name = name[:64]
            raise InputError(f"sortby のプロパティ {name} はありません / unknown sortby property {name}")
        out.append((name, desc))
    return tuple(out)


def _properties(built: Built, text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in built.names]
    if unknown:
        name = unknown[0][:64]
        raise InputError(f"properties のプロパティ {name} はありません / unknown property {name}")
    return names


def select(snap, built: Built, q: ItemsQuery, access: Access, max_small: int) -> np.ndarray:
    """Indices of the features the query matches, sorted as asked (stable: build order). A box or
    a filter's geometries are compared with the features in their own CRS (``bbox-crs``,
    ``filter-crs``), so nothing is ever transformed out of its domain."""
    mask = np.ones(built.n, dtype=bool)
    if q.datetime is not None:
        mask[:] = False  # no collection has a time: no feature's time meets any datetime
    if q.bbox is not None:
        bbox_crs, box = q.bbox
        inside = np.zeros(built.n, dtype=bool)
        if box is not None:
            _, tree = geometries_in(snap, built, bbox_crs, access, max_small)
            inside[tree.query(box, predicate="intersects")] = True
        mask &= inside
    for name, value in q.equals:
        col = built.table.columns[name]
        if col.kind == "string":
            mask &= ~col.null & (col.text == value)
        elif col.kind == "boolean":
            mask &= ~col.null & (col.flag == value)
        else:
            mask &= col.num == value  # NaN (missing or hidden) is never equal
    if q.filter is not None and mask.any():
        geoms, tree = geometries_in(snap, built, q.filter_crs, access, max_small)
        table = ogc_filter.Table(n=built.n, columns=built.table.columns, geometry=geoms, tree=tree)
        mask &= ogc_filter.evaluate(q.filter, table, literal_geometry=lambda g: _east_north(g, q.filter_crs))
    idx = np.flatnonzero(mask)
    if q.sortby and len(idx) > 1:
        keys = [np.arange(built.n)[idx]]
        for name, desc in reversed(q.sortby):
            missing, key = built.sort_key(name)
            keys.append(-key[idx] if desc else key[idx])
            keys.append(missing[idx])  # missing values last, either way
        idx = idx[np.lexsort(keys)]
    return idx


def items(store, cid: str, access: Access, base: str, params: Sequence[tuple[str, str]], *,
          max_small: int = DEFAULT_SUPPRESS_MAX, gzip: bool = False) -> Answer:
    """``/ogc/collections/{id}/items``: a GeoJSON FeatureCollection with ``numberMatched``,
    ``numberReturned`` and ``next``/``prev`` links; ``gzip`` when the client accepts it."""
    snap = current(store)
    built = snapshot_data(snap, store, cid, access, max_small)
    q = items_query(built, params)
    idx = select(snap, built, q, access, max_small)
    matched = len(idx)
    page = idx[q.offset:q.offset + q.limit]
    heads = feature_heads(snap, built, q.crs, access, max_small)
    props = _page_properties(built, page, q.properties)
    features = [heads[i] + b',"properties":' + pr + b"}" for i, pr in zip(page.tolist(), props, strict=True)]
    here = f"{base}/collections/{cid}/items"
    rest = urlencode([(k, v) for k, v in q.given if k != "offset"])
    paged = f"{here}?{rest}&offset=" if rest else f"{here}?offset="
    links = [{"href": f"{paged}{q.offset}" if q.offset else f"{here}?{rest}" if rest else here, "rel": "self",
              "type": GEOJSON},
             {"href": f"{base}/collections/{cid}", "rel": "collection", "type": JSON}]
    if q.offset + q.limit < matched:
        links.append({"href": f"{paged}{q.offset + q.limit}", "rel": "next", "type": GEOJSON})
    if q.offset > 0:
        links.append({"href": f"{paged}{max(0, q.offset - q.limit)}", "rel": "prev", "type": GEOJSON})
    tail = dumps({"numberMatched": matched, "numberReturned": len(page), "links": links, "timeStamp": _now()})
    body = [b'{"type":"FeatureCollection","features":[', *_commas(features), b"],", tail[1:]]
    headers = {"Content-Crs": f"<{q.crs.uri}>"}
    return _answer(body, GEOJSON, headers, gzip=gzip)


def item(store, cid: str, fid: str, access: Access, base: str, params: Sequence[tuple[str, str]], *,
         max_small: int = DEFAULT_SUPPRESS_MAX) -> Answer:
    """``/ogc/collections/{id}/items/{fid}``: one GeoJSON Feature (``crs``, ``properties``)."""
    snap = current(store)
    built = snapshot_data(snap, store, cid, access, max_small)
    p = _check_only(params, {"f", "crs", "properties"})
    crs = crs_def(p["crs"]) if "crs" in p else SUPPORTED_CRS[CRS84]
    chosen = _properties(built, p.get("properties"))
    i = built.index.get(fid)
    if i is None:
        raise NotFoundError(f"{cid} に地物 {fid[:64]} はありません / no feature {fid[:64]} in {cid}")
    head = feature_heads(snap, built, crs, access, max_small)[i]
    props = _page_properties(built, np.array([i]), chosen)[0]
    here = f"{base}/collections/{cid}"
    query = urlencode(list(params))
    self_href = f"{here}/items/{quote(fid, safe='')}" + (f"?{query}" if query else "")
    links = dumps([{"href": self_href, "rel": "self", "type": GEOJSON},
                   {"href": here, "rel": "collection", "type": JSON}])
    body = head + b',"properties":' + props + b',"links":' + links + b"}"
    return Answer(body, GEOJSON, {"Content-Crs": f"<{crs.uri}>"})


def _page_properties(built: Built, page: np.ndarray, chosen: tuple[str, ...] | None) -> list[bytes]:
    if chosen is None:
        return [built.props_json[i] for i in page.tolist()]
    keys = [json.dumps(n).encode() + b":" for n in chosen]
    values = [built.value_json[n] for n in chosen]
    return [b"{" + b",".join(k + v[i] for k, v in zip(keys, values, strict=True)) + b"}"
            for i in page.tolist()]


def _commas(parts: list[bytes]) -> list[bytes]:
    if not parts:
        return []
    out = [parts[0]]
    for p in parts[1:]:
        out.append(b",")
        out.append(p)
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _answer(parts: list[bytes], media_type: str, headers: dict[str, str], *, gzip: bool) -> Answer:
    body = b"".join(parts)
    if gzip and len(body) >= 1024:
        # level 1: a sixth of level 6's time for a few per cent more bytes (features are repetitive)
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        body = packer.compress(body) + packer.flush()
        headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return Answer(body, media_type, headers)
