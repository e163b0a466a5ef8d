"""Districts (地区社協 areas) as sets of small areas (町丁・字), and statistics moved between them.

Three jobs, all pure:

* :func:`regionalize` groups small areas into contiguous regions of comparable population
  (the max-p heuristic of `spopt`), used to build the stand-in district set;
* :func:`dissolve_districts` turns a small-area -> district mapping into district polygons;
* :func:`apportion` moves extensive small-area counts onto district polygons that do not follow
  census lines, by areal interpolation (`tobler`).
"""

from __future__ import annotations

import random
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.geometry import repair_polygons


def regionalize(
    small_areas: gpd.GeoDataFrame,
    *,
    population: str = "population",
    threshold: float = 5500,
    seed: int = 20150,
    contiguity_buffer: float = 50.0,
) -> pd.Series:
    """Group small areas into contiguous regions, each holding at least ``threshold`` people.

    Uses :class:`spopt.region.MaxPHeuristic`, which maximises the number of regions subject to a
    floor on a summed attribute, so regions come out of comparable population without fixing their
    number in advance. Contiguity is "fuzzy" (polygons within ``contiguity_buffer`` metres are
    neighbours) because the simplified census polygons leave slivers between true neighbours.
    Region compactness is steered by the polygon centroids as the dissimilarity attributes.

    Parameters
    ----------
    small_areas
        Polygons in a metric CRS, with a numeric ``population`` column (nulls count as 0).
    threshold
        Minimum population of each region.
    seed
        Seeds Python's and NumPy's generators: the same input gives the same regions.

    Returns
    -------
    pandas.Series
        Integer region label per small area (index aligned with ``small_areas``), numbered
        0..p-1 from north-west to south-east by region centroid so labels are stable to read.
    """
    from libpysal import weights
    from spopt.region import MaxPHeuristic

    if small_areas.crs is None or not small_areas.crs.is_projected:
        raise ValueError("regionalize needs polygons in a projected (metric) CRS")
    gdf = small_areas[[small_areas.geometry.name]].copy()
    gdf["_pop"] = pd.to_numeric(small_areas[population], errors="coerce").fillna(0).to_numpy()
    centroids = gdf.geometry.representative_point()
    gdf["_x"] = centroids.x.to_numpy() / 1000.0
    gdf["_y"] = centroids.y.to_numpy() / 1000.0
    gdf = gdf.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = weights.fuzzy_contiguity(gdf, buffering=True, buffer=contiguity_buffer)
        if w.n_components != 1:
            raise ValueError(
                f"small areas are not connected even with a {contiguity_buffer} m buffer "
                f"({w.n_components} components)"
            )
        random.seed(seed)
        np.random.seed(seed)
        model = MaxPHeuristic(
            gdf, w, ["_x", "_y"], "_pop", threshold, top_n=2,
            max_iterations_construction=20, max_iterations_sa=2, verbose=False,
        )
        model.solve()
    labels = pd.Series(np.asarray(model.labels_), index=small_areas.index)
    return _renumber_by_position(labels, centroids.set_axis(small_areas.index))


def contiguity_components(small_areas: gpd.GeoDataFrame, *, contiguity_buffer: float = 50.0) -> pd.Series:
    """The connected pieces of a set of small areas: an integer label per area (index aligned).

    Neighbours as in :func:`regionalize` (polygons within ``contiguity_buffer`` metres); a
    municipality with islands or exclaves has several pieces, and :func:`regionalize` takes one
    piece at a time.
    """
    from libpysal import weights

    if small_areas.crs is None or not small_areas.crs.is_projected:
        raise ValueError("contiguity_components needs polygons in a projected (metric) CRS")
    gdf = small_areas[[small_areas.geometry.name]].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = weights.fuzzy_contiguity(gdf, buffering=True, buffer=contiguity_buffer)
    return pd.Series(np.asarray(w.component_labels, dtype=int), index=small_areas.index)


def _renumber_by_position(labels: pd.Series, points: gpd.GeoSeries) -> pd.Series:
    """Renumber labels so region 0 is the north-most, then by longitude within 5 km bands."""
    cx = points.x.groupby(labels).mean()
    cy = points.y.groupby(labels).mean()
    order = sorted(cx.index, key=lambda r: (-(cy[r] // 5000), cx[r]))
    remap = {old: new for new, old in enumerate(order)}
    return labels.map(remap).astype(int)


def dissolve_districts(
    small_areas: gpd.GeoDataFrame,
    mapping: pd.DataFrame,
    *,
    key: str = "key_code",
) -> gpd.GeoDataFrame:
    """District polygons from a small-area -> district mapping.

    ``mapping`` has columns ``key_code``, ``district_code``, ``district_name``. Every small area
    must be mapped exactly once (the caller validates the mapping first). Returns one MultiPolygon
    row per district with ``district_code``, ``district_name`` and ``small_areas`` (how many small
    areas it holds), sorted by code.
    """
    joined = small_areas[[key, small_areas.geometry.name]].merge(
        mapping[[key, "district_code", "district_name"]], on=key, how="inner", validate="1:1"
    )
    out = joined.dissolve(by=["district_code", "district_name"], aggfunc={key: "count"})
    out = out.rename(columns={key: "small_areas"}).reset_index()
    out["geometry"] = out.geometry.buffer(0)
    out, _ = repair_polygons(out)
    return out.sort_values("district_code").reset_index(drop=True)


def apportion(
    small_areas: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    columns: list[str],
    *,
    district_key: str = "district_code",
) -> pd.DataFrame:
    """Apportion extensive counts from small areas to arbitrary district polygons.

    Each small area's counts are split by the share of its area that falls in each district
    (:func:`tobler.area_weighted.area_interpolate`, extensive variables). Concealed (null) values
    are not invented: they contribute nothing, and ``concealed_areas`` counts how many concealed
    small areas overlap each district.

    Returns a DataFrame indexed by ``district_key`` with the apportioned ``columns`` (floats)
    and ``concealed_areas``.
    """
    from tobler.area_weighted import area_interpolate

    src = small_areas[[*columns, small_areas.geometry.name]].copy()
    concealed = src[columns].isna().any(axis=1)
    src[columns] = src[columns].astype(float).fillna(0.0)
    src["_concealed"] = concealed.astype(float)
    tgt = districts[[district_key, districts.geometry.name]].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = area_interpolate(src, tgt, extensive_variables=columns)
        touches = gpd.sjoin(
            tgt, src[src["_concealed"] > 0][[src.geometry.name]], predicate="intersects"
        )
    out = pd.DataFrame(est[columns].to_numpy(), columns=columns, index=tgt[district_key])
    counts = touches.groupby(district_key).size()
    out["concealed_areas"] = counts.reindex(out.index).fillna(0).astype(int)
    return out
