"""What every answer carries, which hosts are answered, what the server log gets from an error."""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
import threading
import time

import api_fixtures as fx
import httpx
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow

SECURITY_HEADERS = ("x-content-type-options", "referrer-policy", "x-frame-options", "content-security-policy")


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory) -> fx.Api:
    return fx.make_api(fx.demo_store(demo), tmp_path_factory.mktemp("responses"), basemap="gsi_pale")


@pytest.mark.parametrize("path", ["/", "/districts/S05", "/api/districts", "/api/districts/S05",
                                  "/api/districts/S05/tables/base.csv", "/api/layers/districts.geojson",
                                  "/ogc/collections/districts/items?limit=2", "/districts/S05/sheet.pdf",
                                  "/login", "/api/docs", "/api/health", "/nowhere"])
def test_anonymous_answers_are_not_stored_and_carry_the_security_headers(web, path):
    """Issue 16: anonymous responses carried no Cache-Control (a shared cache could keep a page
    and hand it to whoever asks next)."""
    r = TestClient(web.app, raise_server_exceptions=False).get(path, headers={"accept": "text/html"})
    assert r.headers["cache-control"] == "no-store", path
    assert "Cookie" in r.headers["vary"] and "Authorization" in r.headers["vary"]
    for name in SECURITY_HEADERS:
        assert name in r.headers, (path, name)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r"[0-9a-f]{12}", r.headers["x-request-id"])


def test_logged_in_answers_are_private_and_static_files_may_be_cached(web):
    member = web.client("member")
    assert member.get("/api/me").headers["cache-control"] == "private, no-store"
    r = TestClient(web.app).get("/static/karte-personal.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=3600"


def test_the_content_security_policy(web):
    html = TestClient(web.app).get("/districts/S05", headers={"accept": "text/html"})
    policy = html.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    assert "frame-ancestors 'self'" in policy and "object-src 'none'" in policy
    assert "https://cyberjapandata.gsi.go.jp" in policy  # the basemap's tiles
    scripts = re.findall(r"<script\b[^>]*>", html.text)
    runnable = [s for s in scripts if "application/json" not in s]
    assert runnable and all(f'nonce="{nonce}"' in s for s in runnable), scripts
    other = TestClient(web.app).get("/districts/S05", headers={"accept": "text/html"})
    assert re.search(r"'nonce-([^']+)'", other.headers["content-security-policy"]).group(1) != nonce


def test_a_forged_host_is_refused_and_never_reaches_a_link(web):
    """Issue 16: the Host header was reflected into the OGC API's links."""
    c = TestClient(web.app, raise_server_exceptions=False)
    assert c.get("/ogc", headers={"host": "evil.example"}).status_code == 400
    links = [link["href"] for link in c.get("/ogc").json()["links"]]
    assert links and all(href.startswith("http://testserver/") for href in links)


def test_allowed_hosts_from_the_settings(demo, tmp_path):
    from starlette.datastructures import URL

    from api.deps import public_base_url

    web = fx.make_api(fx.demo_store(demo), tmp_path, allowed_hosts="karte.example.jp, *.city.example.jp")
    c = TestClient(web.app, raise_server_exceptions=False, base_url="https://karte.example.jp")
    r = c.get("/ogc")
    assert r.status_code == 200 and r.json()["links"][0]["href"].startswith("https://karte.example.jp/ogc")
    assert c.get("/ogc", headers={"host": "gis.city.example.jp"}).status_code == 200
    assert c.get("/ogc", headers={"host": "localhost"}).status_code == 400
    assert c.get("/ogc", headers={"host": "city.example.jp.evil.example"}).status_code == 400

    class Request:  # a host that is not allowed never reaches a link (a wildcard-only setting)
        base_url = URL("http://evil.example/")
        app = web.app

    assert public_base_url(Request()) == "http://karte.example.jp"


def test_an_error_page_is_styled_japanese_with_a_way_back(web):
    c = TestClient(web.app, raise_server_exceptions=False)
    r = c.get("/districts/S99", headers={"accept": "text/html"})
    assert r.status_code == 404 and 'class="error-page"' in r.text and "トップ（全体図）へ戻る" in r.text
    assert "地区 S99 はありません" in r.text and r.headers["x-request-id"] in r.text
    r = c.get("/outreach", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code in (303, 401)
    r = c.get("/api/districts/S05/layers/register.geojson", headers={"accept": "text/html"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")


@pytest.fixture()
def served(web):
    """The app on a real uvicorn (its own logging included), with a route that fails like a
    database whose message quotes a row."""
    import uvicorn

    def boom():
        raise sqlite3.IntegrityError("UNIQUE constraint failed: register.person_id 斎藤 博 大字四戸橋1-1")

    if not any(getattr(r, "name", "") == "boom" for r in web.app.routes):
        web.app.add_api_route("/api/boom", boom, name="boom")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_the_server_log_gets_class_route_and_request_id_only(served, caplog):
    """Issue 16: server errors wrote whole tracebacks with SQLite/GDAL messages to the log."""
    with caplog.at_level(logging.DEBUG):
        r = httpx.get(f"{served}/api/boom", timeout=30)
        time.sleep(0.3)
    assert r.status_code == 500 and r.json()["code"] == "server_error"
    assert "斎藤" not in r.text and "UNIQUE" not in r.text
    text = caplog.text
    assert "Traceback" not in text and "斎藤" not in text and "UNIQUE" not in text and "person_id" not in text
    rid = r.headers["x-request-id"]
    line = next(rec.getMessage() for rec in caplog.records if rid in rec.getMessage())
    assert "IntegrityError" in line and "boom" in line


def test_debug_mode_logs_the_traceback(demo, tmp_path, caplog):
    web = fx.make_api(fx.demo_store(demo), tmp_path, debug=True)

    def boom():
        raise ValueError("detail for the developer")

    web.app.add_api_route("/api/boom", boom, name="boom")
    with caplog.at_level(logging.DEBUG):
        r = TestClient(web.app, raise_server_exceptions=False).get("/api/boom")
    assert r.status_code == 500 and "Traceback" in caplog.text
