"""Supporter suggestions: capacity-aware, most people first, then least total distance."""

from __future__ import annotations

import geopandas as gpd
import gis_fixtures as fx
import pytest
import shapely

from gis.crs import METRIC
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from karte.domain.schema import VOCABULARY

STRAIGHT = AnalysisParams(detour_factor=1.0, supporter_max_m=200)


def people(rows):
    """rows: (person_id, (x, y) or None, supporter_ids, district)."""
    return gpd.GeoDataFrame(
        {"person_id": [r[0] for r in rows], "supporter_ids": [r[2] for r in rows],
         "district_code": [r[3] for r in rows], "consent": ["consented"] * len(rows)},
        geometry=gpd.GeoSeries([shapely.Point(r[1]) if r[1] else None for r in rows], crs=METRIC),
    )


def helpers(rows):
    """rows: (cooperator_id, (x, y), help_kinds, capacity, district)."""
    frame = fx.points([r[1] for r in rows], cooperator_id=[r[0] for r in rows],
                      help_kinds=[r[2] for r in rows], capacity=[r[3] for r in rows],
                      district_code=[r[4] for r in rows])
    frame["capacity"] = frame["capacity"].astype("Int64")
    return frame


def pairs(suggestions):
    return dict(zip(suggestions["person_id"], suggestions["cooperator_id"], strict=True))


def test_serves_the_most_people_not_the_nearest_first():
    # X (0,0), Y (100,0); a (60,0), b (250,0): Y's nearest is a (40 m) but then X has nobody
    # (b is 250 m away > 200). The flow gives X->a (60) and Y->b (150): both served.
    reg = people([("X", (0, 0), "", "A"), ("Y", (100, 0), "", "A")])
    coop = helpers([("a", (60, 0), "evacuation", 1, "A"), ("b", (250, 0), "evacuation", 1, "B")])
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)
    assert pairs(out) == {"X": "a", "Y": "b"}
    assert out["distance_m"].tolist() == pytest.approx([60, 150])
    assert out.set_index("person_id").loc["Y", "cooperator_district_code"] == "B"  # other district


def test_least_total_distance_among_full_assignments():
    # X (0,0), Y (30,0); a (20,0), b (-50,0): one by one X->a (20), Y->b (80) = 100;
    # the optimum is X->b (50), Y->a (10) = 60
    reg = people([("X", (0, 0), "", "A"), ("Y", (30, 0), "", "A")])
    coop = helpers([("a", (20, 0), "evacuation", 1, "A"), ("b", (-50, 0), "evacuation", 1, "A")])
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)
    assert pairs(out) == {"X": "b", "Y": "a"}
    assert out["distance_m"].sum() == pytest.approx(60)


def test_capacity_spare_and_willingness():
    reg = people([
        ("U", (0, 1000), "", "A"), ("V", (50, 1000), "", "A"),
        ("W", (5000, 5000), "d", "A"),  # already has d
        ("Z", None, "", "A"),  # no location: nothing to measure from
    ])
    coop = helpers([
        ("c", (25, 1000), "evacuation;snow", 2, "A"),  # takes both
        ("d", (0, 1010), "evacuation", 1, "A"),  # nearer to U but full (W)
        ("e", (10, 1000), "watching", 5, "A"),  # nearest, but offers no evacuation help
        ("f", (40, 1000), "evacuation", None, "A"),  # unknown capacity
    ])
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)
    assert pairs(out) == {"U": "c", "V": "c"}
    assert out["distance_m"].tolist() == pytest.approx([25, 25])


def test_max_distance_and_detour():
    reg = people([("X", (0, 0), "", "A")])
    coop = helpers([("a", (200, 0), "evacuation", 1, "A")])
    assert suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)["distance_m"].tolist() == [200]
    # with the default detour 1.3, 200 m is 260 m walking: inside 300, outside 250
    assert len(suggest_supporters(reg, coop, vocab=VOCABULARY)) == 1
    assert suggest_supporters(reg, coop, vocab=VOCABULARY, params=AnalysisParams(suggest_max_m=250)).empty


def test_world_suggestions():
    # only P2 (600, 600) lacks a supporter and has a location; C4 (600, 620) is nearer but
    # offers no evacuation help; C6 (700, 700) is free: 141.4 × 1.3 = 183.8 m
    out = suggest_supporters(fx.register(), fx.cooperators(), vocab=VOCABULARY)
    assert pairs(out) == {"P2": "C6"}
    assert out["distance_m"].iloc[0] == pytest.approx(141.4214 * 1.3, abs=1e-3)
    assert out["district_code"].iloc[0] == "A"
    # P2 refused consent: left out when only shareable entries are wanted
    assert suggest_supporters(fx.register(), fx.cooperators(), vocab=VOCABULARY, only_shareable=True).empty


def test_unknown_supporter_id_counts_as_none():
    reg = people([("X", (0, 0), "ghost", "A")])
    coop = helpers([("a", (50, 0), "evacuation", 1, "A")])
    assert pairs(suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)) == {"X": "a"}
