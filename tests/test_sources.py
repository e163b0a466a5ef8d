"""The shipped real data loads clean: counts as documented in data/README.md."""

from __future__ import annotations

import json

import pytest

from karte.domain.errors import ValidationError
from karte.settings import REPO_DATA
from karte.sources import read_emergency_sites, read_shelters, read_small_areas


def test_small_areas_counts_and_cleaning(small_areas):
    sa = small_areas
    assert len(sa) == 564
    assert sa.crs.to_epsg() == 6678
    assert sa.attrs["repaired"] == 8
    assert sa.is_valid.all()
    assert set(sa.geom_type) == {"MultiPolygon"}
    assert sa["key_code"].str.len().value_counts().to_dict() == {11: 550, 9: 14}
    assert sa["key_code"].is_unique
    assert str(sa["population"].dtype) == "Int64"
    assert int(sa["population"].sum()) == 285_506
    assert int(sa["households"].sum()) == 117_496


def test_concealed_areas_are_null_not_zero(small_areas):
    concealed = small_areas[small_areas["concealed"]]
    assert len(concealed) == 33
    assert concealed["population"].isna().all()
    assert concealed["households"].isna().all()
    assert "三好１丁目" in set(concealed["name"])
    # genuinely empty areas (population 0) are not concealed
    assert (small_areas.loc[~small_areas["concealed"], "population"] >= 0).all()


def test_key_code_from_feature_id(small_areas):
    row = small_areas.set_index("name").loc["小柳６丁目"]
    assert row["key_code"] == "02201055106"


def test_shelters_and_emergency_sites():
    shelters = read_shelters(REPO_DATA / "shelters" / "aomori_022012_designated_shelters_gsi.geojson")
    assert len(shelters) == 194
    assert int(shelters["welfare"].sum()) == 40
    sites = read_emergency_sites(
        REPO_DATA / "shelters" / "aomori_022012_emergency_evacuation_sites_gsi.geojson")
    assert len(sites) == 295
    assert int(sites["hazard_flood"].sum()) == 213
    assert int(sites["hazard_fire"].sum()) == 6


def test_bad_population_reports_file_row_and_column(tmp_path):
    data = json.loads(
        (REPO_DATA / "boundaries" / "aomori_city_02201_small_areas_2015_estat_lod.geojson").read_text())
    data["features"] = data["features"][:5]
    data["features"][3]["properties"]["population"] = "12a"
    data["features"][4]["id"] = "http://example.org/nonsense"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_small_areas(path)
    problems = {(p.file, p.row, p.column) for p in info.value.problems}
    assert problems == {("bad.geojson", 4, "population"), ("bad.geojson", 5, "id")}
