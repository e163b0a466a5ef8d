"""The OGC collections as the service builds them, on the demo store: geometries, properties, CRS.

* Every collection, in every CRS it offers, holds only its declared geometry type, valid, with
  exterior rings counter-clockwise (RFC 7946) and no empty part, and says the type in its
  metadata (the walk the issue asks for: ``coverage`` held GeometryCollections).
* The declared properties are exactly what :func:`layer_view` gives, for the public and for
  staff, so the queryables, the OpenAPI parameters and the answers agree.
* Coordinates in another CRS are the storage geometries transformed (zone X is the storage CRS
  itself), in the CRS's axis order.
"""

from __future__ import annotations

import json

import api_fixtures as fx
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from karte.domain.access import PUBLIC, Access, Level
from karte.services import ogc
from karte.services.layers import layer_view

api = fx.api  # the fixture
STAFF = Access(user="staff-t", level=Level.CITY_STAFF, route="test")
BASE = "http://testserver/ogc"


def _features(store, cid, access=PUBLIC, **params) -> list[dict]:
    answer = ogc.items(store, cid, access, BASE, [("limit", "10000"), *params.items()])
    return json.loads(answer.body)["features"]


def _shape(geometry: dict, crs: ogc.CrsDef):
    geom = shapely.from_geojson(json.dumps(geometry))
    return shapely.transform(geom, lambda c: c[:, ::-1]) if crs.north_first else geom


@pytest.mark.parametrize("crs", [ogc.CRS84, ogc.STORAGE_CRS, ogc.EPSG_URI + "4326", ogc.EPSG_URI + "6679"])
@pytest.mark.parametrize("cid", list(ogc.COLLECTIONS))
def test_every_collection_holds_only_its_declared_type_valid_and_oriented(api, cid, crs):
    spec = ogc.COLLECTIONS[cid]
    crs_def = ogc.SUPPORTED_CRS[crs]
    features = _features(api.store, cid, crs=crs)
    assert len(features) == len(layer_view(api.store, cid, PUBLIC)) > 0
    meta = json.loads(ogc.collection(api.store, cid, PUBLIC, BASE).body)
    assert meta["geometryType"] == spec.geometry
    for f in features:
        assert f["geometry"] is not None, (cid, f["id"])
        assert f["geometry"]["type"] == spec.geometry, (cid, f["id"], f["geometry"]["type"])
        geom = _shape(f["geometry"], crs_def)
        assert shapely.is_valid(geom), (cid, f["id"], shapely.is_valid_reason(geom))
        for part in shapely.get_parts(geom):
            assert not part.is_empty
            if spec.geometry == "MultiPolygon":
                assert part.area > 0
                assert shapely.is_ccw(part.exterior), (cid, f["id"], "exterior clockwise")
                assert not any(shapely.is_ccw(r) for r in part.interiors), (cid, f["id"], "hole ccw")


def test_coverage_was_the_collection_with_collections_and_now_has_none(api):
    """The overlay leaves the uncovered areas as mixed collections in the store's frames; the OGC
    answer is MultiPolygons of the same area."""
    raw = layer_view(api.store, "coverage", PUBLIC)
    served = _features(api.store, "coverage", crs=ogc.STORAGE_CRS)
    assert {f["geometry"]["type"] for f in served} == {"MultiPolygon"}
    by_id = {f["id"]: shapely.from_geojson(json.dumps(f["geometry"])) for f in served}
    for code, geom in zip(raw["district_code"], raw.geometry, strict=True):
        area = shapely.make_valid(geom).area
        assert by_id[code].area == pytest.approx(area, rel=1e-3, abs=1.0), code


@pytest.mark.parametrize("access", [PUBLIC, STAFF], ids=["public", "staff"])
@pytest.mark.parametrize("cid", list(ogc.COLLECTIONS))
def test_declared_properties_are_what_layer_view_gives(api, cid, access):
    frame = layer_view(api.store, cid, access)
    spec = ogc.COLLECTIONS[cid]
    assert [p.name for p in spec.properties] == [c for c in frame.columns if c != frame.geometry.name]
    built = ogc.collection_data(api.store, cid, access)
    for prop in spec.properties:
        served = built.types[prop.name]
        assert served == prop.type or (prop.name in built.hidden and served == "string"), (cid, prop.name)
        values = [json.loads(v) for v in built.value_json[prop.name]]
        kinds = {type(v).__name__ for v in values if v is not None}
        expected = {"string": {"str"}, "integer": {"int"}, "number": {"float", "int"}, "boolean": {"bool"}}
        assert kinds <= expected[served], (cid, prop.name, kinds)
    if access is STAFF:
        assert not built.hidden


def test_the_public_sees_hidden_counts_as_text_and_staff_the_numbers(api):
    public = ogc.collection_data(api.store, "small_areas", PUBLIC)
    staff = ogc.collection_data(api.store, "small_areas", STAFF)
    assert "elderly_alone" in public.hidden
    shown = [json.loads(v) for v in public.value_json["elderly_alone"]]
    exact = [json.loads(v) for v in staff.value_json["elderly_alone"]]
    hidden = {i for i, v in enumerate(shown) if v == "秘匿"}
    small = {i for i, v in enumerate(exact) if v in (1, 2)}
    assert small and small <= hidden  # every small count, and what suppression hides beside them
    assert all(shown[i] == str(exact[i]) for i in range(len(shown))
               if i not in hidden and exact[i] is not None)


@pytest.mark.parametrize("crs", [ogc.STORAGE_CRS, ogc.EPSG_URI + "4326", ogc.EPSG_URI + "6668",
                                 ogc.EPSG_URI + "6680"])
def test_coordinates_in_another_crs_are_the_storage_geometry_transformed(api, crs):
    crs_def = ogc.SUPPORTED_CRS[crs]
    frame = layer_view(api.store, "shelters", PUBLIC)
    served = {f["id"]: f["geometry"]["coordinates"] for f in _features(api.store, "shelters", crs=crs)}
    to = Transformer.from_crs("EPSG:6678", crs_def.code, always_xy=True)
    for sid, point in zip(frame["shelter_id"], frame.geometry, strict=True):
        east, north = to.transform(point.x, point.y)
        expected = (north, east) if crs_def.north_first else (east, north)
        tol = 1e-6 if crs_def.geographic else 1e-3
        assert np.allclose(served[sid], expected, atol=tol), (sid, served[sid], expected)
    if crs == ogc.STORAGE_CRS:  # zone X: northing first, metres around Aomori's origin (40°N 140°50'E)
        x, y = served[frame["shelter_id"].iloc[0]]
        assert 0 < x < 150_000 and -50_000 < y < 50_000


def test_every_crs_in_the_metadata_is_answered_and_the_rest_refused(api):
    meta = json.loads(ogc.collection(api.store, "districts", PUBLIC, BASE).body)
    assert meta["crs"][0] == ogc.CRS84 and meta["storageCrs"] == ogc.STORAGE_CRS
    assert set(meta["crs"]) == {ogc.CRS84} | {f"{ogc.EPSG_URI}{c}" for c in [4326, 6668, *range(6669, 6688)]}
    for crs in meta["crs"]:
        answer = ogc.items(api.store, "districts", PUBLIC, BASE, [("crs", crs), ("limit", "1")])
        assert answer.headers["Content-Crs"] == f"<{crs}>"
    for bad in ("EPSG:6678", "http://www.opengis.net/def/crs/EPSG/0/3857", "CRS84", ""):
        with pytest.raises(ogc.InputError) as raised:
            ogc.items(api.store, "districts", PUBLIC, BASE, [("crs", bad)])
        assert "対応していません" in str(raised.value) and "unsupported CRS" in str(raised.value)


def test_encoded_once_per_build(api):
    """The second request of a collection reuses the first one's encoding (the snapshot's memo)."""
    first = ogc.collection_data(api.store, "districts", PUBLIC)
    assert ogc.collection_data(api.store, "districts", PUBLIC) is first
    assert ogc.collection_data(api.store, "districts", STAFF) is not first
