"""The prefecture's stand-in districts: shipped, reproducible, one set per municipality."""

from __future__ import annotations

import pandas as pd
import pytest

from karte.districts import build_standin_mappings
from karte.municipalities import names
from karte.settings import REPO_DATA
from karte.sources import read_small_areas

SHIPPED = REPO_DATA / "districts" / "aomori_pref_standin_districts.csv"


@pytest.fixture(scope="module")
def prefecture():
    return read_small_areas(REPO_DATA / "boundaries" / "aomori_pref_02_small_areas_2015_estat_lod.geojson")


@pytest.fixture(scope="module")
def shipped():
    return pd.read_csv(SHIPPED, dtype=str)


def test_every_small_area_of_the_prefecture_is_in_one_district(prefecture, shipped):
    assert len(shipped) == len(prefecture) == shipped["key_code"].nunique()
    assert set(shipped["key_code"]) == set(prefecture["key_code"])
    assert shipped["municipality_code"].nunique() == 40
    assert (shipped["municipality_code"] == shipped["key_code"].str.slice(0, 5)).all()
    names_per_muni = shipped.drop_duplicates(["municipality_code", "district_code"])
    assert not names_per_muni.duplicated(["municipality_code", "district_name"]).any()
    assert names_per_muni["district_name"].str.startswith("（仮）").all()
    assert not names_per_muni["district_name"].str.startswith("（仮）字").any()


@pytest.mark.parametrize("municipality", ["02401", "02307", "02423"])
def test_the_shipped_mapping_is_what_the_code_builds(prefecture, shipped, municipality):
    """野辺地町 (split in two), 外ヶ浜町 (two pieces: 蟹田 and 三厩), 大間町 (one district)."""
    areas = prefecture[prefecture["municipality_code"] == municipality]
    built = build_standin_mappings(areas, names(prefecture))
    expected = shipped[shipped["municipality_code"] == municipality]
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(built[columns].sort_values("key_code").reset_index(drop=True),
                                  expected.sort_values("key_code").reset_index(drop=True))
