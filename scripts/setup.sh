#!/usr/bin/env bash
# Set up karte on a fresh Debian machine: system packages, a virtualenv (.venv) and the
# package with its pinned dependencies (constraints.txt). Idempotent: run it again any time.
#
#   bash scripts/setup.sh            # everything needed for the demo and the test suite
#
# Environment: PYTHON (default python3), KARTE_SKIP_APT=1 to skip system packages,
# KARTE_SKIP_POSTGIS=1 to skip PostGIS (scripts/setup_postgis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

# System packages: GDAL's command-line tools (ogrinfo: the tests check that GDAL reads our
# GeoPackage as is), poppler (pdftotext/pdffonts for the sheet tests), Chromium and a Japanese
# font for the real-browser tests and screenshots; wrk, the load generator of bench/web.py.
APT_PACKAGES=(gdal-bin poppler-utils chromium fonts-ipafont-gothic wrk)
if [ "${KARTE_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  "$PYTHON" -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"

# PostGIS for the server store and its tests (the demo itself needs no server). The URLs of the
# test database go to .venv/karte-postgis.env, where the test suite finds them. A failure here
# does not stop the demo; the PostGIS tests then fail in CI (they never skip there).
if [ "${KARTE_SKIP_POSTGIS:-0}" != "1" ]; then
  if bash scripts/setup_postgis.sh > .venv/karte-postgis.env.new; then
    mv .venv/karte-postgis.env.new .venv/karte-postgis.env
  else
    rm -f .venv/karte-postgis.env.new
    echo "setup: WARNING: PostGIS is not set up (scripts/setup_postgis.sh failed); the embedded" \
         "store works, the PostGIS tests will not" >&2
  fi
fi
echo "setup: done (.venv/bin/karte --help)"
