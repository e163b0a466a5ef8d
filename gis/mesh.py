"""Where people live: a population surface finer than the small area (町丁・字).

The surface is made of *pieces*: the intersection of one grid cell with one small area. Each small
area's counts (population, age bands, elderly living alone, ...) are apportioned to its pieces by
area, or by the area of a dasymetric mask (e.g. residential land or building footprints) when one
is supplied. Because a piece lies in exactly one small area it also lies in exactly one district,
so a cell that straddles a district border is split, never double counted, and the sum of the
pieces of a small area is the small area's figure (pycnophylactic: counts are conserved).

Grid choice: the JIS regional mesh (地域メッシュ, JIS X 0410) through :mod:`jismesh`. It is the grid
the Japanese census and most Japanese open data are published on, so cell codes join directly to
other mesh statistics (e.g. 500 m mesh census, land use). The default is level 6, the 1/8 mesh
(8分の1地域メッシュ, 3.75" × 5.625", about 116 m × 132 m at Aomori's latitude): fine enough that a
cell's centre is never more than about 90 m from anyone in it, which matters when the walking
threshold is 350 m in winter; the 1/4 mesh (level 5, about 250 m) would put up to 180 m of error
on a 350 m radius. :func:`square_grid` builds an equivalent plain metric grid for tests and for
places where the JIS mesh is not wanted.

Each piece carries a population point (``x``, ``y`` in the metric CRS): the centroid of the piece,
or of the masked (inhabited) part of it when a mask is used. Distances are measured from there.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import METRIC

#: JGD2011 longitude/latitude: the datum the JIS mesh is defined on.
JGD2011_GEOGRAPHIC = "EPSG:6668"

#: Counts apportioned by default (those present in the small areas are used).
DEFAULT_COLUMNS = ("population", "age_0_14", "age_15_64", "age_65_74", "age_75_plus",
                   "elderly_alone", "disabled")

#: Level -> (cell height in degrees of latitude, cell width in degrees of longitude).
_UNITS = {
    3: (30 / 3600, 45 / 3600),        # 3次メッシュ, about 1 km
    4: (15 / 3600, 22.5 / 3600),      # 2分の1, about 500 m
    5: (7.5 / 3600, 11.25 / 3600),    # 4分の1, about 250 m
    6: (3.75 / 3600, 5.625 / 3600),   # 8分の1, about 125 m
}


def jis_mesh(area: gpd.GeoDataFrame | gpd.GeoSeries, *, level: int = 6) -> gpd.GeoDataFrame:
    """The JIS regional mesh cells (地域メッシュ) that intersect ``area``.

    Parameters
    ----------
    area
        Polygons in any CRS (usually the small areas).
    level
        Mesh level as :mod:`jismesh` numbers them: 3 (1 km), 4 (1/2), 5 (1/4), 6 (1/8).

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id`` (the mesh code as text, e.g. ``"61401589423"`` at level 6) and the cell polygon,
        in :data:`gis.crs.METRIC` (cells are drawn in JGD2011 longitude/latitude and projected).
    """
    if level not in _UNITS:
        raise ValueError(f"level should be one of {sorted(_UNITS)}, got {level!r}")
    geo = _geoseries(area).to_crs(JGD2011_GEOGRAPHIC)
    dlat, dlon = _UNITS[level]
    minx, miny, maxx, maxy = geo.total_bounds
    # the mesh is aligned to multiples of its unit from 0° N and 100° E
    i0, i1 = int(np.floor(miny / dlat)), int(np.ceil(maxy / dlat))
    j0, j1 = int(np.floor((minx - 100) / dlon)), int(np.ceil((maxx - 100) / dlon))
    ii, jj = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    boxes = shapely.box(100 + jj * dlon, ii * dlat, 100 + (jj + 1) * dlon, (ii + 1) * dlat)
    keep = _intersecting(boxes, geo.values)
    boxes, ii, jj = boxes[keep], ii[keep], jj[keep]
    codes = _meshcodes((ii + 0.5) * dlat, 100 + (jj + 0.5) * dlon, level)
    cells = gpd.GeoDataFrame({"cell_id": codes},
                             geometry=gpd.GeoSeries(boxes, crs=JGD2011_GEOGRAPHIC))
    return cells.to_crs(METRIC).reset_index(drop=True)


def square_grid(
    area: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    size: float,
    origin: tuple[float, float] = (0.0, 0.0),
) -> gpd.GeoDataFrame:
    """Square cells of ``size`` metres, aligned on ``origin``, that intersect ``area``.

    The metric equivalent of :func:`jis_mesh`. ``cell_id`` is ``"<column>_<row>"`` counted from
    ``origin`` (e.g. ``"0_0"`` is the cell whose lower-left corner is the origin). Returned in the
    CRS of ``area``, which must be projected.
    """
    geo = _geoseries(area)
    if geo.crs is None or not geo.crs.is_projected:
        raise ValueError(f"square_grid needs a projected (metric) CRS, got {geo.crs}")
    if not size > 0:
        raise ValueError(f"size should be > 0, got {size!r}")
    minx, miny, maxx, maxy = geo.total_bounds
    ox, oy = origin
    c0, c1 = int(np.floor((minx - ox) / size)), int(np.ceil((maxx - ox) / size))
    r0, r1 = int(np.floor((miny - oy) / size)), int(np.ceil((maxy - oy) / size))
    cc, rr = np.meshgrid(np.arange(c0, max(c1, c0 + 1)), np.arange(r0, max(r1, r0 + 1)))
    cc, rr = cc.ravel(), rr.ravel()
    boxes = shapely.box(ox + cc * size, oy + rr * size, ox + (cc + 1) * size, oy + (rr + 1) * size)
    keep = _intersecting(boxes, geo.values)
    ids = [f"{c}_{r}" for c, r in zip(cc[keep], rr[keep], strict=True)]
    return gpd.GeoDataFrame({"cell_id": ids}, geometry=gpd.GeoSeries(boxes[keep], crs=geo.crs))


def population_surface(
    small_areas: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    *,
    columns: tuple[str, ...] | list[str] | None = None,
    keys: tuple[str, ...] = ("key_code", "district_code"),
    mask: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> gpd.GeoDataFrame:
    """Apportion small-area counts to the pieces (cell ∩ small area) of a grid.

    Parameters
    ----------
    small_areas
        Small-area polygons in a metric CRS with the count ``columns`` and the ``keys``.
    cells
        Grid cells with a ``cell_id`` column in the same CRS (from :func:`jis_mesh` or
        :func:`square_grid`); computed once and reused, as it is the expensive step.
    columns
        Extensive counts to apportion. Default: those of :data:`DEFAULT_COLUMNS` present.
    keys
        Small-area columns copied to every piece (present ones only).
    mask
        Optional dasymetric mask: polygons where people live. A piece's share of its small
        area's counts is then its share of the small area's *masked* area. A small area that the
        mask does not touch at all falls back to plain area weights, so no one is lost.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per piece: ``cell_id``, the ``keys``, the apportioned ``columns`` (floats; NaN
        where the small area's figure is null, i.e. concealed), ``elderly`` (= 65-74 + 75+ when
        both bands are present), ``area_share`` (the piece's share of its small area, 0..1), ``x``
        and ``y`` (the population point) and the piece polygon.
    """
    _check_same_crs(small_areas, cells, "small_areas", "cells")
    if "cell_id" not in cells.columns:
        raise ValueError(f"cells should have a 'cell_id' column, got {list(cells.columns)}")
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if c in small_areas.columns]
    missing = [c for c in columns if c not in small_areas.columns]
    if missing:
        raise ValueError(f"small_areas lacks the columns {missing}")
    keys = [k for k in keys if k in small_areas.columns]

    areas = small_areas.geometry.values
    cell_geoms = cells.geometry.values
    pieces, area_idx, cell_idx = _pieces(areas, cell_geoms)

    if mask is not None:
        mask_geom = _geoseries(mask)
        _check_same_crs(small_areas, mask_geom, "small_areas", "mask")
        inhabited = _clip_to(pieces, mask_geom.values)
        w_raw = shapely.area(inhabited)
    else:
        inhabited = pieces
        w_raw = shapely.area(pieces)
    w_area = shapely.area(pieces)
    total_raw = np.bincount(area_idx, weights=w_raw, minlength=len(areas))
    total_area = np.bincount(area_idx, weights=w_area, minlength=len(areas))
    use_raw = total_raw[area_idx] > 0
    weight = np.where(use_raw, w_raw / np.where(total_raw[area_idx] > 0, total_raw[area_idx], 1.0),
                      w_area / np.where(total_area[area_idx] > 0, total_area[area_idx], 1.0))

    point_geom = np.where(use_raw & (w_raw > 0), inhabited, pieces)
    pts = shapely.centroid(point_geom)

    out = pd.DataFrame({"cell_id": cells["cell_id"].to_numpy()[cell_idx]})
    for k in keys:
        out[k] = small_areas[k].to_numpy()[area_idx]
    for c in columns:
        values = pd.to_numeric(small_areas[c], errors="coerce").astype(float).to_numpy()
        out[c] = values[area_idx] * weight
    if "age_65_74" in out.columns and "age_75_plus" in out.columns:
        out["elderly"] = out["age_65_74"] + out["age_75_plus"]
    out["area_share"] = weight
    out["x"] = shapely.get_x(pts)
    out["y"] = shapely.get_y(pts)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(pieces, crs=small_areas.crs))


# --- private steps ------------------------------------------------------------------------------

def _geoseries(obj) -> gpd.GeoSeries:
    if isinstance(obj, gpd.GeoDataFrame):
        return obj.geometry
    if isinstance(obj, gpd.GeoSeries):
        return obj
    raise TypeError(f"expected a GeoDataFrame or GeoSeries, got {type(obj).__name__}")


def _check_same_crs(a, b, name_a: str, name_b: str) -> None:
    if a.crs is None or not a.crs.is_projected:
        raise ValueError(f"'{name_a}' should be in a projected (metric) CRS, got {a.crs}")
    if a.crs != b.crs:
        raise ValueError(f"'{name_b}' should be in the CRS of '{name_a}' ({a.crs}), got {b.crs}")


def _meshcodes(lat: np.ndarray, lon: np.ndarray, level: int) -> np.ndarray:
    """Mesh codes (text) of cell centres. jismesh's vector path fails on a single point under
    NumPy 2 (``np.asscalar``), so one point goes through its scalar path."""
    import jismesh.utils as ju

    if len(lat) == 0:
        return np.array([], dtype=str)
    if len(lat) == 1:
        return np.array([str(ju.to_meshcode(float(lat[0]), float(lon[0]), level))])
    return np.asarray(ju.to_meshcode(lat, lon, level)).astype(str)


def _intersecting(boxes: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Boolean mask: which boxes intersect any of ``geoms``."""
    tree = shapely.STRtree(geoms)
    hit = tree.query(boxes, predicate="intersects")[0]
    keep = np.zeros(len(boxes), dtype=bool)
    keep[hit] = True
    return keep


def _pieces(areas: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-empty polygonal intersections of every (area, cell) pair, with both indices.

    Cells lying wholly inside an area are taken as they are; only border cells are intersected.
    """
    tree = shapely.STRtree(cells)
    a_idx, c_idx = tree.query(areas, predicate="intersects")
    inside = shapely.contains_properly(areas[a_idx], cells[c_idx])
    geoms = np.array(cells[c_idx], dtype=object)
    border = ~inside
    if border.any():
        cut = shapely.intersection(areas[a_idx[border]], cells[c_idx[border]])
        geoms[border] = [_polygonal(g) for g in cut]
    area = shapely.area(geoms)
    keep = area > 0
    order = np.lexsort((c_idx[keep], a_idx[keep]))
    return geoms[keep][order], a_idx[keep][order], c_idx[keep][order]


def _clip_to(pieces: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each piece intersected with the union of the mask polygons touching it."""
    tree = shapely.STRtree(mask)
    p_idx, m_idx = tree.query(pieces, predicate="intersects")
    out = np.array([shapely.Polygon()] * len(pieces), dtype=object)
    if len(p_idx):
        frame = pd.DataFrame({"p": p_idx, "m": m_idx})
        for p, group in frame.groupby("p")["m"]:
            local = shapely.union_all(mask[group.to_numpy()])
            out[p] = _polygonal(shapely.intersection(pieces[p], local))
    return out


def _polygonal(geom):
    """The areal part of an intersection result (drops stray lines and points)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)
