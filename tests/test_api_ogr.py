"""GDAL's OGC API - Features driver lists and reads every collection from a real uvicorn server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time

import pytest
import uvicorn
from test_api_support import make_app

from api.routes.ogc import COLLECTIONS

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    app = make_app(demo, tmp_path_factory.mktemp("ogr"))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(timeout=10)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": "/usr/bin:/bin", "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF"})


def test_ogrinfo_lists_every_collection(server):
    url, _ = server
    done = _run("ogrinfo", "-ro", "-so", f"OAPIF:{url}/ogc")
    assert done.returncode == 0, done.stderr
    for i, cid in enumerate(COLLECTIONS, start=1):
        assert f"{i}: {cid} (title: {COLLECTIONS[cid][0]})" in done.stdout


@pytest.mark.parametrize("cid", list(COLLECTIONS))
def test_ogr_reads_every_feature_as_the_store_has_it(server, cid, tmp_path):
    url, app = server
    out = tmp_path / f"{cid}.geojson"
    done = _run("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{url}/ogc", cid)
    assert done.returncode == 0, done.stderr
    assert "parsed incompletely" not in done.stderr  # no "秘匿" read as a number
    features = json.loads(out.read_text())["features"]
    from karte import views
    from karte.access import PUBLIC

    expected = views.layer_view(app.state.store, cid, PUBLIC)
    assert len(features) == len(expected) > 0
    key = views.FEATURE_KEYS[cid]
    assert sorted(str(f["properties"][key]) for f in features) == sorted(expected[key].astype(str))
    assert all(f["geometry"] is not None for f in features)


def test_ogrinfo_summary_with_bbox_filter(server):
    url, _ = server
    # a box around Aomori station: some but not all shelters
    done = _run("ogrinfo", "-ro", "-so", "-spat", "140.70", "40.80", "140.76", "40.84",
                f"OAPIF:{url}/ogc", "shelters")
    assert done.returncode == 0, done.stderr
    count = int(next(line for line in done.stdout.splitlines() if line.startswith("Feature Count"))
                .split(":")[1])
    assert 0 < count < 194
