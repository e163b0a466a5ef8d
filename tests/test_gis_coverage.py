"""Salon coverage on the hand-built world (see gis_fixtures for the worked answers)."""

from __future__ import annotations

import gis_fixtures as fx
import networkx as nx
import numpy as np
import pytest

from gis.coverage import active_salons, coverage_by_district, salon_coverage, uncovered_cells
from gis.crs import METRIC
from gis.mesh import population_surface, square_grid
from gis.network import walk_network
from gis.params import AnalysisParams
from karte.domain.schema import VOCABULARY


def world_surface():
    small = fx.small_areas()
    return population_surface(small, square_grid(small, size=500))


def test_active_salons_by_frequency():
    services = fx.services()
    assert active_salons(services, vocab=VOCABULARY)["service_id"].tolist() == ["s1"]
    assert active_salons(services, vocab=VOCABULARY, min_per_month=0.5)["service_id"].tolist() == ["s1", "s2"]
    everything = active_salons(services, vocab=VOCABULARY, min_per_month=0)
    assert everything["service_id"].tolist() == ["s1", "s2", "s4"]


def test_active_salons_unknown_frequency_listed_and_null_not_counted():
    services = fx.services()
    services.loc[0, "frequency"] = None
    assert active_salons(services, vocab=VOCABULARY).empty
    services.loc[1, "frequency"] = "fortnightly"
    services.loc[3, "frequency"] = "daily"
    with pytest.raises(ValueError, match=r"\['daily', 'fortnightly'\]"):
        active_salons(services, vocab=VOCABULARY)


def test_border_salon_covers_both_sides():
    cov = salon_coverage(world_surface(), fx.services(), vocab=VOCABULARY).set_index(["key_code", "cell_id"])
    covered = sorted(cov.index[cov["covered"]].tolist())
    assert covered == [("a1", "1_0"), ("a1", "1_1"), ("b1", "2_0"), ("b1", "2_1")]
    assert cov.loc[("a1", "1_0"), "salon_m"] == pytest.approx(np.hypot(250, 250) * 1.3)
    assert cov.loc[("a1", "1_0"), "salon_id"] == "s1"
    assert cov.loc[("a1", "0_0"), "salon_m"] == pytest.approx(np.hypot(750, 250) * 1.3)


def test_coverage_by_district_with_city_beside():
    services = fx.services()
    cov = salon_coverage(world_surface(), services, vocab=VOCABULARY)
    table = coverage_by_district(cov, districts=fx.districts(),
                                 salons=active_salons(services, vocab=VOCABULARY))
    assert table.index.tolist() == ["A", "B", "C"]
    a, b, c = table.loc["A"], table.loc["B"], table.loc["C"]
    assert (a["elderly"], a["covered_elderly"], a["uncovered_elderly"]) == pytest.approx((400, 200, 200))
    assert a["coverage_elderly"] == pytest.approx(0.5)
    assert a["coverage_75_plus"] == pytest.approx(0.5)
    # B has no salon of its own, but the border salon covers the b1 half (600 of 800)
    assert b["salons"] == 0 and a["salons"] == 1
    assert b["coverage_elderly"] == pytest.approx(0.75)
    assert (b["covered_75_plus"], b["uncovered_75_plus"]) == pytest.approx((240, 80))
    # C: no salon and no elderly: share unknown, not 0 and not a division error
    assert c["elderly"] == 0 and c["salons"] == 0 and np.isnan(c["coverage_elderly"])
    assert table["city_coverage_elderly"].tolist() == pytest.approx([800 / 1200] * 3)
    assert table["city_coverage_75_plus"].iloc[0] == pytest.approx(320 / 480)


def test_winter_shortens_the_walk():
    cov = salon_coverage(world_surface(), fx.services(), vocab=VOCABULARY, params=AnalysisParams(winter=True))
    assert not cov["covered"].any()  # 459.6 m > 350 m
    table = coverage_by_district(cov)
    assert table["city_coverage_elderly"].iloc[0] == 0


def test_less_frequent_salons_count_when_asked():
    cov = salon_coverage(world_surface(), fx.services(),
                         vocab=VOCABULARY, params=AnalysisParams(min_salon_per_month=0.5))
    table = coverage_by_district(cov)
    assert table.loc["A", "coverage_elderly"] == pytest.approx(0.75)  # s2 covers cell 0_0


def test_detour_factor_is_configurable():
    cov = salon_coverage(world_surface(), fx.services(), vocab=VOCABULARY,
                         params=AnalysisParams(detour_factor=1.5))
    assert not cov["covered"].any()  # 353.55 × 1.5 = 530 m


def test_district_missing_from_surface_gets_a_row():
    cov = salon_coverage(world_surface(), fx.services(), vocab=VOCABULARY)
    districts = fx.districts()
    districts.loc[3] = ["D", "丁", fx.square(5000, 0, 6000, 1000)]
    table = coverage_by_district(cov, districts=districts)
    assert table.loc["D", "elderly"] == 0 and np.isnan(table.loc["D", "coverage_elderly"])


def test_uncovered_cells_layer():
    cells = uncovered_cells(salon_coverage(world_surface(), fx.services(), vocab=VOCABULARY))
    assert sorted(zip(cells["cell_id"], cells["district_code"], strict=True)) == [
        ("0_0", "A"), ("0_1", "A"), ("3_0", "B"), ("3_1", "B")]
    assert cells["elderly"].tolist() == pytest.approx([100] * 4)
    assert cells.set_index("cell_id").loc["0_0", "salon_m"] == pytest.approx(np.hypot(750, 250) * 1.3)
    assert cells.crs == METRIC and cells.geometry.area.tolist() == pytest.approx([250_000] * 4)


def test_uncovered_cells_when_everyone_is_covered():
    cells = uncovered_cells(salon_coverage(world_surface(), fx.services(),
                                           vocab=VOCABULARY, params=AnalysisParams(walk_m=5000)))
    assert cells.empty and "elderly" in cells.columns


def test_cell_split_by_a_district_border_is_not_double_counted():
    # on a 1500 m grid, cell 0_0 spans A and half of B: it becomes two pieces, one per district
    small = fx.small_areas()
    surface = population_surface(small, square_grid(small, size=1500))
    cov = salon_coverage(surface, fx.services(), vocab=VOCABULARY, params=AnalysisParams(walk_m=5000))
    table = coverage_by_district(cov)
    assert table.loc["A", "elderly"] == pytest.approx(400)
    assert table.loc["B", "elderly"] == pytest.approx(800)
    cells = surface[surface["cell_id"] == "0_0"]
    assert sorted(cells["district_code"]) == ["A", "B"]


def test_network_coverage_differs_from_straight_line():
    # a wall along x = 1000 with a single gate far north: the border salon is 250 m east of
    # cell 1_0's centre (750, 250) in a straight line, but on the network it is a long way round
    g = nx.Graph(crs=METRIC)
    nodes = {"w": (750, 250), "gate_w": (990, 5000), "gate_e": (1010, 5000), "salon": (1000, 500)}
    for n, (x, y) in nodes.items():
        g.add_node(n, x=x, y=y)
    g.add_edge("w", "gate_w")
    g.add_edge("gate_w", "gate_e")
    g.add_edge("gate_e", "salon")
    net = walk_network(g)
    surface = world_surface()
    surface = surface[surface["cell_id"] == "1_0"]
    straight = salon_coverage(surface, fx.services(), vocab=VOCABULARY)
    walked = salon_coverage(surface, fx.services(), vocab=VOCABULARY, network=net)
    assert straight["covered"].all()
    assert not walked["covered"].any()
    expected = np.hypot(240, 4750) + 20 + np.hypot(10, 4500)
    assert walked["salon_m"].iloc[0] == pytest.approx(expected)


def test_missing_columns_and_crs_are_all_reported():
    surface = world_surface().drop(columns=["x"])
    services = fx.services().drop(columns=["frequency"]).to_crs("EPSG:6677")
    with pytest.raises(ValueError) as err:
        salon_coverage(surface, services, vocab=VOCABULARY)
    text = str(err.value)
    assert "'surface' lacks the columns ['x']" in text
    assert "'services' lacks the columns ['frequency']" in text
    with pytest.raises(ValueError, match="CRS of 'surface'"):
        salon_coverage(world_surface(), fx.services().to_crs("EPSG:6677"), vocab=VOCABULARY)
    with pytest.raises(ValueError, match=r"lacks the columns \['covered'\]"):
        coverage_by_district(world_surface())
    with pytest.raises(ValueError, match="should be a DataFrame, got list"):
        uncovered_cells([])
