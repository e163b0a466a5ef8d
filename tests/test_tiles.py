"""Vector tiles ``/tiles/{layer}/{z}/{x}/{y}.mvt`` on the demo store.

A tile decodes (Mapbox's decoder) to the layer's features there, with the properties the OGC
collection serves: for the public a hidden count is 「秘匿」 in the tile too. Tiles outside the
layer are empty, outside the grid 404, beyond the zoom range 400; personal layers are no
layers here. Each build encodes a tile once (the snapshot's memo), in a bounded cache.
"""

from __future__ import annotations

import math

import api_fixtures as fx
import mapbox_vector_tile
import pytest
import shapely

from karte.domain.access import PUBLIC, SUPPRESSED, Access, Level
from karte.services import tiles
from karte.services.layers import layer_view

api = fx.api  # the fixture
STAFF = Access(user="staff-t", level=Level.CITY_STAFF, route="test")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


AOMORI = tile_of(140.74, 40.82, 12)


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body)


def test_a_tile_holds_the_layers_features_there_with_their_properties(api):
    x, y = AOMORI
    r = api.client("anonymous").get(f"/tiles/small_areas/12/{x}/{y}.mvt")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["small_areas"]
    frame = layer_view(api.store, "small_areas", PUBLIC).to_crs("EPSG:3857")
    minx, miny, maxx, maxy = tiles.bounds(12, x, y)
    pad = (maxx - minx) * tiles.BUFFER / tiles.EXTENT
    inside = set(frame[frame.intersects(shapely.box(minx, miny, maxx, maxy))]["key_code"])
    buffered = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    near = set(frame[frame.intersects(buffered)]["key_code"])
    got = {f["properties"]["key_code"] for f in layer["features"]}
    assert inside <= got <= near and len(inside) > 10  # the tile and its 64-unit buffer
    assert layer["extent"] == tiles.EXTENT
    sample = layer["features"][0]
    assert sample["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert {"name", "district_code", "population"} <= set(sample["properties"])


def test_the_public_sees_hidden_counts_in_tiles_as_staff_see_numbers(api):
    x, y = AOMORI
    public = {f["properties"]["key_code"]: f["properties"] for f in
              decode(tiles.tile(api.store, "small_areas", 12, x, y, PUBLIC))["small_areas"]["features"]}
    staff = {f["properties"]["key_code"]: f["properties"] for f in
             decode(tiles.tile(api.store, "small_areas", 12, x, y, STAFF))["small_areas"]["features"]}
    hidden = {k for k, p in public.items() if p.get("elderly_alone") == SUPPRESSED}
    small = {k for k, p in staff.items() if p.get("elderly_alone") in (1, 2)}
    assert small and small <= hidden  # every small count is hidden (and what would give one away)
    # staff get numbers, as in their OGC answer (a count is text only where something is hidden)
    assert all(type(p["elderly_alone"]) is int for p in staff.values() if "elderly_alone" in p)
    for k, p in public.items():
        if k not in hidden and "elderly_alone" in p:
            assert int(p["elderly_alone"]) == staff[k]["elderly_alone"]  # the rest as staff see it


def test_points_land_in_their_tile(api):
    shelters = layer_view(api.store, "shelters", PUBLIC).to_crs("EPSG:4326")
    point = shelters.geometry.iloc[0]
    x, y = tile_of(point.x, point.y, 15)
    layer = decode(api.client("anonymous").get(f"/tiles/shelters/15/{x}/{y}.mvt").content)["shelters"]
    ids = {f["properties"]["shelter_id"] for f in layer["features"]}
    assert shelters["shelter_id"].iloc[0] in ids
    assert {f["geometry"]["type"] for f in layer["features"]} == {"Point"}


def test_empty_missing_and_refused_tiles(api):
    client = api.client("anonymous")
    empty = client.get("/tiles/districts/12/0/0.mvt")
    assert empty.status_code == 200 and empty.content == b""
    assert client.get("/tiles/districts/3/8/0.mvt").status_code == 404  # outside the zoom-3 grid
    assert client.get("/tiles/districts/23/0/0.mvt").status_code == 400
    assert client.get("/tiles/register/12/0/0.mvt").status_code == 404
    assert client.get("/tiles/cooperators/12/0/0.mvt").status_code == 404
    assert client.get("/tiles/districts/a/0/0.mvt").status_code == 404


def test_each_tile_is_encoded_once_per_build(api):
    x, y = AOMORI
    first = tiles.tile(api.store, "districts", 12, x, y, PUBLIC)
    assert tiles.tile(api.store, "districts", 12, x, y, PUBLIC) is first


@pytest.mark.parametrize("z", [8, 12, 15])
def test_tiles_of_every_layer_decode(api, z):
    from karte.services.ogc import COLLECTIONS

    x, y = tile_of(140.74, 40.82, z)
    for layer in COLLECTIONS:
        body = tiles.tile(api.store, layer, z, x, y, PUBLIC)
        if body:
            decoded = decode(body)
            assert list(decoded) == [layer] and decoded[layer]["features"]
