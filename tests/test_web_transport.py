"""What the web app sends over the wire: compressed pages, a configurable tile server."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def app_for(demo, tmp_path_factory):
    from api.app import create_app
    from api.deps import WebSettings
    from karte.store import GeoPackageStore

    def make(**settings):
        folder = tmp_path_factory.mktemp("transport")
        web = WebSettings(workspace=folder, users_file=folder / "users.json", **settings)
        return create_app(web, store=GeoPackageStore(demo[1] / "karte.gpkg"), warm=False)

    return make


def test_pages_are_gzipped_for_clients_that_accept_it(app_for):
    from fastapi.testclient import TestClient

    c = TestClient(app_for(basemap="none"))
    plain = c.get("/", headers={"Accept-Encoding": "identity"})
    packed = c.get("/", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.text == plain.text  # httpx undoes the compression: the same page
    assert int(packed.headers["content-length"]) < len(plain.content) / 3


def test_a_council_tile_server_replaces_gsi(app_for):
    from fastapi.testclient import TestClient

    url = "https://tiles.example.lg.jp/{z}/{x}/{y}.png"
    c = TestClient(app_for(tile_url=url, tile_attribution="青森市 地図タイル"))
    html = c.get("/districts/S05").text
    assert "tiles.example.lg.jp" in html and "青森市 地図タイル" in html
    assert "cyberjapandata.gsi.go.jp" not in html
