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
                         "uncovered_elderly": [0, 100, 50], "unsupported": [2, 0, 3]})


def test_equal_weights_score_by_hand():
    ranked = outreach_priority(units()).set_index("place")
    third = 100 / 3
    assert ranked.loc["u1", "points_elderly_alone"] == pytest.approx(third)
    assert ranked.loc["u1", "points_unsupported"] == pytest.approx(third * 2 / 3)
    assert ranked["score"].to_dict() == pytest.approx({"u1": 55.5556, "u2": 50, "u3": 50}, abs=1e-3)
    assert ranked["rank"].to_dict() == {"u1": 1, "u2": 2, "u3": 2}
    # the parts add up to the score, so a reader can see why
    parts = ranked[["points_elderly_alone", "points_uncovered_elderly", "points_unsupported"]]
    assert parts.sum(axis=1).to_numpy() == pytest.approx(ranked["score"].to_numpy())


def test_weights_change_the_order():
    ranked = outreach_priority(units(), weights={"elderly_alone": 1, "uncovered_elderly": 1,
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
    ranked = outreach_priority(table.reset_index())
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
