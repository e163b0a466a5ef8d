"""Evacuation-support gaps on the hand-built world (worked answers in gis_fixtures)."""

from __future__ import annotations

import gis_fixtures as fx
import numpy as np
import pandas as pd
import pytest

from gis.gaps import GAP_KINDS, evacuation_gaps, gaps_by_district, needs_care, supporter_load
from gis.params import AnalysisParams
from karte.domain.schema import VOCABULARY


def world_gaps(**params):
    return evacuation_gaps(fx.register(), fx.cooperators(), fx.shelters(), fx.emergency_sites(),
                           vocab=VOCABULARY, params=AnalysisParams(**params))


def found(gaps) -> dict[str, set[str]]:
    return {pid: {k for k in GAP_KINDS if row[k]} for pid, row in gaps.set_index("person_id").iterrows()}


def test_needs_care_predicate():
    reg = pd.DataFrame({
        "care_level": ["要介護3", "要介護2", "要介護５", None, "要支援2", None, None],
        "mobility": ["independent", "independent", None, "bedridden", "walk_with_help",
                     "independent", "wheelchair"],
        "medical_devices": [None, None, None, None, None, "在宅酸素", ""],
    })
    assert needs_care(reg, vocab=VOCABULARY).tolist() == [True, False, True, True, False, True, True]


def test_supporter_load_against_capacity():
    load = supporter_load(fx.register(), fx.cooperators(), vocab=VOCABULARY)
    assert load["load"].to_dict() == {"C1": 3, "C2": 1, "C3": 2, "C4": 0, "C5": 2, "C6": 0}
    assert load["overloaded"].to_dict() == {"C1": False, "C2": False, "C3": True, "C4": False,
                                            "C5": False, "C6": False}
    assert load.loc["C3", "spare"] == -1 and pd.isna(load.loc["C5", "spare"])
    assert load["willing"].tolist() == [True, True, True, False, True, True]


def test_every_gap_of_every_person():
    assert found(world_gaps()) == fx.EXPECTED_GAPS


def test_distances_and_flags():
    gaps = world_gaps().set_index("person_id")
    assert gaps.loc["P1", "supporter_m"] == pytest.approx(260)
    assert gaps.loc["P3", "supporter_m"] == pytest.approx(260)  # supporter from district A
    assert gaps.loc["P9", "supporter_m"] == pytest.approx(np.hypot(100, 100) * 1.3)
    assert np.isnan(gaps.loc["P4", "supporter_m"]) and np.isnan(gaps.loc["P4", "shelter_m"])
    assert gaps.loc["P6", "supporters"] == 1  # C9 is not a cooperator
    assert gaps.loc["P7", "supporters"] == 0
    assert gaps.loc[["P6", "P8"], "needs_care"].all() and not gaps.loc["P5", "needs_care"]
    # care -> nearest welfare shelter; otherwise nearest earthquake site
    assert gaps.loc["P8", "shelter_m"] == pytest.approx(np.hypot(1700, 100) * 1.3)
    assert gaps.loc["P3", "shelter_m"] == pytest.approx(np.hypot(400, 100) * 1.3)
    assert gaps.loc["P5", "shelter_m"] == pytest.approx(np.hypot(600, 700) * 1.3)
    assert gaps["gaps"].to_dict() == {p: len(k) for p, k in fx.EXPECTED_GAPS.items()}
    assert gaps["at_risk"].to_dict() == {p: bool(k) for p, k in fx.EXPECTED_GAPS.items()}


def test_result_keeps_register_index_and_geometry():
    reg = fx.register()
    reg.index = reg.index + 100
    gaps = evacuation_gaps(reg, fx.cooperators(), fx.shelters(), fx.emergency_sites(), vocab=VOCABULARY)
    assert gaps.index.tolist() == reg.index.tolist()
    assert gaps.geometry.iloc[0].equals(reg.geometry.iloc[0]) and gaps.crs == reg.crs


def test_winter_and_hazard_change_the_shelter_gap():
    winter = found(world_gaps(winter=True))
    assert "no_shelter" in winter["P9"]  # 822 m to e3 > 700 m
    assert "no_shelter" not in winter["P3"]  # 536 m
    tsunami = found(world_gaps(hazard="tsunami"))
    assert "no_shelter" in tsunami["P1"]  # only e2 at (1800, 100) is a tsunami site
    assert "no_shelter" not in tsunami["P3"]  # 700 m × 1.3 = 910 m


def test_supporter_threshold_is_configurable():
    assert "supporter_far" in found(world_gaps(supporter_max_m=250))["P1"]  # 260 m
    assert "supporter_far" not in found(world_gaps(supporter_max_m=800))["P8"]  # 790 m


def test_at_risk_kinds_can_leave_consent_out():
    gaps = evacuation_gaps(fx.register(), fx.cooperators(), fx.shelters(), fx.emergency_sites(),
                           vocab=VOCABULARY, at_risk_kinds=("no_supporter", "supporter_far"))
    assert gaps.set_index("person_id")["at_risk"].to_dict() == {
        "P1": False, "P2": True, "P3": False, "P4": False, "P5": True, "P6": False, "P7": True,
        "P8": True, "P9": False}


def test_by_district_counts_and_rates():
    districts = fx.districts()
    districts.loc[3] = ["D", "丁", fx.square(5000, 0, 6000, 1000)]
    table = gaps_by_district(world_gaps(), districts=districts)
    assert table.index.tolist() == ["A", "B", "C", "D"]
    assert table["persons"].tolist() == [3, 3, 3, 0]
    a, b, c = table.loc["A"], table.loc["B"], table.loc["C"]
    assert (a["no_consent"], a["no_location"], a["no_supporter"], a["no_plan"]) == (1, 1, 1, 2)
    assert (a["at_risk"], b["at_risk"], c["at_risk"]) == (2, 1, 3)
    assert (b["supporter_far"], c["supporter_far"], c["supporter_overloaded"]) == (1, 1, 2)
    assert c["no_shelter"] == 1 and a["no_shelter"] == 0
    assert a["rate_no_plan"] == pytest.approx(2 / 3)
    assert c["rate_at_risk"] == pytest.approx(1.0)
    assert table.loc["D", "at_risk"] == 0 and np.isnan(table.loc["D", "rate_at_risk"])
    # no personal rows: only counts and rates
    assert "person_id" not in table.columns


def test_bad_inputs_are_all_reported():
    reg = fx.register()
    reg.loc[0, "consent"] = "maybe"
    sites = fx.emergency_sites().drop(columns=["hazard_earthquake"])
    with pytest.raises(ValueError) as err:
        evacuation_gaps(reg, fx.cooperators().to_crs("EPSG:6677"), fx.shelters(), sites, vocab=VOCABULARY)
    text = str(err.value)
    assert "maybe" in text and "hazard_earthquake" in text and "cooperators" in text
