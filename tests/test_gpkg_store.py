"""The GeoPackage store: atomic writes, district filter, access log."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from karte.domain.errors import StoreError
from karte.store import GeoPackageStore, join_list, open_store, split_list


def layer(n=3, district="A"):
    return gpd.GeoDataFrame({"district_code": [district] * n, "v": range(n)},
                            geometry=[Point(i, i) for i in range(n)], crs="EPSG:6678")


def test_write_read_and_filter(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    assert not store.exists() and store.layers() == []
    store.write({"pts": pd.concat([layer(2, "A"), layer(3, "B'x")], ignore_index=True),
                 "meta": pd.DataFrame({"key": ["k"], "value": ["v"]})})
    assert set(store.layers()) == {"pts", "meta"}
    assert len(store.read("pts")) == 5
    assert len(store.read("pts", district="B'x")) == 3  # quotes are escaped
    assert store.meta() == {"k": "v"}
    with pytest.raises(StoreError):
        store.read("missing")


def test_failed_write_leaves_the_file_byte_identical(tmp_path, monkeypatch):
    import karte.store.gpkg as gpkg

    path = tmp_path / "k.gpkg"
    store = GeoPackageStore(path)
    store.write({"pts": layer()})
    before = path.read_bytes()
    real = gpkg._write_layer
    calls = []

    def crash_on_second(target, name, frame):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C midway through a write
        real(target, name, frame)

    monkeypatch.setattr(gpkg, "_write_layer", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        store.write({"pts": layer(10), "more": layer(2)})
    assert calls == ["pts", "more"]
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".k.gpkg.*"))  # no temp files left behind


def test_audit_log_appends_and_survives_writes(tmp_path):
    store = GeoPackageStore(tmp_path / "k.gpkg")
    store.write({"pts": layer()})
    store.audit(actor="alice", route="cli:show", layer="register", district="A", rows=3)
    store.write({"pts": layer(4)})
    store.audit(actor="bob", route="cli:show", layer="register", district=None, rows=0)
    log = store.audit_log()
    assert list(log["actor"]) == ["alice", "bob"]
    assert list(log["rows"]) == [3, 0]


def test_list_fields_round_trip():
    assert split_list(join_list(["C1", "C2"])) == ["C1", "C2"]
    assert split_list("") == [] and split_list(None) == [] and split_list(float("nan")) == []


def test_open_store_picks_geopackage_for_paths(tmp_path):
    assert isinstance(open_store(tmp_path / "x.gpkg"), GeoPackageStore)
