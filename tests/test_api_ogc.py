"""OGC API - Features as GDAL reads it: real uvicorn on a free localhost port, ``ogrinfo OAPIF:``.

GDAL's OAPIF driver is what QGIS uses too: if ``ogrinfo`` lists the collections, counts their
features through the paging links, reads their geometry type and filters by a bounding box and by
an attribute filter it sends to the server as CQL2 text, a desktop GIS reads them as they are.
Personal layers are not collections, whatever the user.

Two GDALs: Debian's ``ogrinfo`` (gdal-bin, 3.6) and the GDAL inside pyogrio's wheel (3.12). The
3.6 driver knows no CRS but CRS84, so the ``crs`` request (Part 2: the answer in JGD2011 zone X
with ``Content-Crs``) is driven through the newer one; both send filters, and the server's
request log shows they were evaluated there, not by GDAL.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qsl

import api_fixtures as fx
import numpy as np
import pytest
import shapely

from karte.domain.access import PUBLIC
from karte.domain.layers import PERSONAL_LAYERS
from karte.services import ogc
from karte.services.layers import PERSONAL, layer_view
from karte.snapshot import current

api = fx.api  # the fixture

#: gdal-bin is part of the setup (scripts/setup.sh): a missing ogrinfo fails, it does not skip.
OGRINFO = shutil.which("ogrinfo") or "ogrinfo"


class Recorder:
    """The app, with every request's path and query kept (which filters reached the server)."""

    def __init__(self, app):
        self.app = app
        self.seen: list[tuple[str, dict]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["path"], dict(parse_qsl(scope["query_string"].decode()))))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def recorder(api):
    return Recorder(api.app)


@pytest.fixture(scope="module")
def server(api, recorder):
    """The app on real uvicorn (a thread of this process), on a free port; yields its OGC URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    current(api.store).coverage()  # the first request would compute it (seconds)
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/ogc"
    server.should_exit = True
    thread.join(10)


def ogrinfo(*args: str) -> str:
    done = subprocess.run([OGRINFO, "-ro", *args], capture_output=True, text=True, timeout=120,
                          env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr, done.stderr
    return done.stdout


def test_ogrinfo_lists_every_collection(server):
    from api.routes.ogc import COLLECTIONS

    out = ogrinfo("-so", f"OAPIF:{server}")
    listed = re.findall(r"^\d+: (\w+)", out, flags=re.MULTILINE)
    assert listed == list(COLLECTIONS)
    assert {"districts", "small_areas", "shelters", "services", "coverage"} <= set(listed)
    assert not set(listed) & (PERSONAL | PERSONAL_LAYERS)


@pytest.mark.parametrize("collection", ["districts", "small_areas", "shelters", "emergency_sites",
                                        "services", "coverage", "catchments"])
def test_ogrinfo_reads_every_feature_of_a_collection(api, server, collection):
    from api.routes.ogc import COLLECTIONS

    if collection not in COLLECTIONS:
        pytest.fail(f"{collection} is not an OGC collection")
    expected = len(layer_view(api.store, collection, PUBLIC))
    summary = ogrinfo("-so", f"OAPIF:{server}", collection)
    assert f"Feature Count: {expected}" in summary
    # read them all: GDAL follows the "next" links page by page
    features = ogrinfo("-q", f"OAPIF:{server}", collection)
    assert len(re.findall(r"^OGRFeature\(", features, flags=re.MULTILINE)) == expected
    lon0, lat0, lon1, lat1 = map(float, re.search(
        r"Extent: \(([\d.]+), ([\d.]+)\) - \(([\d.]+), ([\d.]+)\)", summary).groups())
    assert 140.4 < lon0 < lon1 < 141.1 and 40.5 < lat0 < lat1 < 41.1


def test_ogrinfo_bbox_filter_returns_the_features_inside(api, server):
    import shapely

    box = (140.70, 40.80, 140.75, 40.85)
    out = ogrinfo("-q", "-spat", *map(str, box), f"OAPIF:{server}", "shelters")
    ids = set(re.findall(r"shelter_id \(String\) = (\S+)", out))
    shelters = layer_view(api.store, "shelters", PUBLIC).to_crs("EPSG:4326")
    inside = shelters[shelters.intersects(shapely.box(*box))]
    assert ids == set(inside["shelter_id"]) and 0 < len(ids) < len(shelters)


def test_public_small_counts_reach_gdal_suppressed(api, server):
    """GDAL types a count column by its values; a suppressed count is never its number."""
    out = ogrinfo("-q", f"OAPIF:{server}", "small_areas")
    values = re.findall(r"^  elderly_alone \(\w+\) = (.*)$", out, flags=re.MULTILINE)
    assert len(values) == len(layer_view(api.store, "small_areas", PUBLIC))
    assert not {"1", "2"} & set(values)


@pytest.mark.parametrize(("collection", "kind"), [
    ("districts", "Multi Polygon"), ("coverage", "Multi Polygon"), ("catchments", "Multi Polygon"),
    ("shelters", "Point")])
def test_ogrinfo_reads_the_declared_geometry_type(server, collection, kind):
    summary = ogrinfo("-so", f"OAPIF:{server}", collection)
    assert f"Geometry: {kind}" in summary


def test_ogrinfo_sends_a_cql2_filter_the_server_evaluates(api, server, recorder):
    """``ogrinfo -where`` (Debian's GDAL 3.6): the driver finds ``filter-lang`` with ``cql-text``
    and the queryable parameters in the OGC OpenAPI document and sends the filter; the features
    it lists are the server's direct answer to the same CQL2 filter."""
    frame = layer_view(api.store, "small_areas", PUBLIC)
    code = frame[frame["population"].astype(float) > 1000]["district_code"].mode()[0]
    where = f"population > 1000 AND district_code = '{code}'"
    before = len(recorder.seen)
    out = ogrinfo("-q", f"OAPIF:{server}", "small_areas", "-where", where)
    listed = re.findall(r"key_code \(String\) = (\S+)", out)
    direct = api.client("anonymous").get("/ogc/collections/small_areas/items",
                                         params={"filter": where, "limit": "1000"}).json()
    assert listed == [f["id"] for f in direct["features"]] and 0 < len(listed) < len(frame)
    sent = [q for path, q in recorder.seen[before:] if path.endswith("/small_areas/items") and "filter" in q]
    assert sent and all(q["filter-lang"] == "cql-text" for q in sent)
    assert {q["filter"] for q in sent} == {f"(population > 1000) AND (district_code = '{code}')"}


def gdal_read(tmp_path, url: str, layer: str, **options):
    """``pyogrio.read_dataframe`` with pyogrio's own GDAL (3.12) in a child process (in this one it
    would hold the interpreter while the server thread waits to answer it)."""
    out = tmp_path / f"{layer}.gpkg"
    script = ("import sys, json, pyogrio; kw = json.loads(sys.argv[3]); "
              "df = pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2], **kw); "
              "pyogrio.write_dataframe(df, sys.argv[4], layer=sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", script, url, layer, json.dumps(options), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import pyogrio

    return pyogrio.read_dataframe(out, layer=layer)


def test_gdal_reads_zone_x_through_a_crs_request(api, server, recorder, tmp_path):
    """GDAL 3.12 (pyogrio's) asks for the answer in JGD2011 zone X (``crs``), reads the layer's
    CRS from it and gets metres equal to the stored geometries; with a CQL2 filter too."""
    before = len(recorder.seen)
    frame = gdal_read(tmp_path, f"OAPIF:{server}", "shelters", where="welfare = 1", CRS=ogc.STORAGE_CRS)
    assert frame.crs.to_epsg() == 6678
    stored = layer_view(api.store, "shelters", PUBLIC)
    welfare = stored[stored["welfare"].astype(bool)].set_index("shelter_id")
    assert sorted(frame["shelter_id"]) == sorted(welfare.index) and 0 < len(frame) < len(stored)
    for sid, point in zip(frame["shelter_id"], frame.geometry, strict=True):
        expected = welfare.geometry[sid]
        assert np.allclose((point.x, point.y), (expected.x, expected.y), atol=1e-3), sid
    sent = [q for path, q in recorder.seen[before:] if path.endswith("/shelters/items") and "filter" in q]
    assert sent and all(q["crs"] == ogc.STORAGE_CRS and q["filter"] == "welfare = 1" for q in sent)
    # the same through Debian's GDAL cannot ask for a CRS: it reads CRS84 and must agree too
    out = ogrinfo("-q", f"OAPIF:{server}", "shelters", "-where", "welfare = 1")
    points = re.findall(r"POINT \(([\d.]+) ([\d.]+)\)", out)
    as_lonlat = stored.to_crs("EPSG:4326").set_index("shelter_id")
    ids = re.findall(r"shelter_id \(String\) = (\S+)", out)
    assert sorted(ids) == sorted(welfare.index)
    for sid, (lon, lat) in zip(ids, points, strict=True):
        g = as_lonlat.geometry[sid]
        assert abs(float(lon) - g.x) < 1e-6 and abs(float(lat) - g.y) < 1e-6


def test_gdal_reads_polygons_in_zone_x_as_the_direct_answer(api, server, tmp_path):
    read = gdal_read(tmp_path, f"OAPIF:{server}", "districts", CRS=ogc.STORAGE_CRS)
    direct = api.client("anonymous").get("/ogc/collections/districts/items",
                                         params={"crs": ogc.STORAGE_CRS, "limit": "100"}).json()
    assert list(read["district_code"]) == [f["id"] for f in direct["features"]]
    for geom, feature in zip(read.geometry, direct["features"], strict=True):
        served = shapely.from_geojson(json.dumps(feature["geometry"]))
        served = shapely.transform(served, lambda c: c[:, ::-1])  # northing, easting -> x, y
        assert geom.geom_type == "MultiPolygon" and shapely.equals_exact(geom, served, tolerance=1e-6)
