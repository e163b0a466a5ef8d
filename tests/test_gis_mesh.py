"""Population surface: grids and apportionment, on hand-built squares."""

from __future__ import annotations

import geopandas as gpd
import gis_fixtures as fx
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.crs import METRIC
from gis.mesh import JGD2011_GEOGRAPHIC, jis_mesh, population_surface, square_grid


def test_square_grid_covers_only_intersecting_cells():
    area = gpd.GeoSeries([shapely.box(0, 0, 1000, 600)], crs=METRIC)
    cells = square_grid(area, size=500)
    assert sorted(cells["cell_id"]) == ["0_0", "0_1", "1_0", "1_1"]
    assert cells.set_index("cell_id").geometry["1_1"].bounds == (500, 500, 1000, 1000)


def test_square_grid_needs_metric_crs():
    area = gpd.GeoSeries([shapely.box(140, 40, 141, 41)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="projected"):
        square_grid(area, size=500)


def test_world_surface_splits_evenly_and_conserves_counts():
    small = fx.small_areas()
    surface = population_surface(small, square_grid(small, size=500))
    assert len(surface) == 12  # a1: 4 cells, b1: 2, b2: 2, c1: 4
    a1 = surface[surface["key_code"] == "a1"].set_index("cell_id")
    assert a1.loc["0_0", "elderly"] == pytest.approx(100)
    assert a1.loc["0_0", "age_75_plus"] == pytest.approx(40)
    assert a1.loc["1_1", "elderly_alone"] == pytest.approx(20)
    assert (a1.loc["1_1", "x"], a1.loc["1_1", "y"]) == pytest.approx((750, 750))
    b1 = surface[surface["key_code"] == "b1"]
    assert b1["elderly"].tolist() == pytest.approx([300, 300])
    assert set(b1["district_code"]) == {"B"}
    totals = surface.groupby("key_code")[["population", "elderly", "age_75_plus"]].sum()
    expected = small.set_index("key_code")
    assert totals["population"].to_numpy() == pytest.approx(expected["population"].astype(float))
    assert totals["elderly"].to_numpy() == pytest.approx(
        (expected["age_65_74"] + expected["age_75_plus"]).astype(float))
    assert surface.groupby("key_code")["area_share"].sum().to_numpy() == pytest.approx(1.0)


def test_partial_cells_get_area_shares_and_their_own_centroid():
    small = gpd.GeoDataFrame({"key_code": ["k"], "population": pd.array([300], dtype="Int64")},
                             geometry=[fx.square(0, 0, 750, 500)], crs=METRIC)
    surface = population_surface(small, square_grid(small, size=500)).set_index("cell_id")
    assert surface.loc["0_0", "population"] == pytest.approx(200)  # 250 000 of 375 000 m²
    assert surface.loc["1_0", "population"] == pytest.approx(100)
    assert (surface.loc["1_0", "x"], surface.loc["1_0", "y"]) == pytest.approx((625, 250))
    assert "elderly" not in surface.columns  # no age bands given


def test_dasymetric_mask_moves_people_to_where_they_live():
    small = gpd.GeoDataFrame({"key_code": ["k", "empty"],
                              "population": pd.array([300, 60], dtype="Int64")},
                             geometry=[fx.square(0, 0, 750, 500), fx.square(0, 500, 500, 1000)],
                             crs=METRIC)
    mask = gpd.GeoSeries([shapely.box(600, 0, 750, 100)], crs=METRIC)  # only in cell 1_0 of k
    surface = population_surface(small, square_grid(small, size=500), mask=mask)
    k = surface[surface["key_code"] == "k"].set_index("cell_id")
    assert k.loc["0_0", "population"] == pytest.approx(0)
    assert k.loc["1_0", "population"] == pytest.approx(300)
    assert (k.loc["1_0", "x"], k.loc["1_0", "y"]) == pytest.approx((675, 50))  # the masked part
    # the mask misses "empty" entirely: plain area weights, nobody lost
    empty = surface[surface["key_code"] == "empty"]
    assert empty["population"].sum() == pytest.approx(60)
    assert (empty["x"].iloc[0], empty["y"].iloc[0]) == pytest.approx((250, 750))


def test_concealed_small_area_stays_unknown():
    small = fx.small_areas()
    small.loc[small["key_code"] == "c1", ["population", "age_65_74", "age_75_plus"]] = pd.NA
    surface = population_surface(small, square_grid(small, size=500))
    c1 = surface[surface["key_code"] == "c1"]
    assert c1["population"].isna().all() and c1["elderly"].isna().all()
    assert surface.loc[surface["key_code"] == "a1", "population"].sum() == pytest.approx(1000)


def test_jis_mesh_codes_and_cell_bounds_near_aomori_city_hall():
    # Aomori city hall, about 40.8222 N 140.7474 E: 1st mesh 6140, 2nd 15, 3rd 89 (worked by hand)
    hall = gpd.GeoSeries([shapely.Point(140.7474, 40.8222).buffer(1e-5)],
                         crs=JGD2011_GEOGRAPHIC).to_crs(METRIC)
    cells = jis_mesh(hall, level=3)
    assert cells["cell_id"].tolist() == ["61401589"]
    lon0, lat0, lon1, lat1 = cells.to_crs(JGD2011_GEOGRAPHIC).total_bounds
    assert (lat0, lat1) == pytest.approx((40 + 49 / 60, 40 + 49.5 / 60), abs=1e-7)
    assert (lon0, lon1) == pytest.approx((140.7375, 140.75), abs=1e-7)
    fine = jis_mesh(hall, level=6)
    assert fine["cell_id"].tolist() == ["61401589423"]
    assert fine.area.iloc[0] == pytest.approx(115.7 * 131.6, rel=0.02)  # 1/8 mesh, ~125 m


def test_jis_mesh_surface_conserves_population():
    area = gpd.GeoSeries([shapely.box(140.74, 40.81, 140.76, 40.83)],
                         crs=JGD2011_GEOGRAPHIC).to_crs(METRIC)
    small = gpd.GeoDataFrame({"key_code": ["k"], "population": pd.array([1234], dtype="Int64")},
                             geometry=area.values, crs=METRIC)
    cells = jis_mesh(small, level=5)
    surface = population_surface(small, cells)
    assert surface["population"].sum() == pytest.approx(1234)
    assert surface["cell_id"].str.len().eq(10).all()
    assert len(np.unique(surface["cell_id"])) == len(surface)


def test_population_surface_reports_missing_columns_and_crs():
    small = fx.small_areas()
    with pytest.raises(ValueError, match="lacks the columns"):
        population_surface(small, square_grid(small, size=500), columns=["nope"])
    with pytest.raises(ValueError, match="CRS"):
        population_surface(small, square_grid(small, size=500).to_crs("EPSG:6677"))
