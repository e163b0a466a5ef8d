"""Geometry cleaning helpers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def repair_polygons(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Make every polygon valid and return it as a MultiPolygon.

    ``shapely.make_valid`` can turn a self-intersecting polygon into a GeometryCollection holding
    stray lines or points; only the polygonal parts are kept, so the result is always areal.

    Returns
    -------
    (GeoDataFrame, int)
        A copy with repaired geometries, and how many geometries were invalid before.
    """
    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms)
    fixed = np.array(geoms, dtype=object)
    if invalid.any():
        fixed[invalid] = [_polygonal(g) for g in shapely.make_valid(geoms[invalid])]
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(
        [_as_multipolygon(g) for g in fixed], index=gdf.index, crs=gdf.crs
    )
    return out, int(invalid.sum())


def polygonal(geoms) -> np.ndarray:
    """Each geometry's areal part: a Polygon or MultiPolygon stays as it is; what overlay,
    validity repair and snapping to a grid leave as a GeometryCollection of polygons, lines and
    points becomes the MultiPolygon of its polygons; a geometry without area becomes None. So a
    polygon layer holds polygons only."""
    out = np.array(geoms, dtype=object)
    for i, geom in enumerate(out):
        if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
            continue
        multi = _polygonal(geom) if geom.geom_type == "GeometryCollection" else None
        out[i] = None if multi is None or multi.is_empty else multi
    return out


def _polygonal(geom):
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for p in parts:
        polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
    return shapely.MultiPolygon(polys)


def _as_multipolygon(geom):
    if geom is None or geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return _polygonal(geom)


def rounded_coordinates(gdf: gpd.GeoDataFrame, decimals: int) -> gpd.GeoDataFrame:
    """Round every coordinate (used to keep web payloads small)."""
    out = gdf.copy()
    out[gdf.geometry.name] = shapely.set_precision(gdf.geometry.values, 10.0**-decimals)
    return out
