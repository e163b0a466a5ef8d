"""OGC API - Features at ``/ogc`` (Parts 1, 2 and 3, CQL2, sorting), for QGIS and GDAL.

Thin: :mod:`karte.services.ogc` answers every request (what a user sees is
:func:`karte.services.layers.layer_view`'s answer; the public sees small counts as 「秘匿」) and
:mod:`karte.services.ogc_api` describes each operation. A collection has its own paths
(``/ogc/collections/small_areas/items`` …), so the OpenAPI documents (the app's, and the OGC
``service-desc`` at ``/ogc/api``) list each collection's own query parameters, which is how
GDAL's OAPIF driver finds what it may filter on. The routes read their query parameters
themselves: the service checks them all (an unknown one is a 400, never ignored).

Absolute links in the answers all come from :func:`_base`, on :func:`api.deps.public_base_url`:
a ``Host`` header that is not an allowed host never reaches a link.

A store holding several municipalities (a prefecture's) serves each at its own landing page,
``/ogc/m/{municipality}`` (``/ogc/m/02203/collections/districts/items``): district codes repeat
across municipalities, and a GIS client keeps one base URL, so the municipality is part of the
path and of every link. ``/ogc`` itself serves the municipality :func:`api.deps.municipality_in_view`
picks (the first by code for a client without a choice).
"""

from __future__ import annotations

import weakref

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import MUNICIPALITY_PATH, current_access, get_store, max_small, public_base_url
from karte.services import ogc, ogc_api
from karte.services.ogc import COLLECTIONS

router = APIRouter(prefix="/ogc")

__all__ = ["COLLECTIONS", "router"]


class JSONBytes(Response):
    media_type = ogc.JSON


class GeoJSONBytes(Response):
    media_type = ogc.GEOJSON


class SchemaBytes(Response):
    media_type = ogc.SCHEMA_JSON


class OpenAPIBytes(Response):
    media_type = ogc.OPENAPI


def _base(request: Request) -> str:
    """The OGC landing page's absolute URL: every link of every answer starts with it.

    The host is :func:`api.deps.public_base_url`'s (the request's own only when it is an allowed
    host); the path is the landing route's (``url_path_for``, looked up once per app: FastAPI
    walks every route to find a name)."""
    path = _LANDING.get(request.app)
    if path is None:
        path = _LANDING[request.app] = str(request.app.url_path_for("ogc_landing"))
    municipality = request.path_params.get(MUNICIPALITY_PATH)
    return public_base_url(request) + path + (f"/m/{municipality}" if municipality else "")


_LANDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _params(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


def _send(answer: ogc.Answer) -> Response:
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)


def _gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


@router.get("", name="ogc_landing", response_class=JSONBytes, openapi_extra=ogc_api.operation("landing"))
def landing(request: Request) -> Response:
    docs = public_base_url(request) + str(request.app.url_path_for("api_docs"))
    return _send(ogc.landing(_base(request), docs, _params(request)))


@router.get("/conformance", name="ogc_conformance", response_class=JSONBytes,
            openapi_extra=ogc_api.operation("conformance"))
def conformance(request: Request) -> Response:
    return _send(ogc.conformance(_params(request)))


@router.get("/api", name="ogc_api", response_class=OpenAPIBytes, openapi_extra=ogc_api.operation("api"))
def api_document(request: Request) -> Response:
    ogc.landing(_base(request), "", _params(request))  # checks the parameters (f only)
    return _send(ogc.Answer(ogc.dumps(ogc_api.document(_base(request))), ogc.OPENAPI))


@router.get("/collections", name="ogc_collections", response_class=JSONBytes,
            openapi_extra=ogc_api.operation("collections"))
def collections(request: Request) -> Response:
    return _send(ogc.collections(get_store(request), current_access(request), _base(request),
                                 max_small=max_small(request), params=_params(request)))


def collection(request: Request) -> Response:
    return _send(ogc.collection(get_store(request), _cid(request), current_access(request), _base(request),
                                max_small=max_small(request), params=_params(request)))


def items(request: Request) -> Response:
    return _send(ogc.items(get_store(request), _cid(request), current_access(request), _base(request),
                           _params(request), max_small=max_small(request), gzip=_gzip(request)))


def item(request: Request) -> Response:
    fid = request.path_params["feature_id"]
    return _send(ogc.item(get_store(request), _cid(request), fid, current_access(request), _base(request),
                          _params(request), max_small=max_small(request)))


def queryables(request: Request) -> Response:
    return _send(ogc.queryables(get_store(request), _cid(request), current_access(request), _base(request),
                                max_small=max_small(request), params=_params(request)))


def sortables(request: Request) -> Response:
    return _send(ogc.queryables(get_store(request), _cid(request), current_access(request), _base(request),
                                max_small=max_small(request), params=_params(request), sortables=True))


def _cid(request: Request) -> str:
    """The collection of the request: the path parameter, or the collection a documented path names."""
    return request.path_params.get("collection_id") or request.scope["route"].path.split("/")[3]


_ROUTES = (("", "ogc_collection", collection, JSONBytes), ("/items", "ogc_items", items, GeoJSONBytes),
           ("/items/{feature_id}", "ogc_item", item, GeoJSONBytes),
           ("/queryables", "ogc_queryables", queryables, SchemaBytes),
           ("/sortables", "ogc_sortables", sortables, SchemaBytes))

# The routes that answer: one per kind, for every collection (an unknown one is a 404 from the
# service). A request is matched against the app's routes in turn, so five routes cost less than
# thirty-five on every request.
for _path, _name, _endpoint, _response in _ROUTES:
    router.add_api_route(f"/collections/{{collection_id}}{_path}", _endpoint, methods=["GET"], name=_name,
                         response_class=_response, include_in_schema=False)

# The same operations documented per collection (each with its own query parameters, as GDAL
# and QGIS read them): the routes above answer these paths first; these routes only describe them.
for _cid_ in COLLECTIONS:
    for _path, _name, _endpoint, _response in _ROUTES:
        router.add_api_route(f"/collections/{_cid_}{_path}", _endpoint, methods=["GET"], name=f"{_name}_doc",
                             response_class=_response,
                             openapi_extra=ogc_api.operation(_name.removeprefix("ogc_"), COLLECTIONS[_cid_]))

# Every operation again under one municipality's landing page (see the module docstring), for
# a store holding several; undocumented (the same operations as above).
for _route in [r for r in router.routes if not r.name.endswith("_doc")]:
    _path = _route.path.replace(router.prefix, f"/m/{{{MUNICIPALITY_PATH}}}", 1)
    router.add_api_route(_path, _route.endpoint, methods=["GET"], name=f"{_route.name}_m",
                         response_class=_route.response_class, include_in_schema=False)
