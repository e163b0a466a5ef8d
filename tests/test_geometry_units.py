"""Unit tests on tiny hand-built geometries whose answers are known exactly."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from gis.districts import apportion, dissolve_districts
from gis.geometry import repair_polygons
from gis.overlay import locate_points
from karte.agebands import largest_remainder, synthetic_age_bands

CRS = "EPSG:6678"


def squares():
    """Four 100 m squares in a row: A B C D, x from 0 to 400."""
    return gpd.GeoDataFrame(
        {"key_code": ["A", "B", "C", "D"], "population": pd.array([100, 200, None, 50], "Int64")},
        geometry=[box(i * 100, 0, (i + 1) * 100, 100) for i in range(4)],
        crs=CRS,
    )


def test_repair_bowtie_becomes_valid_multipolygon_with_both_lobes():
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    assert not bowtie.is_valid
    gdf = gpd.GeoDataFrame({"k": [1, 2]}, geometry=[bowtie, box(5, 5, 6, 6)], crs=CRS)
    fixed, n = repair_polygons(gdf)
    assert n == 1
    assert fixed.is_valid.all()
    assert set(fixed.geom_type) == {"MultiPolygon"}
    assert fixed.geometry.iloc[0].area == pytest.approx(2.0)  # two triangles of area 1
    assert fixed.geometry.iloc[1].area == pytest.approx(1.0)


def test_dissolve_districts_from_mapping():
    mapping = pd.DataFrame({"key_code": ["A", "B", "C", "D"], "district_code": ["X", "X", "Y", "Y"],
                            "district_name": ["x", "x", "y", "y"]})
    d = dissolve_districts(squares(), mapping)
    assert list(d["district_code"]) == ["X", "Y"]
    assert list(d["small_areas"]) == [2, 2]
    assert d.area.tolist() == pytest.approx([20000.0, 20000.0])
    assert d.geometry.iloc[0].equals(box(0, 0, 200, 100))


def test_apportion_splits_by_area_and_counts_concealed():
    # district P covers A and half of B; Q covers the other half of B, C and D
    districts = gpd.GeoDataFrame({"district_code": ["P", "Q"]},
                                 geometry=[box(0, 0, 150, 100), box(150, 0, 400, 100)], crs=CRS)
    out = apportion(squares(), districts, ["population"])
    assert out.loc["P", "population"] == pytest.approx(100 + 100)
    assert out.loc["Q", "population"] == pytest.approx(100 + 0 + 50)
    assert out["population"].sum() == pytest.approx(350)  # nothing invented for concealed C
    assert out.loc["P", "concealed_areas"] == 0
    assert out.loc["Q", "concealed_areas"] == 1


def test_locate_points_border_outside_and_missing():
    polys = gpd.GeoDataFrame({"district_code": ["B", "A"]},
                             geometry=[box(100, 0, 200, 100), box(0, 0, 100, 100)], crs=CRS)
    pts = gpd.GeoDataFrame(geometry=[Point(50, 50), Point(100, 50), Point(500, 500), None],
                           crs=CRS, index=[10, 11, 12, 13])
    got = locate_points(pts, polys, "district_code")
    assert got.to_dict() == {10: "A", 11: "A", 12: None, 13: None}


def test_locate_points_refuses_mixed_crs():
    polys = gpd.GeoDataFrame({"c": ["A"]}, geometry=[box(0, 0, 1, 1)], crs=CRS)
    pts = gpd.GeoDataFrame(geometry=[Point(0.5, 0.5)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="CRS"):
        locate_points(pts, polys, "c")


@pytest.mark.parametrize(("total", "shares", "expected"), [
    (10, [0.5, 0.5], [5, 5]),
    (10, [1, 1, 1], [4, 3, 3]),
    (7, [0.118, 0.596, 0.14, 0.146], [1, 4, 1, 1]),
    (0, [1, 2], [0, 0]),
])
def test_largest_remainder_adds_up(total, shares, expected):
    got = largest_remainder(total, shares)
    assert got == expected
    assert sum(got) == total


def test_synthetic_age_bands_sum_to_population_and_keep_nulls():
    sa = squares()
    bands = synthetic_age_bands(sa, seed=1)
    known = sa["population"].notna()
    sums = bands[["age_0_14", "age_15_64", "age_65_74", "age_75_plus"]].sum(axis=1)
    assert (sums[known] == sa.loc[known, "population"]).all()
    assert bands.loc[~known].isna().all(axis=None)
    assert (bands.loc[known, "elderly_alone"]
            <= bands.loc[known, "age_65_74"] + bands.loc[known, "age_75_plus"]).all()
    again = synthetic_age_bands(sa, seed=1)
    pd.testing.assert_frame_equal(bands, again)
    assert not bands.equals(synthetic_age_bands(sa, seed=2))


def test_shapely_is_version_2():
    assert int(shapely.__version__.split(".")[0]) >= 2


def test_cooperator_summary_of_a_district_without_cooperators():
    """An empty district's karte still assembles (zero counts, zero capacity)."""
    import pandas as pd

    from karte.assemble import cooperator_summary

    empty = pd.DataFrame({"role": pd.Series([], dtype=object), "help_kinds": pd.Series([], dtype=object),
                          "capacity": pd.Series([], dtype=object)})
    summary = cooperator_summary(empty)
    assert summary["total"] == 0 and summary["evacuation_capacity"] == 0
    assert all(r["count"] == 0 for r in summary["by_role"])


def test_register_summary_of_a_district_without_support_needers():
    """A district with no register entry (polygons given by the city may leave one empty) gets zero
    counts: the register's text columns, empty, must not sum to ""."""
    import pandas as pd

    from karte.assemble import register_summary

    columns = ["consent", "plan_status", "supporter_ids", "care_level", "disability_kind", "medical_devices",
               "mobility", "elderly_only_household", "intractable_disease", "infant"]
    empty = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    summary = register_summary(empty)
    assert summary["total"] == 0
    assert summary["shareable"] == 0 and summary["with_supporter"] == 0
    assert all(r["count"] == 0 for r in summary["by_consent"])
