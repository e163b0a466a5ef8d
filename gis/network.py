"""A walking network prepared for distance queries.

The input is a :mod:`networkx` graph as read from GraphML (``networkx.read_graphml`` or
``osmnx.load_graphml``): nodes with ``x`` and ``y``, edges with ``length`` in metres, and a graph
attribute ``crs``. An OpenStreetMap extract (OSM PBF) becomes such a graph with
:func:`osm_walk_graph`, from the ways that the caller's reader (e.g. with pyosmium) hands over.
Reading files is the caller's job, this module stays pure.

Shortest paths are computed with :func:`scipy.sparse.csgraph.dijkstra` on a compressed sparse
copy of the graph: the same Dijkstra as networkx, in C, and able to run from many sources at once
with a distance limit, which is what coverage and supporter queries need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyproj

from gis.crs import METRIC

if TYPE_CHECKING:  # networkx and scipy's graph modules cost 0.25 s: imported by the functions using them
    import networkx as nx
    from scipy import sparse
    from scipy.spatial import cKDTree


@dataclass(frozen=True)
class WalkNetwork:
    """A walking network in :data:`gis.crs.METRIC`, ready for :mod:`gis.distance`.

    Attributes
    ----------
    nodes
        Original node ids, position ``i`` is row/column ``i`` of ``matrix``.
    xy
        Node coordinates (metres), shape (n, 2).
    matrix
        Symmetric sparse matrix of edge lengths (metres), the shortest edge between two nodes.
    tree
        KD-tree over ``xy``, to snap points to their nearest node.
    """

    nodes: np.ndarray
    xy: np.ndarray
    matrix: sparse.csr_matrix
    tree: cKDTree

    def snap(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node index and straight-line distance to it, for each point (n, 2)."""
        if len(xy) == 0:
            return np.zeros(0, dtype=int), np.zeros(0)
        dist, idx = self.tree.query(xy)
        return np.asarray(idx, dtype=int), np.asarray(dist, dtype=float)


def walk_network(graph: nx.Graph, *, crs=None) -> WalkNetwork:
    """Prepare a networkx walking graph (e.g. read from GraphML) for distance queries.

    Parameters
    ----------
    graph
        Any networkx graph (directed or not, multi or not). Nodes need ``x`` and ``y``; edges may
        carry ``length`` (metres); an edge without one gets the straight-line length between its
        ends. Attribute values may be text, as GraphML gives them. Walking ignores one-way streets:
        every edge is walkable both ways.
    crs
        CRS of the node coordinates; default the graph's ``crs`` attribute (OSMnx sets it).
        Geographic coordinates are projected to :data:`gis.crs.METRIC`.

    Returns
    -------
    WalkNetwork
    """
    from scipy.spatial import cKDTree

    crs = crs if crs is not None else graph.graph.get("crs")
    if crs is None:
        raise ValueError("the walking network has no 'crs' graph attribute; pass crs=")
    if graph.number_of_nodes() == 0:
        raise ValueError("the walking network has no nodes")
    nodes = list(graph.nodes)
    problems = [n for n in nodes if "x" not in graph.nodes[n] or "y" not in graph.nodes[n]]
    if problems:
        raise ValueError(f"nodes without x/y coordinates: {problems[:10]}"
                         + (f" and {len(problems) - 10} more" if len(problems) > 10 else ""))
    x = np.array([float(graph.nodes[n]["x"]) for n in nodes])
    y = np.array([float(graph.nodes[n]["y"]) for n in nodes])
    source = pyproj.CRS.from_user_input(crs)
    target = pyproj.CRS.from_user_input(METRIC)
    if source != target:
        x, y = pyproj.Transformer.from_crs(source, target, always_xy=True).transform(x, y)
    xy = np.column_stack([x, y])
    position = {n: i for i, n in enumerate(nodes)}

    rows, cols, lengths = [], [], []
    for u, v, data in graph.edges(data=True):
        i, j = position[u], position[v]
        if i == j:
            continue
        length = data.get("length")
        length = float(np.hypot(*(xy[i] - xy[j]))) if length in (None, "") else float(length)
        rows.append(min(i, j))
        cols.append(max(i, j))
        lengths.append(length)
    n = len(nodes)
    matrix = _shortest_edges(np.array(rows, dtype=int), np.array(cols, dtype=int),
                             np.array(lengths, dtype=float), n)
    return WalkNetwork(nodes=np.array(nodes, dtype=object), xy=xy, matrix=matrix, tree=cKDTree(xy))


#: ``highway`` values nobody walks on (as OSMnx's "walk" network leaves out, less ``trunk``:
#: Japanese national roads have pavements).
NOT_WALKABLE = frozenset({"abandoned", "bus_guideway", "construction", "cycleway", "motor",
                          "motorway", "motorway_link", "no", "planned", "proposed", "raceway",
                          "razed"})
#: ``foot`` / ``access`` values that close a way to walkers, and ``foot`` values that reopen it.
_CLOSED = frozenset({"no", "private"})
_FOOT_OK = frozenset({"yes", "designated", "permissive"})


def osm_walk_graph(ways, *, crs="EPSG:4326") -> nx.Graph:
    """A walking graph from OpenStreetMap ways (as read from an OSM PBF file).

    Parameters
    ----------
    ways
        Iterable of ``(tags, nodes)``: ``tags`` a mapping of the way's tags, ``nodes`` its node
        sequence as ``(node_id, x, y)`` (longitude, latitude for OSM data).
    crs
        CRS of the node coordinates (OSM: WGS84).

    Returns
    -------
    networkx.Graph
        Undirected (walking ignores one-way streets), nodes with ``x`` and ``y``, one edge per
        pair of consecutive nodes of a walkable way, graph attribute ``crs``; lengths are left to
        :func:`walk_network`, which measures them after projecting to metres. A way is walkable
        when it has a ``highway`` tag not in :data:`NOT_WALKABLE`, is not an area
        (``area=yes``), and neither ``foot`` nor ``access`` is ``no``/``private`` (an explicit
        ``foot=yes``/``designated``/``permissive`` overrides ``access``).
    """
    import networkx as nx

    graph = nx.Graph(crs=crs)
    for tags, nodes in ways:
        if not _walkable(tags):
            continue
        previous = None
        for node_id, x, y in nodes:
            graph.add_node(node_id, x=float(x), y=float(y))
            if previous is not None and previous != node_id:
                graph.add_edge(previous, node_id)
            previous = node_id
    return graph


def _walkable(tags) -> bool:
    highway = tags.get("highway")
    if highway is None or highway in NOT_WALKABLE or tags.get("area") == "yes":
        return False
    foot = tags.get("foot")
    if foot in _CLOSED:
        return False
    return not (tags.get("access") in _CLOSED and foot not in _FOOT_OK)


def _shortest_edges(rows, cols, lengths, n) -> sparse.csr_matrix:
    """Symmetric CSR matrix keeping the shortest of parallel edges (a zero length stays an edge)."""
    from scipy import sparse

    if len(rows):
        order = np.lexsort((lengths, cols, rows))
        rows, cols, lengths = rows[order], cols[order], lengths[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, lengths = rows[first], cols[first], lengths[first]
    # csgraph treats explicit zeros as "no edge": a zero-length edge gets a tiny positive length
    lengths = np.maximum(lengths, 1e-9)
    upper = sparse.coo_matrix((lengths, (rows, cols)), shape=(n, n))
    return (upper + upper.T).tocsr()
