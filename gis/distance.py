"""Walking distance between points: straight line times a detour factor, or along a network.

Without a network, the walking distance is the straight-line distance in metres (in
:data:`gis.crs.METRIC`) times ``detour_factor`` (1.3 by default, :class:`gis.params.AnalysisParams`).
With a :class:`gis.network.WalkNetwork` it is: straight line from the origin to its nearest network
node, shortest path along the network, straight line from the destination's nearest node to the
destination. The detour factor is then not applied.

Points are given as GeoSeries / GeoDataFrames of points, or as ``(n, 2)`` arrays of coordinates.
A point with no location (null or empty geometry, NaN coordinates) is never paired and is never
anyone's nearest: its distances are NaN and its nearest destination is ``-1``. Results refer to
origins and destinations by *position* (0..n-1), not by index label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geopandas.array import GeometryArray

if TYPE_CHECKING:  # the network (networkx) is the caller's: never imported for the type alone
    from gis.network import WalkNetwork

#: How many Dijkstra sources are run at once (bounds memory to batch × network nodes floats).
_BATCH = 64
#: Tolerance (metres) for "within": a distance equal to the limit counts as within.
_EPS = 1e-6


def point_xy(points) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(n, 2)`` and a boolean "located" mask.

    ``points`` is a GeoSeries, GeoDataFrame, GeometryArray or object array of shapely
    geometries, or an ``(n, 2)`` array of coordinates. Null and empty geometries (or NaN
    coordinates) are not located; their coordinates are NaN. Non-point geometries are reduced to
    their centroid.
    """
    if isinstance(points, gpd.GeoDataFrame):
        points = points.geometry
    if isinstance(points, gpd.GeoSeries):
        points = points.values
    if isinstance(points, GeometryArray) or (
            isinstance(points, np.ndarray) and points.dtype == object):
        geoms = np.asarray(points, dtype=object)
        located = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        xy = np.full((len(geoms), 2), np.nan)
        if located.any():
            pts = geoms[located]
            not_point = shapely.get_type_id(pts) != 0
            if not_point.any():
                pts = np.where(not_point, shapely.centroid(pts), pts)
            xy[located, 0] = shapely.get_x(pts)
            xy[located, 1] = shapely.get_y(pts)
        return xy, located
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    return xy, ~np.isnan(xy).any(axis=1)


def walking_pairs(
    origins,
    destinations,
    *,
    max_m: float,
    detour_factor: float = 1.3,
    network: WalkNetwork | None = None,
) -> pd.DataFrame:
    """Every (origin, destination) pair whose walking distance is at most ``max_m``.

    Parameters
    ----------
    origins, destinations
        Points (GeoSeries / GeoDataFrame) or ``(n, 2)`` coordinate arrays.
    max_m
        Walking distance limit in metres (inclusive).
    detour_factor
        Straight-line multiplier, used only without a network.
    network
        A prepared walking network (:func:`gis.network.walk_network`), or None.

    Returns
    -------
    pandas.DataFrame
        Columns ``origin`` and ``destination`` (positions) and ``distance_m``, sorted by origin
        then distance.
    """
    oxy, ook = point_xy(origins)
    dxy, dok = point_xy(destinations)
    o_pos, d_pos = np.flatnonzero(ook), np.flatnonzero(dok)
    if len(o_pos) == 0 or len(d_pos) == 0:
        return _pairs_frame([], [], [])
    if network is None:
        radius = max_m / detour_factor
        tree_o, tree_d = _kdtree(oxy[o_pos]), _kdtree(dxy[d_pos])
        hits = tree_o.sparse_distance_matrix(tree_d, radius * (1 + 1e-12) + _EPS,
                                             output_type="ndarray")
        dist = hits["v"] * detour_factor
        keep = dist <= max_m + _EPS
        return _pairs_frame(o_pos[hits["i"][keep]], d_pos[hits["j"][keep]], dist[keep])
    o_node, o_snap = network.snap(oxy[o_pos])
    d_node, d_snap = network.snap(dxy[d_pos])
    out_o, out_d, out_v = [], [], []
    for batch in _batches(len(d_pos)):
        paths = _dijkstra(network.matrix, directed=False, indices=d_node[batch], limit=max_m)
        total = d_snap[batch, None] + paths[:, o_node] + o_snap[None, :]
        j, i = np.nonzero(total <= max_m + _EPS)
        out_o.append(o_pos[i])
        out_d.append(d_pos[batch][j])
        out_v.append(total[j, i])
    return _pairs_frame(np.concatenate(out_o), np.concatenate(out_d), np.concatenate(out_v))


def nearest_walking(
    origins,
    destinations,
    *,
    detour_factor: float = 1.3,
    network: WalkNetwork | None = None,
) -> pd.DataFrame:
    """The nearest destination of each origin by walking distance.

    Returns
    -------
    pandas.DataFrame
        One row per origin (RangeIndex, positions): ``nearest`` (destination position, ``-1``
        when the origin has no location, there is no located destination, or none is reachable
        on the network) and ``distance_m`` (NaN or inf in those cases: NaN for no location, inf
        for nothing reachable).
    """
    oxy, ook = point_xy(origins)
    dxy, dok = point_xy(destinations)
    n = len(oxy)
    nearest = np.full(n, -1, dtype=int)
    distance = np.where(ook, np.inf, np.nan)
    o_pos, d_pos = np.flatnonzero(ook), np.flatnonzero(dok)
    if len(o_pos) and len(d_pos):
        if network is None:
            dist, j = _kdtree(dxy[d_pos]).query(oxy[o_pos])
            nearest[o_pos] = d_pos[j]
            distance[o_pos] = dist * detour_factor
        else:
            j, dist = _network_nearest(network, oxy[o_pos], dxy[d_pos])
            reach = j >= 0
            nearest[o_pos[reach]] = d_pos[j[reach]]
            distance[o_pos] = dist
    return pd.DataFrame({"nearest": nearest, "distance_m": distance})


def paired_walking(
    origins,
    destinations,
    *,
    detour_factor: float = 1.3,
    network: WalkNetwork | None = None,
) -> np.ndarray:
    """Walking distance from ``origins[i]`` to ``destinations[i]`` for every ``i``.

    NaN where either point has no location; inf where the network does not connect them.
    """
    oxy, ook = point_xy(origins)
    dxy, dok = point_xy(destinations)
    if len(oxy) != len(dxy):
        raise ValueError(f"origins and destinations should be of equal length, got {len(oxy)} "
                         f"and {len(dxy)}")
    out = np.full(len(oxy), np.nan)
    both = np.flatnonzero(ook & dok)
    if len(both) == 0:
        return out
    if network is None:
        out[both] = np.hypot(*(oxy[both] - dxy[both]).T) * detour_factor
        return out
    o_node, o_snap = network.snap(oxy[both])
    d_node, d_snap = network.snap(dxy[both])
    sources, inverse = np.unique(d_node, return_inverse=True)
    path = np.empty(len(both))
    for batch in _batches(len(sources)):
        paths = _dijkstra(network.matrix, directed=False, indices=sources[batch])
        rows = np.isin(inverse, batch)
        local = np.searchsorted(batch, inverse[rows])
        path[rows] = paths[local, o_node[rows]]
    out[both] = o_snap + path + d_snap
    return out


def walking_matrix(
    origins,
    destinations,
    *,
    detour_factor: float = 1.3,
    network: WalkNetwork | None = None,
) -> np.ndarray:
    """Dense ``(n_origins, n_destinations)`` matrix of walking distances (for small problems).

    NaN in the rows and columns of points without a location; inf where the network does not
    connect two points.
    """
    oxy, ook = point_xy(origins)
    dxy, dok = point_xy(destinations)
    out = np.full((len(oxy), len(dxy)), np.nan)
    o_pos, d_pos = np.flatnonzero(ook), np.flatnonzero(dok)
    if len(o_pos) == 0 or len(d_pos) == 0:
        return out
    if network is None:
        diff = oxy[o_pos][:, None, :] - dxy[d_pos][None, :, :]
        out[np.ix_(o_pos, d_pos)] = np.hypot(diff[..., 0], diff[..., 1]) * detour_factor
        return out
    o_node, o_snap = network.snap(oxy[o_pos])
    d_node, d_snap = network.snap(dxy[d_pos])
    block = np.empty((len(o_pos), len(d_pos)))
    for batch in _batches(len(d_pos)):
        paths = _dijkstra(network.matrix, directed=False, indices=d_node[batch])
        block[:, batch] = (d_snap[batch, None] + paths[:, o_node] + o_snap[None, :]).T
    out[np.ix_(o_pos, d_pos)] = block
    return out


# --- private steps ------------------------------------------------------------------------------

def _kdtree(xy: np.ndarray):
    from scipy.spatial import cKDTree  # imported when used, as the graph routines below

    return cKDTree(xy)


def _dijkstra(graph, **kwargs):
    # scipy's graph routines (with its sparse linear algebra) cost about 0.15 s to import: paid by
    # the analyses on a walking network, not by every command that imports this module
    from scipy.sparse.csgraph import dijkstra

    return dijkstra(graph, **kwargs)


def _batches(n: int):
    for start in range(0, n, _BATCH):
        yield np.arange(start, min(n, start + _BATCH))


def _pairs_frame(o, d, v) -> pd.DataFrame:
    frame = pd.DataFrame({
        "origin": np.asarray(o, dtype=int),
        "destination": np.asarray(d, dtype=int),
        "distance_m": np.asarray(v, dtype=float),
    })
    return frame.sort_values(["origin", "distance_m", "destination"]).reset_index(drop=True)


def _network_nearest(network: WalkNetwork, oxy: np.ndarray, dxy: np.ndarray):
    """Nearest destination over the network, exact with each destination's own snap distance.

    Each destination becomes a virtual node tied to its nearest network node by an edge as long
    as its snap distance; one multi-source Dijkstra from all virtual nodes then gives, for every
    network node, the distance to (and the identity of) the nearest destination.
    """
    from scipy import sparse

    n = network.matrix.shape[0]
    m = len(dxy)
    d_node, d_snap = network.snap(dxy)
    tie = sparse.coo_matrix((np.maximum(d_snap, 1e-9), (np.arange(n, n + m), d_node)),
                            shape=(n + m, n + m))
    base = sparse.block_diag([network.matrix, sparse.csr_matrix((m, m))]).tocsr()
    graph = (base + tie + tie.T).tocsr()
    dist, _, sources = _dijkstra(graph, directed=False, indices=np.arange(n, n + m),
                                min_only=True, return_predecessors=True)
    o_node, o_snap = network.snap(oxy)
    total = dist[o_node] + o_snap
    nearest = sources[o_node]
    nearest = np.where(nearest >= 0, nearest - n, -1)
    return nearest, np.where(nearest >= 0, total, np.inf)
