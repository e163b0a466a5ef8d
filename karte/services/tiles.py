"""Vector tiles (Mapbox Vector Tile) of the public layers: ``/tiles/{layer}/{z}/{x}/{y}.mvt``.

A tile holds the same features and properties as the OGC collection of that layer, as the viewer
sees it (:func:`karte.services.ogc.collection_data`, so :func:`karte.services.layers.layer_view`
with suppression for the public: a hidden count is the text 「秘匿」 in the tile too). One layer
per tile, named as the collection. Encoded in memory by ``mapbox-vector-tile`` (Mapbox's own
encoder, maintained) on both stores, for the same reason the OGC filters run in memory: the
public layers are the build snapshot's derived and suppressed frames, which PostGIS's
``ST_AsMVT`` could only reach if they were written back to tables.

Tiles are the web-mercator XYZ grid (zoom 0–:data:`MAX_ZOOM`, 4096 units a side, a
:data:`BUFFER` of 64 units beyond each edge so strokes and fills meet across tiles); polygons
are simplified to half a unit of the tile. Each build keeps, per layer and audience, the
geometries in web mercator with an STR-tree and the last :data:`CACHE_TILES` tiles it encoded
(in the snapshot's memo: a new build starts afresh; the cache is bounded however the tiles are
walked).
"""

from __future__ import annotations

import functools

import mapbox_vector_tile
import numpy as np
import shapely

from gis import crs as gcrs
from karte.domain.access import DEFAULT_SUPPRESS_MAX, Access
from karte.domain.errors import InputError, NotFoundError
from karte.services import ogc
from karte.snapshot import current

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64
#: Tiles kept per build, layer and audience (a city layer at zoom 16 is a few hundred).
CACHE_TILES = 4096
#: Half the side of the web-mercator square (metres).
HALF = 20037508.342789244


def tile(store, layer: str, z: int, x: int, y: int, access: Access, *,
         max_small: int = DEFAULT_SUPPRESS_MAX) -> bytes:
    """Tile ``z/x/y`` of ``layer`` as ``access`` sees it, MVT bytes (empty: no feature there).

    Raises :class:`~karte.domain.errors.NotFoundError` (404) for a layer that is not an OGC
    collection (personal layers never are) or a tile outside the zoom level's grid, and
    :class:`InputError` (400) for a zoom outside 0..:data:`MAX_ZOOM`.
    """
    ogc.spec_of(layer)
    if not 0 <= z <= MAX_ZOOM:
        raise InputError(f"ズームは 0〜{MAX_ZOOM} です / zoom must be 0 to {MAX_ZOOM}")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):  # no such tile (OGC API - Tiles: 404)
        raise NotFoundError(f"ズーム {z} のタイル番号は 0〜{2 ** z - 1} です / no tile {x}/{y} at zoom {z}")
    snap = current(store)
    built = ogc.snapshot_data(snap, store, layer, access, max_small)
    tiler = snap.memo(("tiles", layer, ogc.audience(access, max_small)), lambda: _Tiler(built))
    return tiler.tile(z, x, y)


def bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of tile ``z/x/y`` in web mercator metres."""
    size = 2 * HALF / 2 ** z
    minx, maxy = -HALF + x * size, HALF - y * size
    return minx, maxy - size, minx + size, maxy


class _Tiler:
    """One layer of one build for one audience, in web mercator, and its encoded tiles."""

    def __init__(self, built: ogc.Built):
        self.name = built.spec.id
        self.polygons = built.spec.geometry == "MultiPolygon"
        self.geoms = ogc.reproject(built.storage, gcrs.METRIC, "EPSG:3857")
        self.tree = shapely.STRtree(self.geoms)
        values = {n: built.table.columns[n] for n in built.names}
        rows = [{} for _ in range(built.n)]
        for name in built.names:
            for i, v in enumerate(_values(values[name], shown_as_text=name in built.hidden)):
                if v is not None:  # MVT has no null: a missing value is a missing key
                    rows[i][name] = v
        self.rows = rows
        self.tile = functools.lru_cache(maxsize=CACHE_TILES)(self._encode)

    def _encode(self, z: int, x: int, y: int) -> bytes:
        minx, miny, maxx, maxy = bounds(z, x, y)
        pad = (maxx - minx) * BUFFER / EXTENT
        hits = self.tree.query(shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad))
        if not len(hits):
            return b""
        hits.sort()
        geoms = shapely.clip_by_rect(self.geoms[hits], minx - pad, miny - pad, maxx + pad, maxy + pad)
        if self.polygons:
            geoms = shapely.simplify(geoms, (maxx - minx) / EXTENT / 2, preserve_topology=True)
        features = [{"geometry": g, "properties": self.rows[i], "id": int(i)}
                    for i, g in zip(hits.tolist(), geoms, strict=True)
                    if g is not None and not g.is_empty and (not self.polygons or g.area > 0)]
        if not features:
            return b""
        return mapbox_vector_tile.encode([{"name": self.name, "features": features}], default_options={
            "quantize_bounds": (minx, miny, maxx, maxy), "extents": EXTENT})


def _values(col, *, shown_as_text: bool) -> list:
    """The column's values as the OGC answer gives them: text for a string column and for a count
    with a hidden value (「秘匿」 beside "12"), numbers otherwise, ``None`` for a missing value."""
    if col.kind == "string" or shown_as_text:
        return list(col.text)
    if col.kind == "boolean":
        return [None if n else bool(f) for f, n in zip(col.flag, col.null, strict=True)]
    out = []
    for v, n in zip(col.num, col.null, strict=True):
        if n or np.isnan(v):
            out.append(None)
        else:
            out.append(int(v) if col.kind == "integer" and float(v).is_integer() else float(v))
    return out
