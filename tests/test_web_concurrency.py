"""Several server processes on one store lose nothing (GeoPackage and PostGIS alike).

Two ``uvicorn`` processes serve one store with one signing key (a browser's session works on
either). Twenty outreach decisions are sent at once, split between them: every one is kept with
its own id, no answer is a 5xx, and the access log has a row for each. Then a decision is recorded
while sixteen connections read a coordinator's personal district page: every page answers 200,
the decision is kept, and the log holds exactly one register and one cooperators read per page.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from karte.domain.access import Access, Level
from karte.domain.layers import Layer
from karte.services import outreach
from karte.store import GeoPackageStore, open_store
from karte.users import UserFile

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

PASSWORD = "concurrency-pass-1"
KEY = "concurrency-test-key-" + "k" * 24
DISTRICT = "S05"


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def target(request, demo, tmp_path):
    """(store URL or path, store) holding the demo: a consistent copy of the session's GeoPackage,
    or the demo built into this session's PostGIS database."""
    if request.param == "gpkg":
        path = tmp_path / "karte.gpkg"
        with sqlite3.connect(demo[1] / "karte.gpkg") as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        return str(path), GeoPackageStore(path)
    from karte.store.cli import export_store, import_store

    url = request.getfixturevalue("pg_app_url")
    store = request.getfixturevalue("pg_store")
    import_store(export_store(GeoPackageStore(demo[1] / "karte.gpkg"), tmp_path / "demo.gpkg"), store)
    return url, store


def _serve(target: str, folder: Path, n: int = 2) -> tuple[list[subprocess.Popen], list[str]]:
    users = folder / "users.json"
    if not users.exists():
        UserFile(users).add("coord", PASSWORD, level="coordinator")
    env = {**os.environ, "KARTE_USERS_FILE": str(users), "KARTE_SECRET_KEY": KEY,
           "KARTE_WORKSPACE": str(folder), "KARTE_BASEMAP": "none"}
    if target.startswith("postgresql"):
        env["KARTE_DATABASE_URL"] = target
    else:
        env["KARTE_DATABASE_URL"] = ""
        env["KARTE_STORE"] = target
    procs, bases = [], []
    for _ in range(n):
        port = _free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env))
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        _wait_up(base)
    return procs, bases


def _stop(procs) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


async def _login(base: str) -> tuple[httpx.Cookies, str]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = await client.post("/login", data={"username": "coord", "password": PASSWORD, "csrf": token,
                                              "next": "/outreach"})
        assert r.status_code == 303, r.text
        page = await client.get("/outreach")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return client.cookies, csrf


async def _decide(bases, pairs, cookies, csrf) -> list[int]:
    clients = [httpx.AsyncClient(base_url=b, cookies=cookies, timeout=180) for b in bases]
    try:
        async def one(i, pair):
            r = await clients[i % len(clients)].post("/outreach/decisions", data={
                "person_id": pair[0], "cooperator_id": pair[1], "decision": "confirmed", "csrf": csrf})
            return r.status_code
        return await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    finally:
        for c in clients:
            await c.aclose()


def _open_pairs(store, n: int) -> list[tuple[str, str]]:
    found = outreach.suggestions(store, Access("picker", Level.COORDINATOR, route="test"))
    found = found.drop_duplicates("person_id")
    assert len(found) >= n, f"the demo has {len(found)} open suggestions"
    return list(zip(found["person_id"].astype(str), found["cooperator_id"].astype(str), strict=True))[:n]


def test_twenty_decisions_split_between_two_servers_are_all_kept(target, tmp_path):
    url, store = target
    pairs = _open_pairs(store, 20)
    before = len(open_store(url).audit_log())  # the PostGIS log is never emptied between tests
    procs, bases = _serve(url, tmp_path)
    try:
        async def run():
            cookies, csrf = await _login(bases[0])
            return await _decide(bases, pairs, cookies, csrf)

        statuses = asyncio.run(run())
    finally:
        _stop(procs)
    assert statuses == [303] * 20
    got = open_store(url).read(Layer.DECISIONS)
    assert len(got) == 20 and got["decision_id"].is_unique
    assert set(zip(got["person_id"], got["cooperator_id"], strict=True)) == set(pairs)
    assert set(got["decided_by"]) == {"coord"}
    log = open_store(url).audit_log().iloc[before:]
    appends = log[(log["action"] == "append") & (log["layer"] == Layer.DECISIONS)]
    assert len(appends) == 20 and set(appends["actor"]) == {"coord"}
    assert set(appends["level"]) == {"coordinator"}


def test_a_decision_while_sixteen_connections_read_personal_pages(target, tmp_path):
    url, store = target
    pairs = _open_pairs(store, 4)
    procs, bases = _serve(url, tmp_path, n=1)
    base = bases[0]
    before = len(open_store(url).audit_log())
    try:
        async def run():
            cookies, csrf = await _login(base)
            statuses: list[int] = []
            stop = time.monotonic() + 6
            async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=180,
                                         limits=httpx.Limits(max_connections=17)) as client:
                async def reader():
                    while time.monotonic() < stop:
                        r = await client.get(f"/districts/{DISTRICT}")
                        statuses.append(r.status_code)

                async def writer():
                    codes = []
                    for pair in pairs:
                        await asyncio.sleep(1)
                        codes += await _decide([base], [pair], cookies, csrf)
                    return codes

                results = await asyncio.gather(writer(), *(reader() for _ in range(16)))
            return results[0], statuses

        decided, pages = asyncio.run(run())
    finally:
        _stop(procs)
    assert decided == [303] * len(pairs)
    assert pages and set(pages) == {200}, {s: pages.count(s) for s in set(pages)}
    store = open_store(url)
    assert len(store.read(Layer.DECISIONS)) == len(pairs)
    log = store.audit_log().iloc[before:]
    page_reads = log[(log["route"] == "web:district_page") & (log["actor"] == "coord")]
    assert list(page_reads["layer"]).count("register") == len(pages)
    assert list(page_reads["layer"]).count("cooperators") == len(pages)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"uvicorn did not start at {base}")
