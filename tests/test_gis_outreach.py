"""Outreach priority: parts per place, a transparent score, and suppression for publication."""

from __future__ import annotations

import gis_fixtures as fx
import pandas as pd
import pytest

from gis.coverage import salon_coverage
from gis.gaps import evacuation_gaps
from gis.mesh import population_surface, square_grid
from gis.outreach import outreach_priority, outreach_units, suppress_counts
from karte.domain.schema import VOCABULARY


def world():
    small = fx.small_areas()
    cov = salon_coverage(population_surface(small, square_grid(small, size=500)), fx.services(),
                         vocab=VOCABULARY)
    gaps = evacuation_gaps(fx.register(), fx.cooperators(), fx.shelters(), fx.emergency_sites(),
                           vocab=VOCABULARY)
    return cov, gaps


def units():
    # maxima: alone 10, uncovered 100, unsupported 3
    return pd.DataFrame({"place": ["u1", "u2", "u3"], "elderly_alone": [10, 5, 0],
                         "uncovered_elderly": [0, 100, 50], "unsupported": [2, 0, 3],
                         "elderly": [100, 400, 200]})


def test_equal_weights_score_by_hand():
    ranked = outreach_priority(units(), by="count").set_index("place")
    third = 100 / 3
    assert ranked.loc["u1", "points_elderly_alone"] == pytest.approx(third)
    assert ranked.loc["u1", "points_unsupported"] == pytest.approx(third * 2 / 3)
    assert ranked["score"].to_dict() == pytest.approx({"u1": 55.5556, "u2": 50, "u3": 50}, abs=1e-3)
    assert ranked["rank"].to_dict() == {"u1": 1, "u2": 2, "u3": 2}
    # the parts add up to the score, so a reader can see why
    parts = ranked[["points_elderly_alone", "points_uncovered_elderly", "points_unsupported"]]
    assert parts.sum(axis=1).to_numpy() == pytest.approx(ranked["score"].to_numpy())


def test_weights_change_the_order():
    ranked = outreach_priority(units(), by="count", weights={"elderly_alone": 1, "uncovered_elderly": 1,
                                                             "unsupported": 2})
    assert ranked["place"].tolist() == ["u3", "u1", "u2"]
    assert ranked["score"].tolist() == pytest.approx([62.5, 58.3333, 37.5], abs=1e-3)


def test_zero_everywhere_scores_zero():
    zero = units().assign(unsupported=0)
    ranked = outreach_priority(zero)
    assert (ranked["points_unsupported"] == 0).all()


def test_bad_weights_all_reported():
    with pytest.raises(ValueError) as err:
        outreach_priority(units(), weights={"elderly_alone": -1, "stars": 1})
    assert "elderly_alone" in str(err.value) and "stars" in str(err.value)


def test_world_units_by_small_area():
    cov, gaps = world()
    table = outreach_units(cov, gaps).set_index("key_code")
    assert table.index.tolist() == ["a1", "b1", "b2", "c1"]
    assert table["elderly_alone"].tolist() == pytest.approx([80, 60, 20, 0])
    assert table["uncovered_elderly"].tolist() == pytest.approx([200, 0, 200, 0])
    # P2 in a1; P7 (no location) still counts in its small area c1
    assert table["unsupported"].tolist() == [1, 0, 0, 1]
    assert table["district_code"].tolist() == ["A", "B", "B", "C"]
    assert table["elderly"].sum() == pytest.approx(cov["elderly"].sum())
    ranked = outreach_priority(table.reset_index(), by="count")
    assert ranked["key_code"].iloc[0] == "a1"  # most of everything


def test_world_units_by_cell():
    cov, gaps = world()
    table = outreach_units(cov, gaps, by="cell_id").set_index(["cell_id", "district_code"])
    assert len(table) == 12
    assert table.loc[("1_1", "A"), "unsupported"] == 1  # P2 at (600, 600)
    assert table["unsupported"].sum() == 1  # P7 has no location: not placed in a cell
    assert table.loc[("0_0", "A"), "uncovered_elderly"] == pytest.approx(100)
    assert table.loc[("1_0", "A"), "uncovered_elderly"] == 0
    assert table.loc[("3_1", "B"), "elderly_alone"] == pytest.approx(10)


def test_suppress_small_counts_for_publication():
    frame = pd.DataFrame({"n": [0, 1, 2, 3, 2.4, None], "other": [1, 1, 1, 1, 1, 1]})
    out = suppress_counts(frame, ["n"], max_small=2)
    assert out["n"].isna().tolist() == [False, True, True, False, True, True]
    assert out["n"].iloc[0] == 0 and out["n"].iloc[3] == 3
    assert out["other"].tolist() == [1] * 6  # untouched


def test_outreach_units_report_missing_columns():
    cov, gaps = world()
    with pytest.raises(ValueError) as err:
        outreach_units(cov.drop(columns=["elderly_alone"]), gaps.drop(columns=["key_code"]))
    assert "['elderly_alone']" in str(err.value) and "['key_code']" in str(err.value)
    # ranking by cell does not need the small area of each person
    assert len(outreach_units(cov, gaps.drop(columns=["key_code"]), by="cell_id")) == 12


def test_rate_score_by_hand_without_shrinkage():
    ranked = outreach_priority(units(), prior_elderly=0).set_index("place")
    # rates: u1 alone .1, unsupported .02; u2 alone .0125, uncovered .25; u3 uncovered .25, unsupported .015
    assert ranked.loc["u1", "rate_elderly_alone"] == pytest.approx(0.1)
    assert ranked.loc["u3", "rate_unsupported"] == pytest.approx(0.015)
    assert ranked["score_rate"].to_dict() == pytest.approx({"u1": 66.6667, "u2": 37.5, "u3": 58.3333},
                                                           abs=1e-3)
    assert ranked["rank_rate"].to_dict() == {"u1": 1, "u2": 3, "u3": 2}
    # rate is the default: score, rank and points are the rate's; the count's stay beside
    assert ranked["score"].to_dict() == ranked["score_rate"].to_dict()
    assert ranked["rank_count"].to_dict() == {"u1": 1, "u2": 2, "u3": 2}
    parts = ranked[["points_elderly_alone", "points_uncovered_elderly", "points_unsupported"]]
    assert parts.sum(axis=1).to_numpy() == pytest.approx(ranked["score"].to_numpy())
    assert outreach_priority(units(), prior_elderly=0)["place"].tolist() == ["u1", "u3", "u2"]


def big_and_tiny():
    """A big place with a high share, a medium one, and a tiny one where all 3 elderly are alone
    and outside salon reach."""
    return pd.DataFrame({"place": ["big", "medium", "tiny"], "elderly": [1000, 1000, 3],
                         "elderly_alone": [400, 100, 3], "uncovered_elderly": [300, 0, 3],
                         "unsupported": [5, 5, 0]})


def test_rate_and_count_orders_differ_and_both_are_given():
    frame = pd.DataFrame({"place": ["suburb", "village"], "elderly": [4000, 300],
                          "elderly_alone": [800, 150], "uncovered_elderly": [2000, 300],
                          "unsupported": [4, 2]})
    by_count = outreach_priority(frame, by="count")
    by_rate = outreach_priority(frame, by="rate")
    assert by_count["place"].tolist() == ["suburb", "village"]  # more people
    assert by_rate["place"].tolist() == ["village", "suburb"]   # larger share of its elderly
    for out in (by_count, by_rate):
        got = out.set_index("place")
        assert got.loc["suburb", "rank_count"] == 1 and got.loc["village", "rank_rate"] == 1
        assert got.loc["village", "rank_count"] == 2 and got.loc["suburb", "rank_rate"] == 2


def test_a_tiny_place_does_not_top_the_rate_ranking_by_noise():
    raw = outreach_priority(big_and_tiny(), prior_elderly=0)
    assert raw["place"].iloc[0] == "tiny"  # what raw rates would do: 3 of 3 elderly
    shrunk = outreach_priority(big_and_tiny())
    assert shrunk["place"].iloc[0] == "big"
    got = shrunk.set_index("place")
    city_alone = 503 / 2003
    assert got.loc["tiny", "rate_elderly_alone"] == pytest.approx((3 + 50 * city_alone) / 53)
    assert got.loc["tiny", "rate_elderly_alone"] < 0.35  # not 1.0
    assert got.loc["big", "rate_elderly_alone"] == pytest.approx((400 + 50 * city_alone) / 1050)


def test_places_with_nothing_get_no_rank_and_ranks_never_exceed_the_places_ranked():
    frame = pd.concat([units(), pd.DataFrame({"place": ["z1", "z2"], "elderly_alone": [0, 0],
                                              "uncovered_elderly": [0, 0], "unsupported": [0, 0],
                                              "elderly": [50, 0]})], ignore_index=True)
    for by in ("rate", "count"):
        ranked = outreach_priority(frame, by=by).set_index("place")
        assert ranked.loc[["z1", "z2"], "score"].tolist() == [0, 0]
        assert ranked.loc[["z1", "z2"], "rank"].isna().all()
        assert ranked["rank"].max() <= ranked["rank"].notna().sum() == 3
        assert list(ranked.index[-2:]) == ["z1", "z2"]  # unranked last


def test_rate_needs_the_elderly_and_a_known_order():
    with pytest.raises(ValueError) as err:
        outreach_priority(units().drop(columns=["elderly"]), by="size", prior_elderly=-1)
    text = str(err.value)
    assert "'elderly'" in text and "'size'" in text and "prior_elderly" in text
