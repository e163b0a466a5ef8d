#!/usr/bin/env bash
# The virtualenv of the OGC benchmark's baselines (bench/ogc.py): tipg and pygeoapi, each served by
# its own uvicorn over the benchmark's PostGIS table. Apart from .venv because tipg pins FastAPI,
# starlette and pydantic versions of its own. Versions: the `bench` extra of pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-bench
.venv-bench/bin/pip install --quiet --upgrade pip
.venv-bench/bin/pip install --quiet "tipg==1.6.1" "pygeoapi==0.21.0" "psycopg2-binary>=2.9" "uvicorn>=0.30" "GeoAlchemy2>=0.15" "pygeofilter>=0.2" \
    "uvloop>=0.19" "httptools>=0.6"  # uvicorn's loop and parser, as karte has them (like with like)
echo "bench_venv: done (.venv-bench/bin/python; bench/ogc.py finds it)"
