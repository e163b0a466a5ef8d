"""Benchmark: a drill with sixteen people marking at once, and the dashboard at that load.

    .venv/bin/python bench/drill.py [--store PATH_OR_URL] [--seconds 20] [--markers 16] [--workers 1]

Starts uvicorn (its own process) on a free localhost port over a demo store (built into a
temporary folder unless ``--store`` names a workspace's ``karte.gpkg`` or a ``postgresql+psycopg://``
URL of a store with a build), starts a drill of two districts, and logs in ``--markers`` district
members (half in each district, one bearer token each). Then, for ``--seconds``, every member
sends marks as fast as the server answers, one mark per request as a phone sends them (each with
its own device id, for a person of their district's roll), over its own keep-alive connection,
while two coordinators ask for the dashboard's status of each district once a second, as the
dashboard page does. It prints the marks stored per second, the latency of a mark, the dashboard's
latency under that load and, measured in the same run before the load, without it; and checks
that every mark the server acknowledged is stored exactly once.

The load comes from httpx's async client in this process (Python: it competes for the CPU with the
server on a small machine, so the figures are a floor). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from karte.build import Inputs, build_demo
from karte.domain.access import Access, Level
from karte.domain.drills import MARKS
from karte.services import drills
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore, open_store
from karte.users import UserFile

DISTRICTS = ("S05", "S06")
PASSWORD = "bench-drill-password-1"
STATUSES = ("absent", "safe", "evacuated", "needs_help", "unconfirmed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a workspace's karte.gpkg or a postgresql+psycopg:// URL "
                                        "(default: build the demo)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--markers", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="karte-bench-drill-"))
    target = args.store or str(_build_demo(folder))
    store = open_store(target)
    users = folder / "users.json"
    file = UserFile(users)
    markers = [(f"marker{i:02d}", DISTRICTS[i % 2]) for i in range(args.markers)]
    for name, district in markers:
        file.add(name, PASSWORD, level="district_member", district=district)
    file.add("coord", PASSWORD, level="coordinator")
    coordinator = Access("bench", Level.COORDINATOR, route="bench")
    drill = drills.start_drill(store, coordinator, list(DISTRICTS), name="ベンチマーク訓練",
                               started_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    rolls = {d: [p["person_id"] for p in drills.roll(store, coordinator, drill, d)] for d in DISTRICTS}
    before = _stored(store, drill["drill_id"])

    port = _free_port()
    env = {**os.environ, "KARTE_USERS_FILE": str(users), "KARTE_SECRET_KEY": "bench-only-secret-0123456789",
           "KARTE_BASEMAP": "none"}
    if target.startswith("postgresql"):
        env["KARTE_DATABASE_URL"] = target
    else:
        if Path(target).name != "karte.gpkg":
            sys.exit("--store must be a workspace's karte.gpkg or a PostGIS URL")
        env.update(KARTE_WORKSPACE=str(Path(target).parent), KARTE_DATABASE_URL="")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
        env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base)
        acknowledged = asyncio.run(_run(base, args, drill["drill_id"], markers, rolls))
    finally:
        server.terminate()
        server.wait(timeout=20)
    stored = _stored(store, drill["drill_id"]) - before
    print(f"marks acknowledged {len(acknowledged)}, stored {stored}: "
          + ("every mark once" if stored == len(acknowledged) == len(set(acknowledged)) else "MISMATCH"))


async def _run(base: str, args, drill_id: str, markers, rolls) -> list[str]:
    kind = "PostGIS" if (args.store or "").startswith("postgresql") else "GeoPackage"
    print(f"uvicorn, {args.workers} worker(s), store {kind}; {len(markers)} markers, {args.seconds:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f} before")
    tokens = {name: await _token(base, name) for name, _ in markers}
    coord = await _token(base, "coord")
    status_urls = [f"/api/districts/{d}/drills/status?drill={drill_id}" for d in DISTRICTS]

    quiet = await _poll(base, coord, status_urls, seconds=5.0)  # the dashboard alone
    acknowledged: list[str] = []
    mark_latency: list[float] = []
    failures = 0
    stop = time.perf_counter() + args.seconds

    async def marker(name: str, district: str) -> None:
        nonlocal failures
        roll = rolls[district]
        rng = random.Random(name)
        async with httpx.AsyncClient(base_url=base, timeout=60,
                                     headers={"Authorization": f"Bearer {tokens[name]}"}) as client:
            while time.perf_counter() < stop:
                mark = {"id": str(uuid.uuid4()), "person_id": rng.choice(roll), "district": district,
                        "status": rng.choice(STATUSES), "marked_at": dt.datetime.now(dt.UTC).isoformat()}
                t = time.perf_counter()
                try:
                    r = await client.post("/api/drills/marks", json={"drill": drill_id, "marks": [mark]})
                    ok = r.status_code == 200 and r.json()["received"] == [mark["id"]]
                except httpx.HTTPError:
                    ok = False
                mark_latency.append(time.perf_counter() - t)
                if ok:
                    acknowledged.append(mark["id"])
                else:
                    failures += 1

    t0 = time.perf_counter()
    loaded, _ = await asyncio.gather(_poll(base, coord, status_urls, seconds=args.seconds, clients=2),
                                     asyncio.gather(*(marker(n, d) for n, d in markers)))
    wall = time.perf_counter() - t0
    print(f"{'':28} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'n':>6} {'fail':>5}")
    _row("marks (16 phones)", len(acknowledged) / wall, mark_latency, failures)
    _row("dashboard status, alone", None, quiet, 0)
    _row("dashboard status, loaded", None, loaded, 0)
    print(f"load average {os.getloadavg()[0]:.2f} after")
    return acknowledged


async def _poll(base: str, token: str, urls: list[str], *, seconds: float, clients: int = 1) -> list[float]:
    """Latencies of the dashboard's status, asked once a second per URL by ``clients`` viewers."""
    out: list[float] = []
    stop = time.perf_counter() + seconds

    async def viewer() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            while time.perf_counter() < stop:
                tick = time.perf_counter()
                for url in urls:
                    t = time.perf_counter()
                    r = await client.get(url)
                    r.raise_for_status()
                    out.append(time.perf_counter() - t)
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))

    await asyncio.gather(*(viewer() for _ in range(clients)))
    return out


def _row(label: str, rate: float | None, latencies: list[float], failures: int) -> None:
    if not latencies:
        print(f"{label:28} no answers")
        return
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0]] * 99
    shown = f"{rate:7.1f}" if rate is not None else f"{'—':>7}"
    print(f"{label:28} {shown} {statistics.median(latencies) * 1e3:7.0f} {q[94] * 1e3:7.0f} "
          f"{q[98] * 1e3:7.0f} {len(latencies):6d} {failures:5d}")


async def _token(base: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post("/api/token", data={"username": name, "password": PASSWORD})
        r.raise_for_status()
        return r.json()["access_token"]


def _stored(store, drill_id: str) -> int:
    if MARKS not in store.layers():
        return 0
    marks = store.read(MARKS)
    return int((marks["drill_id"] == drill_id).sum())


def _build_demo(folder: Path) -> Path:
    path = folder / "karte.gpkg"
    t = time.perf_counter()
    build_demo(GeoPackageStore(path), Inputs.shipped(REPO_DATA), seed=2026)
    print(f"demo built in {time.perf_counter() - t:.1f} s ({path})")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/drills", timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("the server did not start")


if __name__ == "__main__":
    main()
