"""The OpenAPI definition of the OGC API (``/ogc/api``, OpenAPI 3.0) and of each OGC operation.

One description serves two documents: the OGC landing page's ``service-desc`` (OpenAPI 3.0.3,
paths relative to ``/ogc``, as GDAL's OAPIF driver and QGIS read it: a path per collection, so
a client finds each collection's query parameters, and ``filter-lang`` with ``cql-text``, the
name under which GDAL recognises a text filter) and the app's own ``/api/openapi.json`` (the
routes pass :func:`operation` to FastAPI as ``openapi_extra``). The schemas are written so they
mean the same in OpenAPI 3.0 and 3.1 (no ``nullable``, no type lists, no ``const``).

Every parameter is described as exactly as JSON Schema allows, so that a request valid by the
document is answered 200 (checked by schemathesis with every check in
``tests/test_ogc_fuzz.py``). Two values need more than a pattern: ``filter`` is declared with
``format: cql2`` (a CQL2 text or JSON expression; any other text is a 400), and a simple property
parameter compares the value as the property's type.
"""

from __future__ import annotations

import copy

from karte.services import ogc, ogc_filter

TAG = "OGC API - Features"
VERSION = "1.0"

LINK = {"type": "object", "required": ["href", "rel"],
        "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                       "title": {"type": "string"}}}
LINKS = {"type": "array", "items": LINK}
ERROR = {"type": "object", "required": ["status", "code", "message"],
         "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                        "message": {"type": "string"}, "detail": {"type": "array"}}}
FEATURE = {"type": "object", "required": ["type", "geometry", "properties"],
           "properties": {"type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "string"},
                          "geometry": {"description": "GeoJSON geometry of the collection's geometryType"},
                          "properties": {"type": "object"}, "links": LINKS}}
COLLECTION = {"type": "object", "required": ["id", "links"],
              "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                             "description": {"type": "string"}, "itemType": {"type": "string"},
                             "geometryType": {"type": "string", "enum": ["MultiPolygon", "Point"]},
                             "crs": {"type": "array", "items": {"type": "string"}},
                             "storageCrs": {"type": "string"}, "extent": {"type": "object"}, "links": LINKS}}
JSON_SCHEMA = {"type": "object", "required": ["type", "properties"],
               "properties": {"$schema": {"type": "string"}, "$id": {"type": "string"},
                              "type": {"type": "string", "enum": ["object"]}, "title": {"type": "string"},
                              "properties": {"type": "object"}, "additionalProperties": {"type": "boolean"}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


BAD = _error("パラメータが正しくありません（知らないパラメータ・プロパティ、範囲外の値、読めないフィルタ、"
             "対応していない座標参照系）/ bad request")
NOT_FOUND = _error("コレクションか地物がありません / not found")
CONTENT_CRS = {"Content-Crs": {"description": "the CRS of the coordinates, as <URI>",
                               "schema": {"type": "string"}}}


def _ok(media_type: str, schema: dict, description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {media_type: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _param(name: str, schema: dict, description: str, **extra) -> dict:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "schema": schema, "description": description, **extra}


F = _param("f", {"type": "string", "enum": ["json", "geojson"]}, "答えの形式（JSON のみ） / format: JSON")
CRS_ENUM = {"type": "string", "enum": list(ogc.SUPPORTED_CRS)}


def _names_pattern(names: list[str], *, signed: bool, empty: bool) -> str:
    one = ("[+-]?" if signed else "") + "(" + "|".join(names) + ")"
    body = f"{one}(,{one})*"
    return f"^({body})?$" if empty else f"^{body}$"


def item_parameters(spec: ogc.CollectionSpec) -> list[dict]:
    """The items operation's query parameters for collection ``spec``."""
    names = [p.name for p in spec.properties]
    out = [
        F,
        _param("limit", {"type": "integer", "minimum": 1, "maximum": ogc.MAX_LIMIT,
                         "default": ogc.DEFAULT_LIMIT},
               f"1 ページの地物数（1〜{ogc.MAX_LIMIT}） / features per page"),
        _param("offset", {"type": "integer", "minimum": 0, "maximum": ogc.MAX_OFFSET, "default": 0},
               "先頭から飛ばす地物数（next リンクが使います） / features to skip"),
        _param("bbox", {"type": "array", "items": {"type": "number"},
                        "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
               "範囲: 下端の隅, 上端の隅（bbox-crs の軸の順、既定 CRS84 の 西,南,東,北）。経緯度で西 > 東は"
               "日付変更線をまたぐ範囲、南 > 北と平面直角座標系で西 > 東は空の範囲 / bounding box in "
               "the axis order of bbox-crs", example=[140.7, 40.8, 140.75, 40.85]),
        _param("bbox-crs", CRS_ENUM, "bbox の座標参照系（既定 CRS84） / CRS of bbox"),
        _param("crs", CRS_ENUM, "答えの座標参照系（既定 CRS84、Content-Crs で返ります） / CRS of the answer"),
        _param("datetime", {"type": "string", "pattern": ogc.DATETIME_PATTERN},
               "日時か期間（RFC 3339）。どのコレクションにも時刻はないので、指定すると 0 件です / "
               "no collection has a time: any datetime matches no feature"),
        _param("filter", {"type": "string", "format": "cql2", "maxLength": ogc_filter.MAX_FILTER_CHARS},
               "CQL2 のフィルタ（テキストか JSON）。プロパティは queryables のもの、図形は geometry / a CQL2 "
               "filter (text or JSON) over the queryables", example="district_code = 'S01'"),
        _param("filter-lang", {"type": "string", "enum": list(ogc_filter.LANGUAGES)},
               "フィルタの言語（cql-text は GDAL の呼び名で cql2-text と同じ） / filter language"),
        _param("filter-crs", CRS_ENUM, "フィルタの図形の座標参照系（既定 CRS84） / CRS of filter geometries"),
        _param("sortby", {"type": "string", "pattern": _names_pattern(names, signed=True, empty=False)},
               "並べ替え: プロパティ名をカンマ区切り、- で降順（値のないものは最後） / sort keys, - for "
               "descending", example=f"-{names[1]}"),
        _param("properties", {"type": "string", "pattern": _names_pattern(names, signed=False, empty=True)},
               "返すプロパティ（カンマ区切り、空なら無し） / properties to return"),
    ]
    for prop in spec.properties:
        out.append(_param(prop.name, {"type": prop.type},
                          f"{prop.title} が等しい地物（queryable） / features whose {prop.name} equals this"))
    return out


def _object(required: list[str], **properties) -> dict:
    return {"type": "object", "required": required, "properties": properties}


ITEMS = _object(["type", "features", "links"], type={"type": "string", "enum": ["FeatureCollection"]},
                features={"type": "array", "items": FEATURE}, numberMatched={"type": "integer", "minimum": 0},
                numberReturned={"type": "integer", "minimum": 0}, timeStamp={"type": "string"}, links=LINKS)


def operation(kind: str, spec: ogc.CollectionSpec | None = None) -> dict:
    """The OpenAPI operation of ``kind`` (``landing``, ``conformance``, ``collections``,
    ``collection``, ``items``, ``item``, ``queryables``, ``sortables``, ``api``) for collection
    ``spec``: summary, parameters, responses, operationId, tags."""
    title = spec.title if spec else ""
    params, not_found = [F], False
    if kind == "landing":
        summary, ok = "ランディングページ", _ok(ogc.JSON, _object(["links"], links=LINKS), "landing page")
    elif kind == "conformance":
        strings = {"type": "array", "items": {"type": "string"}}
        summary, ok = "適合クラス", _ok(ogc.JSON, _object(["conformsTo"], conformsTo=strings), "conformance")
    elif kind == "collections":
        listed = {"type": "array", "items": COLLECTION}
        schema = _object(["links", "collections"], links=LINKS, collections=listed)
        summary, ok = "コレクションの一覧", _ok(ogc.JSON, schema, "collections")
    elif kind == "collection":
        summary, ok = f"コレクション: {title}", _ok(ogc.JSON, COLLECTION, "collection")
    elif kind == "items":
        summary, params = f"地物の一覧: {title}", item_parameters(spec)
        ok = _ok(ogc.GEOJSON, ITEMS, "GeoJSON FeatureCollection", CONTENT_CRS)
    elif kind == "item":
        names = [p.name for p in spec.properties]
        params = [{"name": "feature_id", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": f"地物の id（{spec.key}） / feature id"},
                  F, _param("crs", CRS_ENUM, "答えの座標参照系 / CRS of the answer"),
                  _param("properties", {"type": "string",
                                        "pattern": _names_pattern(names, signed=False, empty=True)},
                         "返すプロパティ / properties to return")]
        summary, not_found = f"地物: {title}", True
        ok = _ok(ogc.GEOJSON, FEATURE, "GeoJSON Feature", CONTENT_CRS)
    elif kind in ("queryables", "sortables"):
        what = "絞り込みに使えるプロパティ" if kind == "queryables" else "並べ替えに使えるプロパティ"
        summary, ok = f"{what}: {title}", _ok(ogc.SCHEMA_JSON, JSON_SCHEMA, f"{kind} (JSON Schema)")
    elif kind == "api":
        schema = _object(["openapi", "paths"])
        summary, ok = "OGC API の OpenAPI 定義", _ok(ogc.OPENAPI, schema, "OpenAPI 3.0 definition")
    else:
        raise KeyError(kind)
    responses = {"200": ok, "400": BAD}
    if not_found:
        responses["404"] = NOT_FOUND
    return copy.deepcopy({"summary": summary, "operationId": f"ogc_{kind}" + (f"_{spec.id}" if spec else ""),
                          "tags": [TAG], "parameters": params, "responses": responses})


#: (kind, path below /ogc) of every OGC operation; ``{cid}`` is each collection's id.
PATHS = (("landing", ""), ("conformance", "/conformance"), ("collections", "/collections"), ("api", "/api"),
         ("collection", "/collections/{cid}"), ("items", "/collections/{cid}/items"),
         ("item", "/collections/{cid}/items/{feature_id}"), ("queryables", "/collections/{cid}/queryables"),
         ("sortables", "/collections/{cid}/sortables"))


def document(base: str) -> dict:
    """The OGC API's OpenAPI 3.0.3 document, paths relative to ``base`` (the landing page URL)."""
    paths = {}
    for kind, path in PATHS:
        specs = ogc.COLLECTIONS.values() if "{cid}" in path else [None]
        for spec in specs:
            here = path.replace("{cid}", spec.id) if spec else path
            paths[here or "/"] = {"get": operation(kind, spec)}
    return {
        "openapi": "3.0.3",
        "info": {"title": "地区カルテ OGC API - Features", "version": VERSION,
                 "description": "青森市の地区カルテの公開レイヤ。公開（ログインなし）では "
                                "1〜KARTE_SUPPRESS_MAX 人の人数を「秘匿」と返します。"},
        "servers": [{"url": base}],
        "tags": [{"name": TAG}],
        "paths": paths,
    }
