"""Candidate salon sites: greedy and exact maximal covering, on a line of demand points.

Demand (uncovered elderly) on a line, walking distance 100 m, detour 1.0:

    a (0, 0) 5    b (150, 0) 5    c (300, 0) 5    d (450, 0) 5    e (225, 90) 1
    f (75, 0) 100, already covered by a salon: never counts.

Candidates: S1 (75, 0) covers a, b (10); S2 (375, 0) covers c, d (10); S3 (225, 0) covers b, c, e
(11); S4 (5000, 0) covers nobody. For k = 2 greedy takes S3 then S1 (16); the optimum is S1 + S2
(20).
"""

from __future__ import annotations

import gis_fixtures as fx
import numpy as np
import pytest

from gis.coverage import salon_coverage
from gis.mesh import population_surface, square_grid
from gis.params import AnalysisParams
from gis.siting import candidate_venues, site_salons
from karte.domain.schema import VOCABULARY

PARAMS = AnalysisParams(walk_m=100, detour_factor=1.0)


def demand():
    coords = [(0, 0), (150, 0), (300, 0), (450, 0), (225, 90), (75, 0)]
    frame = fx.points(coords, elderly=[5.0, 5, 5, 5, 1, 100], age_75_plus=[1.0, 1, 1, 1, 1, 1],
                      covered=[False] * 5 + [True])
    frame["x"] = [c[0] for c in coords]
    frame["y"] = [c[1] for c in coords]
    return frame


def candidates():
    return fx.points([(75, 0), (375, 0), (225, 0), (5000, 0)], name=["S1", "S2", "S3", "S4"])


def test_greedy_takes_the_biggest_first():
    sites = site_salons(demand(), candidates(), k=2, params=PARAMS, method="greedy")
    assert sites["name"].tolist() == ["S3", "S1"]
    assert sites["gain"].tolist() == pytest.approx([11, 5])
    assert sites["cumulative_gain"].tolist() == pytest.approx([11, 16])
    assert sites["rank"].tolist() == [1, 2] and set(sites["method"]) == {"greedy"}


def test_exact_finds_the_optimum_greedy_misses():
    sites = site_salons(demand(), candidates(), k=2, params=PARAMS, method="exact")
    assert sites["name"].tolist() == ["S1", "S2"]
    assert sites["gain"].tolist() == pytest.approx([10, 10])
    assert sites["cumulative_gain"].iloc[-1] == pytest.approx(20)


def test_auto_is_exact_when_small():
    sites = site_salons(demand(), candidates(), k=2, params=PARAMS)
    assert set(sites["method"]) == {"exact"} and sites["gain"].sum() == pytest.approx(20)


@pytest.mark.parametrize("method", ["greedy", "exact"])
def test_never_more_sites_than_useful_ones(method):
    sites = site_salons(demand(), candidates(), k=10, params=PARAMS, method=method)
    assert sorted(sites["name"]) == ["S1", "S2", "S3"]  # S4 covers nobody
    assert sites["gain"].sum() == pytest.approx(21)
    assert (np.diff(sites["gain"].to_numpy()) <= 1e-9).all()  # ranked by gain


def test_weight_column_and_k_zero():
    sites = site_salons(demand(), candidates(), k=1, params=PARAMS, weight="age_75_plus")
    assert sites["name"].tolist() == ["S3"] and sites["gain"].tolist() == pytest.approx([3])
    assert site_salons(demand(), candidates(), k=0, params=PARAMS).empty


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        site_salons(demand(), candidates(), k=1, method="best")
    with pytest.raises(ValueError, match="no column"):
        site_salons(demand(), candidates(), k=1, weight="nope")
    with pytest.raises(ValueError, match="CRS"):
        site_salons(demand(), candidates().to_crs("EPSG:6677"), k=1)


def test_world_site_covers_the_uncovered_west():
    # in the world, only cells 0_0, 0_1 (A) and 3_0, 3_1 (B) are uncovered, 100 elderly each
    small = fx.small_areas()
    cov = salon_coverage(population_surface(small, square_grid(small, size=500)), fx.services(),
                         vocab=VOCABULARY)
    venues = fx.points([(250, 500), (1750, 500), (2500, 500)], name=["west", "east", "c"])
    sites = site_salons(cov, venues, k=3)
    assert sites["name"].tolist() == ["west", "east"]  # c covers no elderly
    assert sites["gain"].tolist() == pytest.approx([200, 200])


# --- candidate venues ---------------------------------------------------------------------------


def venue_layers():
    shelters = fx.points([(0, 0), (500, 0), (900, 0), (2000, 0)],
                         shelter_id=["h1", "h2", "h3", "h4"],
                         name=["桜小学校", "桜福祉館", "桜公民館", "中央市民センター分館"])
    sites = fx.points([(10, 10), (520, 0), (3000, 0), (4000, 0), (900, 900)],
                      site_id=["e1", "e2", "e3", "e4", "e5"],
                      name=["桜小学校", "桜福祉館", "桜公園", "浜町集会所", "桜公民館"])
    return {"shelters": shelters, "emergency_sites": sites}


def test_candidate_venues_keep_halls_and_merge_one_place_listed_twice():
    venues = candidate_venues(venue_layers())
    # schools and parks are not salon rooms; the hall listed as a shelter and as a site 20 m
    # apart is one place (the shelter, listed first); the same name 900 m away is another place
    assert venues["venue_id"].tolist() == ["shelters:h2", "shelters:h3", "shelters:h4",
                                           "emergency_sites:e4", "emergency_sites:e5"]
    assert venues.crs == fx.METRIC and set(venues["source"]) == {"shelters", "emergency_sites"}


def test_candidate_venues_any_list_and_per_source_patterns():
    layers = venue_layers()
    every = candidate_venues(layers, name_pattern=None)
    assert len(every) == 7  # 9 rows, the school and the hall each listed twice
    mixed = candidate_venues(layers, name_pattern={"shelters": None})
    assert mixed["venue_id"].tolist() == ["shelters:h1", "shelters:h2", "shelters:h3", "shelters:h4",
                                          "emergency_sites:e4", "emergency_sites:e5"]


def test_candidate_venues_without_location_or_name_or_crs():
    layers = venue_layers()
    layers["shelters"].loc[1, "geometry"] = None
    assert "shelters:h2" not in candidate_venues(layers)["venue_id"].tolist()
    bad = {"a": layers["shelters"].drop(columns=["name"]),
           "b": layers["emergency_sites"].to_crs("EPSG:6677"), "c": "not a frame"}
    with pytest.raises(ValueError) as err:
        candidate_venues({"ok": layers["shelters"], **bad})
    text = str(err.value)
    assert "'a' has no 'name'" in text and "'b' should be in" in text
    assert "'c' should be a GeoDataFrame" in text
