"""OGC API - Features (Part 1: Core, GeoJSON, OpenAPI 3.0) at ``/ogc``, for QGIS and GDAL.

Collections: ``districts``, ``small_areas``, ``shelters``, ``emergency_sites``, ``services``,
``coverage`` (uncovered areas: elderly people outside every salon's walking catchment, one
feature per district) and ``catchments`` (the salons' walking catchments), in CRS84 (EPSG:4326
longitude, latitude), coordinates to 6 decimals, not simplified. What a user sees is
:func:`karte.services.layers.layer_view`'s answer, as everywhere (anonymous: small counts as "秘匿");
personal layers are not offered here.

``limit`` is 1..10000 (default 1000), ``offset`` 0.. ; ``bbox`` is ``minLon,minLat,maxLon,maxLat``
(a 6-number 3D box is read by its horizontal part) within -180..180 / -90..90, west ≤ east and
south ≤ north; anything else is a 400 in the API's error format. A column in which some count is
suppressed for the public is text in every feature ("12", "秘匿"), so GIS clients never read a
suppressed count as 0. GDAL reads it as
``ogrinfo OAPIF:http://host:port/ogc``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import geopandas as gpd
import shapely
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import AccessDep, MaxSmallDep, StoreDep
from api.errors import ApiError
from gis import crs
from karte.domain.access import SUPPRESSED, Access, Level
from karte.render.webmap import to_web_geojson
from karte.services.layers import FEATURE_KEYS, layer_view
from karte.snapshot import current
from karte.store.base import Store

router = APIRouter(prefix="/ogc", tags=["OGC API - Features"])

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
COLLECTIONS = {
    "districts": ("地区", "地区社協の区域（仮の地区を含む）と主な指標"),
    "small_areas": ("小地域（町丁・字）", "2015年国勢調査の小地域と人口・年齢構成（公開時は少人数を秘匿）"),
    "shelters": ("指定避難所", "国土地理院の指定避難所（福祉避難所を含む）"),
    "emergency_sites": ("指定緊急避難場所", "国土地理院の指定緊急避難場所と災害種別"),
    "services": ("共助サービス", "サロン・見守り・生活支援などの共助サービス"),
    "coverage": ("サロン徒歩圏外", "月1回以上のサロンの徒歩圏から外れる高齢者のいる区域（地区ごと）"),
    "catchments": ("サロンの徒歩圏", "月1回以上のサロンの徒歩圏（直線半径）"),
}
CollectionId = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$", description="collection id",
                                   examples=["districts"])]
FeatureId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", max_length=64,
                                description="feature id", examples=["S05"])]
Format = Annotated[str | None, Query(pattern=r"^(json|geojson)$", description="json (default)")]


class GeoJSON(JSONResponse):
    media_type = GEOJSON


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


@router.get("", summary="ランディングページ", name="ogc_landing")
def landing(request: Request, f: Format = None) -> dict:
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return {
        "title": "地区カルテ OGC API - Features",
        "description": "青森市の地区カルテのレイヤ（地区、小地域、避難所、共助サービス、サロンの徒歩圏）",
        "links": [
            {"href": base, "rel": "self", "type": "application/json", "title": "this document"},
            {"href": f"{root}/api/openapi.json", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "OpenAPI definition"},
            {"href": f"{root}/api/docs", "rel": "service-doc", "type": "text/html",
             "title": "API documentation"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
             "title": "conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json",
             "title": "collections"},
        ],
    }


@router.get("/conformance", summary="適合クラス", name="ogc_conformance")
def conformance(f: Format = None) -> dict:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="コレクションの一覧", name="ogc_collections")
def collections(request: Request, store: StoreDep, access: AccessDep, max_small: MaxSmallDep,
                f: Format = None) -> dict:
    base = _base(request)
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
        "collections": [_collection(request, store, cid, access, max_small) for cid in COLLECTIONS],
    }


@router.get("/collections/{collection_id}", summary="コレクション", name="ogc_collection",
            responses={404: {"description": "コレクションがありません"}})
def collection(request: Request, collection_id: CollectionId, store: StoreDep, access: AccessDep,
               max_small: MaxSmallDep, f: Format = None) -> dict:
    _known(collection_id)
    return _collection(request, store, collection_id, access, max_small)


@router.get("/collections/{collection_id}/items", summary="地物の一覧 (GeoJSON)", name="ogc_items",
            response_class=GeoJSON,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                             "description": "GeoJSON FeatureCollection"},
                       400: {"description": "パラメータが正しくありません"},
                       404: {"description": "コレクションがありません"}})
def items(
    request: Request,
    collection_id: CollectionId,
    store: StoreDep,
    access: AccessDep,
    max_small: MaxSmallDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"1..{MAX_LIMIT}")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    bbox: Annotated[str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat (CRS84)",
                                      examples=["140.6,40.7,140.9,40.9"])] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    f: Format = None,
) -> GeoJSON:
    _known(collection_id)
    if bbox_crs not in (None, CRS84):
        raise ApiError(400, f"bbox-crs は {CRS84} だけに対応しています")
    box = _parse_bbox(bbox) if bbox is not None else None
    frame, wgs = _layer(store, collection_id, access, max_small)
    if box is not None:
        hits = wgs.sindex.query(shapely.box(*box), predicate="intersects")
        hits.sort()
        frame = frame.iloc[hits]
    matched = len(frame)
    page = frame.iloc[offset:offset + limit]
    body = to_web_geojson(page, tolerance_m=0, id_column=FEATURE_KEYS[collection_id])
    body.pop("bbox", None)
    base = f"{_base(request)}/collections/{collection_id}/items"
    extra = f"&bbox={bbox}" if bbox else ""
    links = [{"href": f"{base}?limit={limit}&offset={offset}{extra}", "rel": "self", "type": GEOJSON},
             {"href": f"{_base(request)}/collections/{collection_id}", "rel": "collection",
              "type": "application/json"}]
    if offset + limit < matched:
        links.append({"href": f"{base}?limit={limit}&offset={offset + limit}{extra}", "rel": "next",
                      "type": GEOJSON})
    if offset > 0:
        links.append({"href": f"{base}?limit={limit}&offset={max(0, offset - limit)}{extra}",
                      "rel": "prev", "type": GEOJSON})
    body.update({"numberMatched": matched, "numberReturned": len(page), "links": links,
                 "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")})
    return GeoJSON(body)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="地物 (GeoJSON)",
            name="ogc_item", response_class=GeoJSON,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                             "description": "GeoJSON Feature"},
                       404: {"description": "地物がありません"}})
def item(request: Request, collection_id: CollectionId, feature_id: FeatureId, store: StoreDep,
         access: AccessDep, max_small: MaxSmallDep, f: Format = None) -> GeoJSON:
    _known(collection_id)
    frame, _ = _layer(store, collection_id, access, max_small)
    key = FEATURE_KEYS[collection_id]
    hit = frame[frame[key].astype(str) == feature_id]
    if hit.empty:
        raise ApiError(404, f"{collection_id} に地物 {feature_id} はありません")
    feature = to_web_geojson(hit.iloc[:1], tolerance_m=0, id_column=key)["features"][0]
    base = f"{_base(request)}/collections/{collection_id}"
    feature["links"] = [{"href": f"{base}/items/{feature_id}", "rel": "self", "type": GEOJSON},
                        {"href": base, "rel": "collection", "type": "application/json"}]
    return GeoJSON(feature)


# --- private --------------------------------------------------------------------------------------

def _known(collection_id: str) -> None:
    if collection_id not in COLLECTIONS:
        raise ApiError(404, f"コレクション {collection_id} はありません（{', '.join(COLLECTIONS)}）")


def _layer(store: Store, cid: str, access: Access, max_small: int) -> tuple[gpd.GeoDataFrame, gpd.GeoSeries]:
    """The layer as the user sees it (EPSG:6678) and its geometry in CRS84 (for bbox and extent),
    cached per store build and audience (public or not)."""
    public = access.level == Level.PUBLIC

    def compute():
        frame = _typed(layer_view(store, cid, access, max_small=max_small))
        return frame, frame.geometry.to_crs(crs.WGS84)

    return current(store).memo(("ogc", cid, public, max_small), compute)


def _typed(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns where some count is suppressed ("秘匿") become text in every feature ("12",
    "秘匿"): GDAL and QGIS type a field from the first features they see, and would read a later
    "秘匿" in an integer field as 0, which is a wrong number. Other columns keep their type."""
    out = frame
    for col in frame.columns:
        if col == frame.geometry.name or frame[col].dtype != object:
            continue
        values = frame[col]
        if (values == SUPPRESSED).any():
            if out is frame:
                out = frame.copy()
            out[col] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                        for v in values]
    return out


def _collection(request: Request, store: Store, cid: str, access: Access, max_small: int) -> dict:
    title, description = COLLECTIONS[cid]
    _, wgs = _layer(store, cid, access, max_small)
    bounds = [round(v, 6) for v in wgs.total_bounds] if len(wgs.dropna()) else [-180, -90, 180, 90]
    base = f"{_base(request)}/collections/{cid}"
    return {
        "id": cid, "title": title, "description": description, "itemType": "feature",
        "crs": [CRS84], "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [bounds], "crs": CRS84}},
        "links": [{"href": base, "rel": "self", "type": "application/json"},
                  {"href": f"{base}/items", "rel": "items", "type": GEOJSON, "title": title}],
    }


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ApiError(400, "bbox は数 4 つ（西,南,東,北 の経緯度）をカンマで区切ってください") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise ApiError(400, "bbox は数 4 つ（西,南,東,北 の経緯度）をカンマで区切ってください")
    if not all(math.isfinite(v) for v in values):
        raise ApiError(400, "bbox に数でない値があります")
    west, south, east, north = values
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise ApiError(400, "bbox は経度 -180〜180、緯度 -90〜90 の範囲で指定してください")
    if west > east or south > north:
        raise ApiError(400, "bbox は 西 ≤ 東、南 ≤ 北 の順で指定してください")
    return west, south, east, north
