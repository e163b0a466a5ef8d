"""Reading a walking network file for the analyses (the I/O edge of :mod:`gis.network`).

Two formats are read:

* **GraphML** (``.graphml``), e.g. saved by OSMnx (``osmnx.save_graphml``) or any tool that writes
  nodes with ``x``/``y`` and edges with ``length`` and a graph attribute ``crs``; read with
  :func:`networkx.read_graphml`.
* **OpenStreetMap** extracts (``.osm.pbf``, ``.pbf``, ``.osm``): read with pyosmium (libosmium's
  Python bindings, the reference reader of the PBF format), which resolves every way's node
  locations; the walkable ways become a graph through :func:`gis.network.osm_walk_graph`.

Either way the result is a :class:`gis.network.WalkNetwork` ready for :mod:`gis.distance`, in
:data:`gis.crs.METRIC`.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from gis.network import WalkNetwork, osm_walk_graph, walk_network
from karte.domain.errors import InputError

GRAPHML_SUFFIXES = (".graphml",)
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")


def read_walk_network(path: str | Path, *, crs=None) -> WalkNetwork:
    """Read a walking network from GraphML or an OpenStreetMap extract (PBF or XML).

    Parameters
    ----------
    path
        The file; its suffix chooses the reader.
    crs
        CRS of a GraphML file's node coordinates when the file does not name one.

    Raises
    ------
    karte.domain.errors.InputError
        Missing file, unknown suffix, unreadable content or no walkable way in it.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise InputError(f"歩行ネットワークのファイルがありません: {path}")
    try:
        if name.endswith(GRAPHML_SUFFIXES):
            graph = nx.read_graphml(path)
        elif name.endswith(OSM_SUFFIXES):
            graph = osm_walk_graph(_osm_ways(path))
        else:
            raise InputError(
                f"歩行ネットワークの形式が分かりません: {path.name}"
                f"（{', '.join(GRAPHML_SUFFIXES + OSM_SUFFIXES)} のいずれか）")
    except InputError:
        raise
    except Exception as exc:  # parser errors of networkx / libosmium
        raise InputError(f"歩行ネットワークを読めません: {path.name} ({type(exc).__name__}: {exc})") from exc
    if graph.number_of_edges() == 0:
        raise InputError(f"歩行ネットワークに歩ける道がありません: {path.name}")
    try:
        return walk_network(graph, crs=crs)
    except ValueError as exc:
        raise InputError(f"歩行ネットワークを使えません: {path.name} ({exc})") from exc


def _osm_ways(path: Path):
    """``(tags, [(node_id, lon, lat), ...])`` for every way with a ``highway`` tag."""
    import osmium

    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(osmium.filter.KeyFilter("highway")))
    for obj in processor:
        if not obj.is_way():
            continue
        nodes = [(n.ref, n.lon, n.lat) for n in obj.nodes if n.location.valid()]
        yield dict(obj.tags), nodes
