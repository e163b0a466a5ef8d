"""Shared fixtures: the real shipped data and one demo build per test session."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from karte.settings import REPO_DATA

# Pages and sheets follow the season of today's date in JST (a winter walk is shorter): the tests
# run in summer unless a test sets the season itself, so their answers do not depend on the day.
os.environ.setdefault("KARTE_WINTER", "off")

BOUNDARIES = REPO_DATA / "boundaries" / "aomori_city_02201_small_areas_2015_estat_lod.geojson"


def copy_store(src: Path, dst: Path) -> Path:
    """A consistent copy of the GeoPackage store ``src`` at ``dst`` (SQLite's online backup: the
    file may be in WAL mode with commits not yet in the main file, so a file copy could miss them)."""
    with contextlib.closing(sqlite3.connect(src)) as a, contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)
    return dst


@pytest.fixture
def demo_copy(demo, tmp_path):
    """A private copy of the demo GeoPackage store, as the build left it, with the build snapshot
    cache emptied before and after (tests of what a cold process reads or keeps)."""
    from karte import snapshot
    from karte.store import GeoPackageStore

    path = copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg")
    snapshot.clear()
    yield GeoPackageStore(path)
    snapshot.clear()


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


#: The demo's layers the analysis cross-checks read.
DEMO_LAYERS = ("small_areas", "districts", "register", "cooperators", "services", "shelters",
               "emergency_sites")


@pytest.fixture(scope="session")
def demo_layers(demo):
    """The demo store's layers, read once: ``{name: GeoDataFrame}``."""
    from karte.store import open_store

    store = open_store(demo[1] / "karte.gpkg")
    return {name: store.read(name) for name in DEMO_LAYERS}


@pytest.fixture(scope="session")
def demo_surface(demo_layers):
    """The demo's population surface (small areas cut by the default JIS mesh), built once."""
    from gis.mesh import jis_mesh, population_surface
    from gis.params import AnalysisParams

    small = demo_layers["small_areas"]
    return population_surface(small, jis_mesh(small, level=AnalysisParams().mesh_level))
