"""What the web app sends over the wire: compressed pages, a configurable tile server."""

from __future__ import annotations

import re

import api_fixtures as fx
import pytest


@pytest.fixture(scope="module")
def app_for(demo, tmp_path_factory):
    """settings -> an app over the demo store (:func:`api_fixtures.make_api`)."""
    def make(**settings):
        return fx.make_api(fx.demo_store(demo), tmp_path_factory.mktemp("transport"), **settings).app

    return make


def test_pages_are_gzipped_for_clients_that_accept_it(app_for):
    from fastapi.testclient import TestClient

    c = TestClient(app_for(basemap="none"))
    plain = c.get("/", headers={"Accept-Encoding": "identity"})
    packed = c.get("/", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    def page(r):  # the same page but for each answer's own script nonce (the CSP)
        return re.sub(r'nonce="[^"]*"', 'nonce=""', r.text)

    assert page(packed) == page(plain)  # httpx undoes the compression: the same page
    assert int(packed.headers["content-length"]) < len(plain.content) / 3


def test_a_council_tile_server_replaces_gsi(app_for):
    from fastapi.testclient import TestClient

    url = "https://tiles.example.lg.jp/{z}/{x}/{y}.png"
    c = TestClient(app_for(tile_url=url, tile_attribution="青森市 地図タイル"))
    for path in ("/", f"/districts/{fx.OWN}"):
        html = fx.with_map(c, c.get(path).text)
        assert "tiles.example.lg.jp" in html and "青森市 地図タイル" in html, path
        assert "cyberjapandata.gsi.go.jp" not in html, path


def test_the_warm_up_freezes_what_it_loaded(demo):
    """After the server's warm-up (the snapshot loaded), the objects alive are out of the garbage
    collector's reach: a full collection no longer walks the snapshot (in a child process, so
    this test's process is left as it was)."""
    import subprocess
    import sys

    script = ("import gc, sys\n"
              "from api.app import _warm\n"
              "from karte.store import GeoPackageStore\n"
              "before = gc.get_freeze_count()\n"
              "_warm(GeoPackageStore(sys.argv[1]))\n"
              "print(before, gc.get_freeze_count(), len(gc.get_objects()))\n")
    out = subprocess.run([sys.executable, "-c", script, str(demo[1] / "karte.gpkg")],
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    before, frozen, tracked = map(int, out)
    assert before == 0 and frozen > 100_000 and tracked < frozen / 10
