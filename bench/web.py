"""Benchmark: the web app under 16 concurrent connections, and the size of its pages.

    .venv/bin/python bench/web.py [--store PATH] [--requests 400] [--seconds 30] [--concurrency 16]

Starts uvicorn (one worker, its own process) on a free localhost port over a demo store (built
into a temporary folder unless ``--store`` names a GeoPackage), then for each URL sends at most
``--requests`` requests (httpx only) or for at most ``--seconds`` seconds, whichever comes first, over
``--concurrency`` keep-alive connections, and prints requests per second,
p50/p95 latency, failures, and the size of the answer (and its gzip size, for a server or proxy
that compresses). The load comes from ``wrk`` (Debian's, installed by ``scripts/setup.sh``: a C
load generator that leaves the server's core alone) when it is on the PATH, else from httpx's async
client (Python: it competes for the CPU, so figures are lower). The first request of each URL
(cold caches) is timed separately. Measured:
the public and the coordinator's district page, the district map's script (served apart from
the page, fetched once per build: the browser keeps it), the district GeoJSON (the district
polygon and the salon-coverage layer), the city page; the outreach page's size. The coordinator's page (the
same district, with its personal tables and map layers read from the store as the coordinator and
logged) is printed beside the public one with the throughput ratio between them: the two are
measured in the same run against the same server. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import html
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from karte.build import Inputs, build_demo
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore
from karte.users import UserFile

DISTRICT = "S05"
PASSWORD = "bench-coordinator-1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="GeoPackage to serve (default: build the demo)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="karte-bench-web-"))
    store = args.store or _build_demo(folder)
    users = folder / "users.json"
    UserFile(users).add("coord", PASSWORD, level="coordinator")
    port = _free_port()
    env = {**os.environ, "KARTE_WORKSPACE": str(store.parent), "KARTE_DATABASE_URL": "",
           "KARTE_USERS_FILE": str(users), "KARTE_SECRET_KEY": "bench-only-secret"}
    if store.name != "karte.gpkg":
        sys.exit("--store must be a workspace's karte.gpkg")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
        env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base)
        asyncio.run(_run(base, args))
    finally:
        server.terminate()
        server.wait(timeout=20)


async def _run(base: str, args) -> None:
    public = [("district page (public)", f"/districts/{DISTRICT}"),
              ("district GeoJSON: districts", f"/api/districts/{DISTRICT}/layers/districts.geojson"),
              ("district GeoJSON: coverage", f"/api/districts/{DISTRICT}/layers/coverage.geojson"),
              ("city page (public)", "/")]
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        page = (await client.get(f"/districts/{DISTRICT}")).text
    script = html.unescape(re.search(r'src="(/maps/[^"]+)"', page).group(1))  # the page names its version
    public.insert(1, ("district map script (public)", script))
    cookies = await _login(base)
    private = [("district page (coordinator)", f"/districts/{DISTRICT}")]
    tool = "wrk, 1 thread" if shutil.which("wrk") else "httpx (no wrk on the PATH)"
    print(f"uvicorn, {args.workers} worker(s); load from {tool}; {args.concurrency} connections, "
          f"{args.seconds:.0f} s per URL; load average {os.getloadavg()[0]:.2f} before")
    print(f"{'URL':32} {'cold s':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'n':>5} "
          f"{'fail':>4} {'bytes':>8} {'gzip':>7}")
    results = {}
    for label, path in public:
        results[label] = await _measure(base, label, path, args, cookies=None)
    for label, path in private:
        results[label] = await _measure(base, label, path, args, cookies=cookies)
    pub, coord = results["district page (public)"], results["district page (coordinator)"]
    print(f"coordinator ÷ public district page: throughput {coord[0] / pub[0]:.2f} "
          f"({coord[0]:.0f} / {pub[0]:.0f} req/s), coordinator p95 {coord[1]:.0f} ms; "
          f"load average {os.getloadavg()[0]:.2f} after")
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=120) as client:
        r = await client.get("/outreach")
        print(f"{'outreach page (coordinator)':32} size {len(r.content):,} bytes "
              f"(gzip {len(gzip.compress(r.content)):,}), status {r.status_code}")


async def _measure(base: str, label: str, path: str, args, *, cookies) -> tuple[float, float]:
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, base, label, path, args, cookies)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, limits=limits, timeout=120) as client:
        t0 = time.perf_counter()
        first = await client.get(path)
        cold = time.perf_counter() - t0
        size, zipped = len(first.content), len(gzip.compress(first.content))
        latencies: list[float] = []
        failures = 0
        sent = 0
        deadline = time.perf_counter() + args.seconds

        async def worker():
            nonlocal sent, failures
            while sent < args.requests and time.perf_counter() < deadline:
                sent += 1
                t = time.perf_counter()
                try:
                    r = await client.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                failures += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0]] * 99
    rate = len(latencies) / wall
    print(f"{label:32} {cold:7.2f} {rate:7.1f} {statistics.median(latencies) * 1e3:7.0f} "
          f"{q[94] * 1e3:7.0f} {q[98] * 1e3:7.0f} {len(latencies):5d} {failures:4d} {size:8,} {zipped:7,}")
    return rate, q[94] * 1e3


#: wrk prints one JSON line: requests, seconds, latency percentiles (µs), failed answers.
_WRK_REPORT = """
done = function(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  io.write(string.format('{"requests": %d, "us": %d, "p50": %d, "p95": %d, "p99": %d, "failed": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), failed))
end
"""


def _wrk(base: str, label: str, path: str, args, cookies) -> tuple[float, float]:
    """``path`` under ``wrk`` (one thread, ``--concurrency`` connections, ``--seconds``)."""
    headers = {"Accept-Encoding": "gzip"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    t0 = time.perf_counter()
    first = httpx.get(base + path, headers=headers, timeout=120)
    cold = time.perf_counter() - t0
    size, zipped = len(first.content), len(gzip.compress(first.content))
    # every worker past its cold start: a new connection per request (a kept-alive one stays
    # with one worker, and another's first page would then be built during the measurement)
    with httpx.Client(timeout=120, headers={**headers, "Connection": "close"}) as warm:
        for _ in range(8 * args.workers):
            warm.get(base + path)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_REPORT)
    cmd = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{max(1, int(args.seconds))}s", "-s", script.name,
           *[x for k, v in headers.items() for x in ("-H", f"{k}: {v}")], base + path]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    rate = report["requests"] / (report["us"] / 1e6)
    print(f"{label:32} {cold:7.2f} {rate:7.1f} {report['p50'] / 1e3:7.0f} {report['p95'] / 1e3:7.0f} "
          f"{report['p99'] / 1e3:7.0f} {report['requests']:5d} {report['failed']:4d} {size:8,} {zipped:7,}")
    return rate, report["p95"] / 1e3


async def _login(base: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = await client.post("/login", data={"username": "coord", "password": PASSWORD, "csrf": token,
                                              "next": "/"})
        if r.status_code >= 400:
            sys.exit(f"login failed: {r.status_code}")
        return client.cookies


def _build_demo(folder: Path) -> Path:
    t0 = time.perf_counter()
    path = folder / "karte.gpkg"
    build_demo(GeoPackageStore(path), Inputs.shipped(REPO_DATA), seed=2026)
    print(f"demo store built in {time.perf_counter() - t0:.1f} s: {path}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("uvicorn did not start")


if __name__ == "__main__":
    main()
