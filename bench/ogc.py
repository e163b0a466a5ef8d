"""Benchmark: OGC API - Features items, karte beside baselines measured in the same run.

    .venv/bin/python bench/ogc.py [--seconds 5] [--rounds 3] [--connections 16] [--store PATH]
                                  [--baseline-ref 3a710ed] [--variant MODULE:FACTORY] [--keep-db]

Installs nothing at run time (``wrk`` from Debian, ``scripts/setup.sh``). What it does, in one run:

1. builds the Aomori demo into a temporary GeoPackage (or serves ``--store``);
2. makes a database beside the PostGIS test database (``KARTE_TEST_DATABASE_URL``, as the tests
   find it: ``<db>_bench_ogc``), migrates it, imports the demo store into it (karte on PostGIS),
   and loads the same 564 small areas, as the public sees them, into a plain table with a GiST
   index (``public.ogc_small_areas``, EPSG:4326) for the per-request baselines;
3. starts the servers on free localhost ports, one uvicorn worker each:

   * karte on the GeoPackage and karte on PostGIS (``--karte-app``, this checkout), and a
     variant app on both (``--variant``) when one is given;
   * **karte, previous implementation**: the same app at ``--baseline-ref`` (default ``3a710ed``,
     the last commit before the OGC service of issue 21: ``layer_view`` and GeoJSON encoding on
     every request), extracted read-only with ``git archive``, its own demo built by that code,
     on a GeoPackage (bbox only: it has no filter);
   * **PostGIS per request** (``bench/ogc_baseline.py``): FastAPI, one SQL statement per request
     over ``public.ogc_small_areas`` (count, page and GeoJSON built in PostGIS, CQL2 translated
     to SQL by ``cql2``), the way tipg answers, without tipg;
   * tipg and pygeoapi over the same table when they are installed (not a dependency: without
     them the run says so and goes on);

   and checks each answers the measured requests with the same ``numberMatched`` and page size;
4. ``--rounds`` times, interleaved (every server once per round, so a change in the machine's
   load falls on all of them alike), sends ``items?bbox=140.7,40.8,140.75,40.85&limit=10``
   (118 small areas match) and then the CQL2 filter ``items?filter=population > 1000&limit=10``
   with ``wrk`` (one thread, ``--connections`` keep-alive connections, ``Accept-Encoding: gzip``
   as GIS clients send it) for ``--seconds`` each;
5. prints every round, then per server and request the medians over the rounds (req/s, p50,
   p95, p99), the ratios of the medians against each baseline, the load average
   (``os.getloadavg``) before and after every round, and what one ``karte.snapshot.current()``
   (the build check every karte request makes) costs in this process.

wrk runs on the same two cores as the servers (its one thread takes part of a core), so every
figure is lower than on an idle machine; the ratios are what to read. The database is dropped
at the end unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from karte.build import Inputs, build_demo
from karte.domain.access import PUBLIC
from karte.services.layers import layer_view
from karte.settings import REPO_DATA
from karte.snapshot import current
from karte.store import GeoPackageStore
from karte.store.cli import db_upgrade, import_store

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".venv" / "karte-postgis.env"
BBOX = "140.7,40.8,140.75,40.85"
FILTER = "population > 1000"
LIMIT = "10"
#: The last commit before issue 21's OGC service: the previous implementation, served as a baseline.
BASELINE_REF = "3a710ed"
MIGRATION_GUARD = 0x6B61727467  # the advisory lock the test sessions take around migrations
KARTE = ("karte (GeoPackage)", "karte (PostGIS)")
VARIANT = ("variant (GeoPackage)", "variant (PostGIS)")
PREVIOUS = "karte previous (GeoPackage)"
PER_REQUEST = "PostGIS per request"

#: wrk prints one JSON line: requests, seconds, latency percentiles (µs), failed answers.
WRK_REPORT = """
done = function(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  io.write(string.format('{"requests": %d, "us": %d, "p50": %d, "p95": %d, "p99": %d, "failed": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), failed))
end
"""


#: The virtualenv scripts/bench_venv.sh makes for tipg and pygeoapi.
BENCH_VENV_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
BASELINES_PYTHON = BENCH_VENV_PYTHON if BENCH_VENV_PYTHON.exists() else Path(sys.executable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk run per server, request and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (the medians are over them)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--store", type=Path, help="a workspace's karte.gpkg (default: build the demo)")
    parser.add_argument("--karte-app", default="api.app:create_app",
                        help="the karte app factory to serve (module:function)")
    parser.add_argument("--variant", default="",
                        help="also serve this app factory on both stores, in the same rounds "
                             "(a module that wraps api.app.create_app with one change)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF,
                        help="git commit of the previous implementation ('' to leave it out)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    parser.add_argument("--baselines-python", type=Path, default=BASELINES_PYTHON,
                        help="the Python that has tipg, pygeoapi, psycopg2 and uvicorn (default: "
                             ".venv-bench/bin/python when scripts/bench_venv.sh made it, else this one)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("missing: wrk (apt-get install wrk; scripts/setup.sh)")
    optional = [m for m in ("tipg", "pygeoapi", "psycopg2", "uvicorn")
                if not _importable(m, args.baselines_python)]
    if optional:
        print(f"not installed in {args.baselines_python}, so tipg and pygeoapi are not measured: "
              f"{', '.join(optional)} (bash scripts/bench_venv.sh installs them in .venv-bench)")
    else:
        print(f"tipg and pygeoapi: {_versions(args.baselines_python)}")

    folder = Path(tempfile.mkdtemp(prefix="karte-bench-ogc-"))
    gpkg = args.store or _build_demo(folder)
    admin = _setting("KARTE_TEST_DATABASE_URL")
    if not admin:
        sys.exit("KARTE_TEST_DATABASE_URL is not set (eval \"$(bash scripts/setup_postgis.sh)\")")
    db = f"{make_url(admin).database}_bench_ogc"
    admin_db = _with_database(admin, db)
    app_db = _with_database(_app_url(admin), db)
    print(f"machine: {os.cpu_count()} CPUs, load average {_load()} at the start")
    _create_database(admin, db)
    servers: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        with _migration_lock(admin):
            db_upgrade(admin_db)
        import_store(gpkg, app_db)
        _load_table(GeoPackageStore(gpkg), admin_db, app_user=make_url(app_db).username)
        print(f"PostGIS database {db} ready in {time.perf_counter() - t0:.1f} s")
        urls = _start_servers(servers, folder, gpkg, app_db, args, with_tipg=not optional)
        for name, url in urls.items():
            _wait_up(name, url["probe"], folder)
        _check_same_answer(urls)
        print(f"wrk, 1 thread, {args.connections} connections, {args.seconds:.0f} s per URL and round, "
              f"{args.rounds} rounds interleaved, Accept-Encoding: gzip")
        runs: dict[tuple[str, str], list[dict]] = {}
        loads = []
        for n in range(1, args.rounds + 1):
            before = _load()
            print(f"round {n} (load average {before} before)")
            _header()
            for kind in ("bbox", "filter"):
                for name, url in urls.items():
                    if url.get(kind):
                        run = _wrk(name, kind, url[kind], args)
                        if run:
                            runs.setdefault((name, kind), []).append(run)
            loads.append((before, _load()))
        _medians(runs, args.rounds)
        _ratios(runs)
        _snapshot_check_cost(GeoPackageStore(gpkg))
        print("load average (1, 5, 15 min) before → after each round: "
              + "; ".join(f"{b} → {a}" for b, a in loads))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=20)
        if not args.keep_db:
            _drop_database(admin, db)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --- the database --------------------------------------------------------------------------------

def _setting(name: str) -> str:
    if os.environ.get(name, "").strip():
        return os.environ[name].strip()
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            if line.strip().startswith(f"export {name}="):
                return line.split("=", 1)[1].strip().strip("'\"")
    return ""


def _app_url(admin: str) -> str:
    explicit = _setting("KARTE_TEST_APP_DATABASE_URL")
    if explicit:
        return explicit
    password = os.environ.get("KARTE_APP_PASSWORD", "karte-dev")
    url = make_url(admin).set(username="karte_app", password=password)
    if "host" in url.query:
        url = url.difference_update_query(["host"]).set(host="127.0.0.1")
    return url.render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    u = make_url(url)
    parts = {"dbname": u.database, "user": u.username, "password": u.password,
             "host": u.host or u.query.get("host"), "port": u.port or u.query.get("port")}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def _plain(url: str) -> str:
    """A SQLAlchemy URL as a plain ``postgresql://`` DSN (asyncpg, psycopg2)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_database(admin: str, name: str) -> None:
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin: str, name: str) -> None:
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _migration_lock(admin: str):
    with psycopg.connect(_libpq(admin), autocommit=True) as guard:
        guard.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_GUARD,))
        yield


def _load_table(store, admin_db: str, *, app_user: str) -> None:
    """The small areas as the public sees them (karte's public view, suppressed counts as text),
    in EPSG:4326 with a primary key and a GiST index: what tipg and pygeoapi serve."""
    frame = layer_view(store, "small_areas", PUBLIC).to_crs("EPSG:4326")
    for column in frame.columns:
        if frame[column].dtype != object or column == frame.geometry.name:
            continue
        values = frame[column]
        if values.map(lambda v: isinstance(v, str)).any():  # text, or counts with 秘匿: text
            frame[column] = values.map(lambda v: None if v is None else str(v))
        else:  # counts and rates with nothing hidden: numbers, as karte serves them
            frame[column] = pd.to_numeric(values)
    engine = create_engine(admin_db)
    try:
        frame.to_postgis("ogc_small_areas", engine, schema="public", if_exists="replace", index=False)
    finally:
        engine.dispose()
    with psycopg.connect(_libpq(admin_db), autocommit=True) as conn:
        conn.execute("ALTER TABLE public.ogc_small_areas ADD PRIMARY KEY (key_code)")
        conn.execute("CREATE INDEX ON public.ogc_small_areas USING gist (geometry)")
        conn.execute(f'GRANT SELECT ON public.ogc_small_areas TO "{app_user}"')
        conn.execute("ANALYZE public.ogc_small_areas")


# --- the servers --------------------------------------------------------------------------------

def _start_servers(servers: list, folder: Path, gpkg: Path, app_db: str, args, *,
                   with_tipg: bool) -> dict[str, dict]:
    out = {}
    base_env = {**os.environ, "KARTE_SECRET_KEY": "bench-only-key",
                "KARTE_USERS_FILE": str(folder / "users.json")}
    factories = [(args.karte_app, KARTE)] + ([(args.variant, VARIANT)] if args.variant else [])
    for factory, names in factories:
        karte = [sys.executable, "-m", "uvicorn", "--factory", factory]
        stores = ({"KARTE_DATABASE_URL": ""}, {"KARTE_DATABASE_URL": app_db})
        for name, env in zip(names, stores, strict=True):
            port = _free_port()
            servers.append(_uvicorn(name, karte, port,
                                    {**base_env, "KARTE_WORKSPACE": str(gpkg.parent), **env}, folder))
            out[name] = _karte_urls(port, with_filter=True)
    if args.baseline_ref:
        tree, workspace = _previous_karte(folder, args.baseline_ref)
        port = _free_port()
        env = {**base_env, "KARTE_WORKSPACE": str(workspace), "KARTE_DATABASE_URL": "",
               "PYTHONPATH": str(tree)}
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
        servers.append(_uvicorn(PREVIOUS, command, port, env, folder, cwd=tree))
        out[PREVIOUS] = _karte_urls(port, with_filter=False)  # it had no filter (it ignored one)
    port = _free_port()
    servers.append(_uvicorn(PER_REQUEST, [sys.executable, "-m", "uvicorn", "--factory",
                                          "bench.ogc_baseline:create_app"], port,
                            {**os.environ, "BENCH_DATABASE_URL": _libpq(app_db)}, folder))
    root = f"http://127.0.0.1:{port}/collections/small_areas/items"
    out[PER_REQUEST] = {"probe": f"http://127.0.0.1:{port}/collections",
                        "bbox": f"{root}?bbox={BBOX}&limit={LIMIT}",
                        "filter": f"{root}?{httpx.QueryParams({'filter': FILTER, 'limit': LIMIT})}"}
    if not with_tipg:
        return out
    port = _free_port()
    tipg_env = {**os.environ, "DATABASE_URL": _plain(app_db), "TIPG_DB_SCHEMAS": '["public"]',
                "TIPG_DB_TABLES": '["public.ogc_small_areas"]'}
    uvicorn = [str(args.baselines_python), "-m", "uvicorn"]
    servers.append(_uvicorn("tipg", [*uvicorn, "tipg.main:app"], port, tipg_env, folder, cwd=folder))
    root = f"http://127.0.0.1:{port}/collections/public.ogc_small_areas/items"
    query = httpx.QueryParams({"filter": FILTER, "filter-lang": "cql2-text", "limit": LIMIT})
    out["tipg"] = {"probe": f"http://127.0.0.1:{port}/collections",
                   "bbox": f"{root}?bbox={BBOX}&limit={LIMIT}", "filter": f"{root}?{query}"}
    port = _free_port()
    config, openapi = _pygeoapi_config(folder, port, app_db, args.baselines_python)
    servers.append(_uvicorn("pygeoapi", [*uvicorn, "pygeoapi.starlette_app:APP"], port,
                            {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)},
                            folder, cwd=folder))
    root = f"http://127.0.0.1:{port}/collections/small_areas/items"
    out["pygeoapi"] = {"probe": f"http://127.0.0.1:{port}/collections",
                       "bbox": f"{root}?bbox={BBOX}&limit={LIMIT}&f=json"}
    return out


def _karte_urls(port: int, *, with_filter: bool) -> dict:
    root = f"http://127.0.0.1:{port}/ogc/collections/small_areas/items"
    urls = {"probe": f"http://127.0.0.1:{port}/ogc", "bbox": f"{root}?bbox={BBOX}&limit={LIMIT}"}
    if with_filter:
        urls["filter"] = f"{root}?{httpx.QueryParams({'filter': FILTER, 'limit': LIMIT})}"
    return urls


def _previous_karte(folder: Path, ref: str) -> tuple[Path, Path]:
    """The source tree at ``ref`` (``git archive``: read-only, the checkout is left alone) and a
    demo store built by that code."""
    tree, workspace = folder / "previous", folder / "previous-workspace"
    tree.mkdir()
    workspace.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    t0 = time.perf_counter()
    build = ("from pathlib import Path\n"
             "from karte.build import Inputs, build_demo\n"
             "from karte.settings import REPO_DATA\n"
             "from karte.store import GeoPackageStore\n"
             f"build_demo(GeoPackageStore(Path({str(workspace / 'karte.gpkg')!r})), "
             "Inputs.shipped(REPO_DATA), seed=2026)\n")
    subprocess.run([sys.executable, "-c", build], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                   check=True)
    print(f"previous implementation: {ref} extracted, its demo built in {time.perf_counter() - t0:.1f} s")
    return tree, workspace


def _uvicorn(name: str, command: list[str], port: int, env: dict, folder: Path, *,
             cwd: Path | None = None) -> subprocess.Popen:
    log = open(folder / f"{_slug(name)}.log", "wb")  # noqa: SIM115 (the server's lifetime)
    return subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--log-level", "warning", "--no-access-log"], env=env, cwd=cwd or ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def _pygeoapi_config(folder: Path, port: int, app_db: str, python: Path) -> tuple[Path, Path]:
    u = make_url(app_db)
    config = folder / "pygeoapi.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "language": "en-US",
                   "limits": {"default_items": 10, "max_items": 10000},
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "bench", "description": "bench", "keywords": ["bench"],
                                        "keywords_type": "theme", "terms_of_service": "", "url": ""},
                     "license": {"name": "CC-BY 4.0", "url": ""}, "provider": {"name": "bench", "url": ""},
                     "contact": {"name": "bench"}},
        "resources": {"small_areas": {
            "type": "collection", "title": "small areas", "description": "small areas", "keywords": ["bench"],
            "extents": {"spatial": {"bbox": [140.4, 40.5, 141.1, 41.1],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "PostgreSQL", "id_field": "key_code",
                           "table": "ogc_small_areas", "geom_field": "geometry",
                           "data": {"host": u.host or "127.0.0.1", "port": u.port or 5432,
                                    "dbname": u.database, "user": u.username, "password": u.password or "",
                                    "search_path": ["public"]}}]}},
    }))
    openapi = folder / "pygeoapi-openapi.yml"
    done = subprocess.run([str(python.parent / "pygeoapi"), "openapi", "generate", str(config),
                           "--output-file", str(openapi)], capture_output=True, text=True,
                          env={**os.environ, "PYGEOAPI_CONFIG": str(config)}, cwd=folder)
    if done.returncode != 0:
        sys.exit(f"pygeoapi openapi generate failed: {done.stderr[-500:]}")
    return config, openapi


def _wait_up(name: str, url: str, folder: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=60).status_code == 200:
                return
        time.sleep(0.3)
    log = (folder / f"{_slug(name)}.log").read_text(errors="replace")[-1500:]
    sys.exit(f"{name} did not start: {url}\n{log}")


def _check_same_answer(urls: dict) -> None:
    """Every server must answer each measured request with the same numberMatched and page size."""
    for kind in ("bbox", "filter"):
        seen = {}
        for name, url in urls.items():
            if url.get(kind):
                body = httpx.get(url[kind], timeout=120).json()
                seen[name] = body.get("numberMatched"), len(body["features"])
        print(f"{kind} answers (numberMatched, features): " + ", ".join(f"{k} {v}" for k, v in seen.items()))
        if len(set(seen.values())) != 1:
            sys.exit(f"the servers do not answer {kind} alike: not a like-with-like comparison")


# --- measuring --------------------------------------------------------------------------------

def _header() -> None:
    print(f"  {'server':28} {'request':7} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'n':>6} {'fail':>4} {'bytes':>7}")


def _wrk(name: str, kind: str, url: str, args) -> dict:
    headers = {"Accept-Encoding": "gzip"}
    with httpx.Client(timeout=120, headers=headers) as warm:  # past the cold start (encoding, caches)
        size = 0
        for _ in range(30):
            r = warm.get(url)
            size = int(r.headers.get("content-length", len(r.content)))
            if r.status_code != 200:
                print(f"  {name:28} {kind:7} status {r.status_code}: {r.text[:120]}")
                return {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{max(1, int(args.seconds))}s", "-s", script.name,
           "-H", "Accept-Encoding: gzip", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120)
    Path(script.name).unlink()
    report = json.loads(done.stdout.strip().splitlines()[-1])
    rate = report["requests"] / (report["us"] / 1e6)
    out = {"rate": rate, "p50": report["p50"] / 1e3, "p95": report["p95"] / 1e3, "p99": report["p99"] / 1e3,
           "failed": report["failed"], "bytes": size}
    print(f"  {name:28} {kind:7} {rate:8.1f} {out['p50']:7.1f} {out['p95']:7.1f} {out['p99']:7.1f} "
          f"{report['requests']:6d} {report['failed']:4d} {size:7,}")
    return out


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _medians(runs: dict, rounds: int) -> None:
    print(f"medians over {rounds} rounds (gzip bytes of one answer):")
    _header()
    for (name, kind), rs in sorted(runs.items(), key=lambda item: item[0][1]):
        print(f"  {name:28} {kind:7} {_median(rs, 'rate'):8.1f} {_median(rs, 'p50'):7.1f} "
              f"{_median(rs, 'p95'):7.1f} {_median(rs, 'p99'):7.1f} {'':6} {sum(r['failed'] for r in rs):4d} "
              f"{rs[0]['bytes']:7,}")


def _ratios(runs: dict) -> None:
    """Ratios of the medians: karte against each baseline, like with like (same request)."""
    baselines = [n for n in (PREVIOUS, PER_REQUEST, "tipg", "pygeoapi") if any(k[0] == n for k in runs)]
    for kind in ("bbox", "filter"):
        for store in KARTE + VARIANT:
            karte = runs.get((store, kind))
            if not karte:
                continue
            parts = []
            for other in baselines:
                them = runs.get((other, kind))
                if them:
                    parts.append(f"÷ {other} {_median(karte, 'rate') / _median(them, 'rate'):.2f}×")
            p95 = _median(karte, "p95")
            print(f"{store} {kind}: throughput {', '.join(parts)}; p95 {p95:.1f} ms "
                  f"({'meets' if p95 <= 50 else 'misses'} the 50 ms goal)")


def _snapshot_check_cost(store) -> None:
    current(store)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        current(store)
    print(f"karte.snapshot.current() (the build check of every request): "
          f"{(time.perf_counter() - t0) / n * 1e6:.0f} µs per call in this process")


def _importable(module: str, python: Path) -> bool:
    """Can ``python`` import ``module``? (tipg and pygeoapi live in their own virtualenv: tipg
    pins FastAPI and pydantic versions of its own.)"""
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def _versions(python: Path) -> str:
    probe = ("from importlib.metadata import version as v; "
             "print(', '.join(f'{p} {v(p)}' for p in ('tipg', 'pygeoapi', 'fastapi', 'uvicorn')))")
    return subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout.strip()


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


if __name__ == "__main__":
    main()
