"""Walking networks from files: OSM PBF and GraphML, written here from a small network.

The network is the river of test_gis_distance, in longitude/latitude as OSM has it:

    n1 (0, 300) ---400--- n2 (400, 300)      metres, EPSG:6678 around a point in Aomori
    |                         |
   300  footway / residential 300
    |                         |
    n0 (0, 0)   ~~ river ~~  n3 (400, 0)

with ways across the river that a walker may *not* use: a motorway bridge n0-n3, a private
footbridge (access=private), and a proposed bridge. A second footbridge with access=private but
foot=yes may be used only when ``open_bridge`` is set. The origin (0, -10) snaps to n0 (10 m)
and the salon (400, -20) to n3 (20 m): 10 + 1000 + 20 = 1030 m round the river, 430 m across.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.crs import METRIC, WGS84
from gis.distance import nearest_walking, paired_walking
from gis.network import osm_walk_graph, walk_network
from karte.domain.errors import InputError
from karte.domain.schema import VOCABULARY
from karte.walknet import read_walk_network

# a base point in Aomori city (EPSG:6678 metres), so the projection round trip is realistic
X0, Y0 = -4000.0, 91000.0
METRIC_NODES = {1: (0, 0), 2: (0, 300), 3: (400, 300), 4: (400, 0), 5: (200, 0)}
ORIGIN = np.array([[X0 + 0, Y0 - 10]])
SALON = np.array([[X0 + 400, Y0 - 20]])


def lonlat() -> dict[int, tuple[float, float]]:
    pts = gpd.GeoSeries(shapely.points([(X0 + x, Y0 + y) for x, y in METRIC_NODES.values()]),
                        crs=METRIC).to_crs(WGS84)
    return {n: (p.x, p.y) for n, p in zip(METRIC_NODES, pts, strict=True)}


def ways(open_bridge: bool = False):
    """(way id, tags, node ids) of the river network."""
    return [
        (10, {"highway": "footway"}, [1, 2]),
        (11, {"highway": "residential", "oneway": "yes"}, [3, 2]),  # one-way: walkable both ways
        (12, {"highway": "footway"}, [3, 4]),
        (20, {"highway": "motorway"}, [1, 4]),
        (21, {"highway": "footway", "access": "private"}, [1, 5, 4]),
        (22, {"highway": "proposed"}, [1, 4]),
        (23, {"highway": "footway", "access": "private", "foot": "yes" if open_bridge else "no"},
         [1, 5, 4]),
        (30, {"waterway": "river"}, [1, 4]),  # not a road at all
    ]


def write_pbf(path, open_bridge: bool = False) -> None:
    import osmium

    where = lonlat()
    with osmium.SimpleWriter(str(path)) as writer:
        for node, (lon, lat) in where.items():
            writer.add_node(osmium.osm.mutable.Node(id=node, location=(lon, lat), version=1))
        for way_id, tags, nodes in ways(open_bridge):
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=nodes, tags=tags, version=1))


def test_osm_walk_graph_keeps_walkable_ways_only():
    where = lonlat()
    graph = osm_walk_graph((tags, [(n, *where[n]) for n in nodes]) for _, tags, nodes in ways())
    assert sorted(tuple(sorted(e)) for e in graph.edges) == [(1, 2), (2, 3), (3, 4)]
    assert graph.graph["crs"] == WGS84
    opened = osm_walk_graph((tags, [(n, *where[n]) for n in nodes])
                            for _, tags, nodes in ways(open_bridge=True))
    assert {(1, 5), (4, 5)} <= {tuple(sorted(e)) for e in opened.edges}


def test_pbf_network_goes_round_the_river(tmp_path):
    path = tmp_path / "walk.osm.pbf"
    write_pbf(path)
    net = read_walk_network(path)
    assert len(net.nodes) == 4  # node 5 only lies on closed bridges
    assert paired_walking(ORIGIN, SALON, network=net)[0] == pytest.approx(1030, abs=0.05)
    assert nearest_walking(ORIGIN, SALON, network=net)["distance_m"].iloc[0] == pytest.approx(1030, abs=0.05)


def test_pbf_footbridge_open_to_walkers_shortens_it(tmp_path):
    path = tmp_path / "walk.pbf"
    write_pbf(path, open_bridge=True)
    net = read_walk_network(path)
    assert paired_walking(ORIGIN, SALON, network=net)[0] == pytest.approx(10 + 400 + 20, abs=0.05)


def test_graphml_file_gives_the_same_distance(tmp_path):
    g = nx.MultiDiGraph(crs=METRIC)
    for node, (x, y) in METRIC_NODES.items():
        g.add_node(str(node), x=X0 + x, y=Y0 + y)
    for u, v in [(1, 2), (2, 3), (4, 3)]:
        g.add_edge(str(u), str(v))  # no lengths: measured from the coordinates
    path = tmp_path / "walk.graphml"
    nx.write_graphml(g, path)
    net = read_walk_network(path)
    assert paired_walking(ORIGIN, SALON, network=net)[0] == pytest.approx(1030)


def test_bad_network_files_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="ありません"):
        read_walk_network(tmp_path / "missing.osm.pbf")
    other = tmp_path / "walk.shp"
    other.write_text("x")
    with pytest.raises(InputError, match="形式"):
        read_walk_network(other)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"not a pbf file at all")
    with pytest.raises(InputError, match="読めません"):
        read_walk_network(broken)
    no_roads = tmp_path / "rivers.osm.pbf"
    import osmium

    with osmium.SimpleWriter(str(no_roads)) as writer:
        writer.add_node(osmium.osm.mutable.Node(id=1, location=(140.7, 40.8), version=1))
        writer.add_node(osmium.osm.mutable.Node(id=2, location=(140.71, 40.8), version=1))
        writer.add_way(osmium.osm.mutable.Way(id=1, nodes=[1, 2], tags={"waterway": "river"}, version=1))
    with pytest.raises(InputError, match="歩ける道"):
        read_walk_network(no_roads)


def test_coverage_on_a_pbf_network(tmp_path):
    """The read network plugs into the analyses: a salon across the river is out of reach."""
    from gis.coverage import salon_coverage
    from gis.params import AnalysisParams

    path = tmp_path / "walk.osm.pbf"
    write_pbf(path)
    net = read_walk_network(path)
    surface = gpd.GeoDataFrame({"x": ORIGIN[:, 0], "y": ORIGIN[:, 1], "elderly": [10.0]},
                               geometry=shapely.points(ORIGIN), crs=METRIC)
    services = gpd.GeoDataFrame({"service_id": ["s"], "kind": ["salon"], "frequency": ["weekly"]},
                                geometry=shapely.points(SALON), crs=METRIC)
    params = AnalysisParams(walk_m=600)  # straight line: 400 m × 1.3 = 520 m, within reach
    straight = salon_coverage(surface, services, vocab=VOCABULARY, params=params)
    walked = salon_coverage(surface, services, vocab=VOCABULARY, params=params, network=net)
    assert straight["covered"].all() and not walked["covered"].any()
    assert walked["salon_m"].iloc[0] == pytest.approx(1030, abs=0.05)


def river_net():
    """The river network built in memory (metres, around the base point)."""
    g = nx.Graph(crs=METRIC)
    for node, (x, y) in METRIC_NODES.items():
        if node != 5:
            g.add_node(node, x=X0 + x, y=Y0 + y)
    g.add_edge(1, 2)
    g.add_edge(2, 3)
    g.add_edge(3, 4)
    return walk_network(g)


def at(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def test_gaps_and_suggestions_follow_the_network():
    """Straight line, cooperator A across the river (400 m) beats B up the bank (430 m); on the
    network A is 1030 m away and B 430 m."""
    from gis.gaps import evacuation_gaps
    from gis.params import AnalysisParams
    from gis.suggest import suggest_supporters

    params = AnalysisParams(detour_factor=1.0, supporter_max_m=500)
    coop = gpd.GeoDataFrame({"cooperator_id": ["A", "B"], "help_kinds": ["evacuation"] * 2,
                             "capacity": pd.array([1, 1], dtype="Int64"), "district_code": ["X", "X"]},
                            geometry=[at(400, -20), at(0, 420)], crs=METRIC)
    reg = gpd.GeoDataFrame({"person_id": ["P", "Q"], "supporter_ids": ["", "A"], "consent": ["consented"] * 2,
                            "plan_status": ["done"] * 2, "district_code": ["X", "X"]},
                           geometry=[at(0, -10), at(0, -10)], crs=METRIC)
    straight = suggest_supporters(reg, coop, vocab=VOCABULARY, params=params)
    assert straight["cooperator_id"].tolist() == ["B"]  # A is taken (by Q), B is the only one free
    coop.loc[0, "capacity"] = 2  # now A has room: straight line prefers A, the network B
    assert suggest_supporters(reg, coop, vocab=VOCABULARY, params=params)["cooperator_id"].tolist() == ["A"]
    walked = suggest_supporters(reg, coop, vocab=VOCABULARY, params=params, network=river_net())
    assert walked["cooperator_id"].tolist() == ["B"]
    assert walked["distance_m"].iloc[0] == pytest.approx(120 + 300 + 10)

    empty = gpd.GeoDataFrame({"shelter_id": [], "welfare": []}, geometry=[], crs=METRIC)
    sites = gpd.GeoDataFrame({"site_id": ["e"], "hazard_earthquake": [True]}, geometry=[at(0, 0)],
                             crs=METRIC)
    line = evacuation_gaps(reg, coop, empty, sites, vocab=VOCABULARY, params=params).set_index("person_id")
    net = evacuation_gaps(reg, coop, empty, sites, vocab=VOCABULARY, params=params,
                          network=river_net()).set_index("person_id")
    assert not line.loc["Q", "supporter_far"] and net.loc["Q", "supporter_far"]
    assert net.loc["Q", "supporter_m"] == pytest.approx(1030)
