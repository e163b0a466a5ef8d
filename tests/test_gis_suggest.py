"""Supporter suggestions: capacity-aware, most people first, then least total distance, by the
matching engine (gis.matching); and why a person gets no suggestion (gis.suggest.unsuggested)."""

from __future__ import annotations

import geopandas as gpd
import gis_fixtures as fx
import numpy as np
import pytest
import shapely

from gis.crs import METRIC
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters, unsuggested
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


def reasons(frame):
    return dict(zip(frame["person_id"], frame["reason"], strict=True))


def test_nobody_suggested_says_why():
    reg = people([("full", (0, 0), "", "A"), ("far", (5000, 0), "", "A"), ("nowhere", None, "", "A"),
                  ("served", (10, 0), "", "A"), ("taken", (20, 0), "", "A"), ("has", (0, 5), "b", "A")])
    coop = helpers([("a", (15, 0), "evacuation", 1, "A"),      # one free place: to the nearest
                    ("b", (0, 10), "evacuation", 1, "B"),      # full: carries "has"
                    ("n", (5100, 0), "watching", 3, "A")])     # near "far", but no evacuation help
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=STRAIGHT)
    why = unsuggested(reg, coop, vocab=VOCABULARY, params=STRAIGHT)
    assert set(pairs(out)) == {"served"} or set(pairs(out)) == {"taken"}
    assert "has" not in set(why["person_id"])                   # a supporter already: no question
    got = reasons(why)
    assert got["far"] == "too_far" and got["nowhere"] == "no_location" and got["full"] == "at_capacity"
    left = ({"served", "taken"} - set(pairs(out))).pop()
    assert got[left] == "at_capacity"
    row = why.set_index("person_id").loc[left]
    assert row["near"] == 2 and row["taken"] == 1               # a went to the other one, b was full
    assert np.isnan(why.set_index("person_id").loc["far", "nearest_m"])  # none within 3 × 200 m
    # nobody offers evacuation help at all
    none = unsuggested(reg, coop.assign(help_kinds="watching"), vocab=VOCABULARY, params=STRAIGHT)
    assert set(reasons(none).values()) == {"no_kind", "no_location"}


def test_suggested_plus_unsuggested_is_everyone_without_a_supporter(demo_layers):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    for shareable in (False, True):
        out = suggest_supporters(reg, coop, vocab=VOCABULARY, only_shareable=shareable)
        why = unsuggested(reg, coop, vocab=VOCABULARY, only_shareable=shareable)
        assert not set(out["person_id"]) & set(why["person_id"])
        known = set(coop["cooperator_id"])
        without = reg[[not any(c in known for c in str(s or "").split(";") if c)
                       for s in reg["supporter_ids"]]]
        if shareable:
            without = without[without["consent"].isin(["consented", "ordinance"])]
        assert set(out["person_id"]) | set(why["person_id"]) == set(without["person_id"])
        assert set(why["reason"]) <= {"no_location", "no_kind", "too_far", "at_capacity"}


def test_s01_people_without_a_supporter_are_explained(demo_layers):
    """The issue's case: in S01 many people have no evacuation supporter and the page said only
    that there were no candidates; now each has a reason, and those with willing cooperators
    near enough are told those are all full."""
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    why = unsuggested(reg, coop, vocab=VOCABULARY)
    s01 = why[why["district_code"] == "S01"]
    assert len(s01) > 20
    assert {"at_capacity", "too_far"} <= set(s01["reason"])
    full = s01[s01["reason"] == "at_capacity"]
    assert (full["near"] > 0).all()
    far = s01[s01["reason"] == "too_far"]
    assert (far["near"] == 0).all()
    assert (far["nearest_m"].dropna() > AnalysisParams().suggest_m).all()
