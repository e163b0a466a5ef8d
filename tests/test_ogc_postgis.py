"""OGC API and vector tiles on the PostGIS store answer as on the GeoPackage: same features, same
filters, same suppression, same coordinates in every CRS.

The OGC collections are the build snapshot's public layers (derived measures, suppression), so
both stores evaluate filters in memory on the same frames; this test is the proof that the
store underneath changes nothing a client sees.
"""

from __future__ import annotations

import api_fixtures as fx
import pytest

from karte import snapshot
from karte.services import ogc

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

QUERIES = [
    ("small_areas", {"limit": "10", "bbox": "140.7,40.8,140.75,40.85"}),
    ("small_areas", {"filter": "population > 1000", "sortby": "-population"}),
    ("small_areas", {"filter": "elderly_alone = '秘匿'", "properties": "name,elderly_alone"}),
    ("small_areas", {"district_code": "S01", "crs": ogc.STORAGE_CRS}),
    ("districts", {"filter": "S_INTERSECTS(geometry, POINT(140.74 40.82))"}),
    ("shelters", {"filter": "welfare = TRUE", "crs": ogc.EPSG_URI + "4326"}),
    ("coverage", {"limit": "5", "crs": ogc.EPSG_URI + "6679"}),
]


@pytest.fixture
def both(pg_store, demo, tmp_path):
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    snapshot.clear()
    yield fx.make_api(pg_store, tmp_path / "pg"), fx.make_api(fx.demo_store(demo), tmp_path / "gpkg")
    snapshot.clear()


def _strip(body: dict) -> dict:
    body.pop("timeStamp", None)
    return body


@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_items_are_the_same_on_both_stores(both, role):
    pg, gpkg = both
    for cid, params in QUERIES:
        url = f"/ogc/collections/{cid}/items"
        a = pg.client(role).get(url, params=params)
        b = gpkg.client(role).get(url, params=params)
        assert a.status_code == b.status_code == 200, (cid, params, a.text[:200])
        assert a.headers["content-crs"] == b.headers["content-crs"]
        body = _strip(a.json())
        assert body == _strip(b.json()), (cid, params)
        hidden_for_staff = role == "staff" and "秘匿" in params.get("filter", "")  # staff see no 秘匿
        assert (body["numberReturned"] > 0) != hidden_for_staff, (cid, params)


def test_queryables_and_tiles_are_the_same_on_both_stores(both):
    pg, gpkg = both
    for url in ("/ogc/collections/small_areas/queryables", "/tiles/small_areas/12/3649/1538.mvt",
                "/tiles/shelters/12/3649/1538.mvt"):
        a, b = pg.client("anonymous").get(url), gpkg.client("anonymous").get(url)
        assert a.status_code == b.status_code == 200 and a.content == b.content and a.content, url
