"""Shared fixtures: the real shipped data and one demo build per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from karte.settings import REPO_DATA

BOUNDARIES = REPO_DATA / "boundaries" / "aomori_city_02201_small_areas_2015_estat_lod.geojson"


@pytest.fixture(scope="session")
def small_areas():
    from karte.sources import read_small_areas

    return read_small_areas(BOUNDARIES)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The whole Aomori demo built once into a temporary folder: (BuildResult, folder)."""
    from karte.build import Inputs, build_demo, write_outputs
    from karte.store import GeoPackageStore

    folder: Path = tmp_path_factory.mktemp("demo")
    result = build_demo(GeoPackageStore(folder / "karte.gpkg"), Inputs.shipped(REPO_DATA), seed=2026)
    write_outputs(result, folder, basemap="none")
    return result, folder
