"""Vector tiles of the public layers (``/tiles/{layer}/{z}/{x}/{y}.mvt``, Mapbox Vector Tile).

Thin: the tiles come from :mod:`karte.services.tiles` (the OGC collections as the viewer sees
them, suppression applied, encoded once per build).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import current_access, get_store, max_small
from karte.services import ogc, ogc_api, tiles

router = APIRouter(tags=["Vector tiles"])


class MVTResponse(Response):
    media_type = tiles.MEDIA_TYPE


def _operation() -> dict:
    path = [{"name": name, "in": "path", "required": True, "schema": schema, "description": text}
            for name, schema, text in (
                ("layer", {"type": "string", "enum": list(ogc.COLLECTIONS)}, "レイヤ（OGC のコレクション）"),
                ("z", {"type": "integer", "minimum": 0, "maximum": tiles.MAX_ZOOM}, "ズーム / zoom"),
                ("x", {"type": "integer", "minimum": 0}, "列（0〜2^z−1） / column"),
                ("y", {"type": "integer", "minimum": 0}, "行（0〜2^z−1、北から） / row from the north"))]
    return {"summary": "ベクトルタイル（MVT）", "operationId": "vector_tile", "parameters": path,
            "responses": {
                "200": {"description": "Mapbox Vector Tile (empty: no feature in the tile)",
                        "content": {tiles.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                "400": ogc_api.BAD, "404": ogc_api.NOT_FOUND}}


@router.get("/tiles/{layer}/{z:int}/{x:int}/{y:int}.mvt", name="vector_tile", response_class=MVTResponse,
            openapi_extra=_operation())
def vector_tile(request: Request) -> Response:
    p = request.path_params
    body = tiles.tile(get_store(request), p["layer"], p["z"], p["x"], p["y"], current_access(request),
                      max_small=max_small(request))
    return MVTResponse(body)
