"""Point-in-polygon assignment."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd


def locate_points(
    points: gpd.GeoDataFrame,
    polygons: gpd.GeoDataFrame,
    column: str,
) -> pd.Series:
    """For each point, the value of ``column`` of the polygon that contains it.

    Points on a shared border go to the polygon with the lowest ``column`` value, so every point
    gets at most one answer; points outside every polygon (or without a location) get ``None``.
    """
    if points.crs != polygons.crs:
        raise ValueError(f"CRS differ: points {points.crs}, polygons {polygons.crs}")
    pts = points[[points.geometry.name]].reset_index(drop=True)
    hits = gpd.sjoin(pts, polygons[[column, polygons.geometry.name]], predicate="intersects")
    hits = hits.sort_values(column).groupby(level=0)[column].first()
    out = pd.Series(hits.reindex(range(len(pts))).to_numpy(), index=points.index, dtype=object)
    return out.where(out.notna(), None)
