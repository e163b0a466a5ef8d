"""Walking distance: straight line × detour, and along a small network built here."""

from __future__ import annotations

import geopandas as gpd
import gis_fixtures as fx
import networkx as nx
import numpy as np
import pytest
import shapely

from gis.crs import METRIC, WGS84
from gis.distance import nearest_walking, paired_walking, point_xy, walking_matrix, walking_pairs
from gis.network import walk_network
from gis.params import HAZARD_NAMES, AnalysisParams
from karte.domain.schema import HAZARDS

# --- parameters ---------------------------------------------------------------------------------


def test_params_defaults_and_winter():
    p = AnalysisParams()
    assert (p.detour_factor, p.walk_m, p.supporter_max_m, p.min_salon_per_month) == (1.3, 500, 300, 1)
    assert p.salon_walk_m == 500 and p.site_walk_m == 1000 and p.suggest_m == 300
    w = AnalysisParams(winter=True)
    assert w.salon_walk_m == pytest.approx(350) and w.site_walk_m == pytest.approx(700)
    assert w.welfare_m == 3000 and w.supporter_max_m == 300  # not shortened by snow
    assert AnalysisParams(suggest_max_m=800).suggest_m == 800


def test_params_report_every_problem_at_once():
    with pytest.raises(ValueError) as err:
        AnalysisParams(walk_m=-1, hazard="meteor", detour_factor=0.5, mesh_level=9)
    text = str(err.value)
    for name in ("walk_m", "hazard", "detour_factor", "mesh_level"):
        assert name in text


def test_hazard_names_match_the_schema():
    assert tuple(HAZARDS) == HAZARD_NAMES


# --- straight line ------------------------------------------------------------------------------


def test_point_xy_marks_null_and_empty_as_not_located():
    pts = gpd.GeoSeries([shapely.Point(1, 2), None, shapely.Point()], crs=METRIC)
    xy, located = point_xy(pts)
    assert located.tolist() == [True, False, False]
    assert xy[0].tolist() == [1, 2] and np.isnan(xy[1:]).all()


def test_straight_line_pairs_apply_the_detour_factor():
    origins = gpd.GeoSeries([shapely.Point(0, 0), None, shapely.Point(300, 400)], crs=METRIC)
    dests = gpd.GeoSeries([shapely.Point(300, 0), shapely.Point(0, 1000)], crs=METRIC)
    pairs = walking_pairs(origins, dests, max_m=500, detour_factor=1.3)
    assert pairs[["origin", "destination"]].values.tolist() == [[0, 0]]
    assert pairs["distance_m"].iloc[0] == pytest.approx(390)
    # 400 straight = 520 walking: outside 500, inside 520 (the limit is inclusive)
    wider = walking_pairs(origins, dests, max_m=520, detour_factor=1.3)
    assert wider[["origin", "destination"]].values.tolist() == [[0, 0], [2, 0]]
    assert wider["distance_m"].tolist() == pytest.approx([390, 520])


def test_nearest_and_paired_and_matrix_agree():
    origins = gpd.GeoSeries([shapely.Point(0, 0), shapely.Point(), shapely.Point(900, 0)], crs=METRIC)
    dests = gpd.GeoSeries([shapely.Point(300, 0), None, shapely.Point(1000, 0)], crs=METRIC)
    near = nearest_walking(origins, dests, detour_factor=2.0)
    assert near["nearest"].tolist() == [0, -1, 2]
    assert near["distance_m"].iloc[0] == pytest.approx(600)
    assert np.isnan(near["distance_m"].iloc[1])
    assert near["distance_m"].iloc[2] == pytest.approx(200)
    paired = paired_walking(origins, dests, detour_factor=2.0)
    assert paired[0] == pytest.approx(600) and np.isnan(paired[1]) and paired[2] == pytest.approx(200)
    matrix = walking_matrix(origins, dests, detour_factor=2.0)
    assert matrix[0, 2] == pytest.approx(2000) and np.isnan(matrix[1]).all()
    assert np.isnan(matrix[:, 1]).all()


def test_nearest_with_no_destinations():
    near = nearest_walking(gpd.GeoSeries([shapely.Point(0, 0)], crs=METRIC),
                           gpd.GeoSeries([], crs=METRIC))
    assert near["nearest"].tolist() == [-1] and np.isinf(near["distance_m"].iloc[0])


# --- network ------------------------------------------------------------------------------------
#
# A river runs between (0, 0) and (400, 0); the only way across is the long way round:
#   n1 (0, 300) ---400--- n2 (400, 300)
#   |                         |
#  300                       300
#   |                         |
#   n0 (0, 0)      river     n3 (400, 0)
# The origin (0, -10) snaps to n0 (10 m), the salon (400, -20) to n3 (20 m):
# network distance 10 + 1000 + 20 = 1030 m; with a bridge n0-n3 (400 m): 430 m.

ORIGIN = (0, -10)
SALON = (400, -20)


def river_graph(bridge: bool = False) -> nx.Graph:
    g = nx.Graph(crs=METRIC)
    for node, (x, y) in {"n0": (0, 0), "n1": (0, 300), "n2": (400, 300), "n3": (400, 0)}.items():
        g.add_node(node, x=x, y=y)
    g.add_edge("n0", "n1", length=300)
    g.add_edge("n1", "n2", length=400)
    g.add_edge("n2", "n3", length=300)
    if bridge:
        g.add_edge("n0", "n3", length=400)
    return g


def test_network_distance_goes_round_the_river():
    net = walk_network(river_graph())
    origins, salons = np.array([ORIGIN], float), np.array([SALON], float)
    assert paired_walking(origins, salons, network=net)[0] == pytest.approx(1030)
    assert nearest_walking(origins, salons, network=net)["distance_m"].iloc[0] == pytest.approx(1030)
    assert walking_matrix(origins, salons, network=net)[0, 0] == pytest.approx(1030)
    assert walking_pairs(origins, salons, max_m=1000, network=net).empty
    assert len(walking_pairs(origins, salons, max_m=1030, network=net)) == 1
    # straight line × 1.3 would have said 520 m
    assert paired_walking(origins, salons)[0] == pytest.approx(np.hypot(400, 10) * 1.3)


def test_network_bridge_shortens_it():
    net = walk_network(river_graph(bridge=True))
    pairs = walking_pairs(np.array([ORIGIN], float), np.array([SALON], float), max_m=500, network=net)
    assert pairs["distance_m"].tolist() == pytest.approx([430])


def test_network_nearest_uses_each_destinations_own_snap_distance():
    # two destinations snap to the same node n0; the one closer to n0 wins
    net = walk_network(river_graph())
    dests = np.array([[0, -50], [0, -5], [400, 0]], float)
    near = nearest_walking(np.array([[0, 290]], float), dests, network=net)  # snaps to n1, 10 m
    assert near["nearest"].iloc[0] == 1
    assert near["distance_m"].iloc[0] == pytest.approx(10 + 300 + 5)


def test_disconnected_network_is_unreachable_not_zero():
    g = river_graph()
    g.add_node("island", x=5000, y=5000)
    net = walk_network(g)
    near = nearest_walking(np.array([[5000, 5010]], float), np.array([SALON], float), network=net)
    assert near["nearest"].iloc[0] == -1 and np.isinf(near["distance_m"].iloc[0])
    assert np.isinf(paired_walking(np.array([[5000, 5010]], float), np.array([SALON], float),
                                   network=net)[0])


def test_graphml_round_trip_with_text_attributes(tmp_path):
    g = nx.MultiDiGraph(crs=METRIC)
    for node, (x, y) in {"n0": (0, 0), "n1": (0, 300), "n2": (400, 300), "n3": (400, 0)}.items():
        g.add_node(node, x=str(x), y=str(y))
    g.add_edge("n0", "n1", length="300")
    g.add_edge("n1", "n2", length="400")
    g.add_edge("n1", "n2", length="900")  # a parallel, longer edge: the shorter is kept
    g.add_edge("n3", "n2")  # one-way the wrong way and no length: walkable, 300 m from x/y
    path = tmp_path / "walk.graphml"
    nx.write_graphml(g, path)
    net = walk_network(nx.read_graphml(path))
    assert paired_walking(np.array([ORIGIN], float), np.array([SALON], float),
                          network=net)[0] == pytest.approx(1030)


def test_geographic_network_is_projected():
    metric = river_graph()
    lon, lat = gpd.GeoSeries(shapely.points([(metric.nodes[n]["x"], metric.nodes[n]["y"])
                                             for n in metric.nodes]), crs=METRIC).to_crs(WGS84).pipe(
        lambda s: (s.x.to_numpy(), s.y.to_numpy()))
    g = nx.Graph(crs=WGS84)
    for i, node in enumerate(metric.nodes):
        g.add_node(node, x=lon[i], y=lat[i])
    g.add_edges_from(metric.edges)  # no lengths: computed from projected coordinates
    net = walk_network(g)
    assert paired_walking(np.array([ORIGIN], float), np.array([SALON], float),
                          network=net)[0] == pytest.approx(1030, abs=0.01)


def test_network_without_crs_is_refused():
    g = river_graph()
    del g.graph["crs"]
    with pytest.raises(ValueError, match="crs"):
        walk_network(g)


def test_world_supporter_distances_with_default_detour():
    reg, coop = fx.register().set_index("person_id"), fx.cooperators().set_index("cooperator_id")
    d = paired_walking(reg.geometry[["P1", "P3", "P5"]].values,
                       coop.geometry[["C1", "C2", "C3"]].values)
    assert d == pytest.approx([260, 260, np.hypot(400, 400) * 1.3])
