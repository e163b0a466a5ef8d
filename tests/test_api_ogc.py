"""OGC API - Features as GDAL reads it: real uvicorn on a free localhost port, ``ogrinfo OAPIF:``.

GDAL's OAPIF driver is what QGIS uses too: if ``ogrinfo`` lists the collections, counts their
features through the paging links and filters by a bounding box, a desktop GIS reads them as they
are. Personal layers are not collections, whatever the user.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time

import api_fixtures as fx
import pytest

from karte.domain.access import PUBLIC
from karte.domain.layers import PERSONAL_LAYERS
from karte.services.layers import PERSONAL, layer_view
from karte.snapshot import current

api = fx.api  # the fixture

#: gdal-bin is part of the setup (scripts/setup.sh): a missing ogrinfo fails, it does not skip.
OGRINFO = shutil.which("ogrinfo") or "ogrinfo"


@pytest.fixture(scope="module")
def server(api):
    """The app on real uvicorn (a thread of this process), on a free port; yields its OGC URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    current(api.store).coverage()  # the first request would compute it (seconds)
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning",
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
