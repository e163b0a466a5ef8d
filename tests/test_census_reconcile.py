"""City totals against the official census figures (issue 23): the shipped data, and the rules."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from karte.census.reconcile import (
    GAP_LABEL,
    OFFICIAL_TOTALS,
    OfficialTotal,
    district_notes,
    official_totals,
    reconcile,
    sources_blocks,
)
from karte.settings import REPO_DATA

#: The official 2015 census figure for Aomori city (総務省統計局 平成27年国勢調査).
OFFICIAL_2015 = 287_648


def test_the_official_totals_ship_with_their_source():
    with OFFICIAL_TOTALS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, "data/census/official_totals.csv is empty"
    for row in rows:
        assert "総務省統計局" in row["source"] and "国勢調査" in row["source"]
        assert row["verified_here"] in ("yes", "no")
        assert row["note"], "every figure says what was and was not checked"
    totals = official_totals()
    aomori = totals[("02201", 2015)]
    assert aomori.population == OFFICIAL_2015
    assert aomori.households is None and not aomori.verified_here   # not verifiable offline: marked


def test_the_shipped_city_data_totals_the_official_figure_or_labels_the_gap(small_areas):
    """The shipped 2015 small areas against the official figure: equal, or the remaining gap is
    exactly the amount labelled 「秘匿・不詳」 and explained."""
    (rec,) = reconcile(small_areas, year=2015).values()
    assert rec.municipality_name == "青森市"
    assert rec.official is not None and rec.official.population == OFFICIAL_2015
    assert "総務省統計局" in rec.official.source
    labelled = dict(rec.lines_ja()).get(GAP_LABEL, 0)
    assert rec.population + labelled == OFFICIAL_2015
    assert (rec.population, rec.gap_population) == (285_506, 2_142)
    assert rec.concealed_areas == 33 and rec.merged_areas == 0
    assert rec.balanced
    reason = rec.reason_ja()
    assert GAP_LABEL in reason and "2,142" in reason and "33" in reason and "三好１丁目" in reason
    # households: karte's sum is known, the official figure is not (kept unknown, never guessed)
    assert rec.households == 117_496 and rec.gap_households is None
    block = rec.as_dict()
    assert block["population"] == {"karte": 285_506, "official": OFFICIAL_2015, "gap": 2_142,
                                   "gap_label": GAP_LABEL}
    assert block["households"]["official"] is None and block["verified"] is False
    assert "287,648" in block["note"] and GAP_LABEL in block["note"]


def test_concealed_areas_are_the_only_areas_without_figures(small_areas):
    """Evidence for docs/census.md: a missing figure is never a zero (the LOD writes zeros)."""
    concealed = small_areas[small_areas["concealed"]]
    assert len(concealed) == 33 and concealed["population"].isna().all()
    assert (small_areas["population"] == 0).sum() > 0


def test_every_concealed_area_is_noted_in_its_district(small_areas):
    mapping = pd.read_csv(REPO_DATA / "districts" / "aomori_standin_districts.csv", dtype=str)
    frame = small_areas.merge(mapping[["key_code", "district_code"]], on="key_code")
    blocks = sources_blocks(frame, year=2015)
    notes = blocks.districts
    assert sum(n["concealed_areas"] for n in notes.values()) == 33
    some = next(n for n in notes.values() if n["concealed_areas"])
    assert GAP_LABEL in some["text"] and some["not_counted"]
    karte = blocks.for_karte("02201", next(iter(notes)))
    assert karte["population"]["official"] == OFFICIAL_2015 and "district" in karte


def _areas(**over):
    frame = pd.DataFrame({
        "key_code": ["02201000101", "02201000102", "02201000201"],
        "name": ["甲１丁目", "甲２丁目", "乙"],
        "population": pd.array([100, None, 50], dtype="Int64"),
        "households": pd.array([40, None, 20], dtype="Int64"),
        "concealed": [False, True, False],
        "merged_into": [None, "02201000101", None],
        "district_code": ["A", "B", "B"],
    })
    return frame.assign(**over)


def _official(people, households=None):
    total = OfficialTotal("02201", "青森市", 2020, people, households, "総務省統計局 令和2年国勢調査")
    return {("02201", 2020): total}


def test_people_of_a_concealed_area_are_counted_in_its_merge_target_and_said_so():
    frame = _areas()
    (rec,) = reconcile(frame, year=2020, official=_official(150, 60)).values()
    assert rec.gap_population == 0 and rec.gap_households == 0 and rec.merged_areas == 1
    assert "一致" in rec.reason_ja()
    notes = district_notes(frame)
    assert notes["B"]["counted_elsewhere"][0]["target_district"] == "A"
    assert notes["A"]["counted_here_from"][0]["from_district"] == "B"
    assert "甲２丁目" in notes["B"]["text"] and "合算先" in notes["B"]["text"]
    assert "甲２丁目" in notes["A"]["text"]


def test_people_without_a_polygon_are_labelled_not_dropped():
    (rec,) = reconcile(_areas(), year=2020, official=_official(170), unplaced={"02201": (20, 8)}).values()
    assert rec.gap_population == 20 and rec.balanced
    assert "境界データに区域のない" in rec.reason_ja() and "20" in rec.reason_ja()
    assert dict(rec.lines_ja())[GAP_LABEL] == 20


@pytest.mark.parametrize("official", [140, None])
def test_a_sum_above_the_official_figure_or_no_figure_is_never_called_balanced_silently(official):
    (rec,) = reconcile(_areas(), year=2020, official=_official(official) if official else {}).values()
    if official is None:
        assert rec.gap_population is None and "照合できていません" in rec.note_ja()
    else:
        assert not rec.balanced and "要確認" in rec.note_ja()
