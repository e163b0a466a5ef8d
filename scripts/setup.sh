#!/usr/bin/env bash
# Set up karte on a fresh Debian machine: system packages, a virtualenv (.venv) and the
# package with its pinned dependencies (constraints.txt). Idempotent: run it again any time.
#
#   bash scripts/setup.sh            # everything needed for the demo and the test suite
#
# Environment: PYTHON (default python3), KARTE_SKIP_APT=1 to skip system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

# System packages: GDAL's command-line tools (ogrinfo: the tests check that GDAL reads our
# GeoPackage as is), poppler (pdftotext/pdffonts for the sheet tests), Chromium and a Japanese
# font for the real-browser tests and screenshots.
APT_PACKAGES=(gdal-bin poppler-utils chromium fonts-ipafont-gothic)
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
echo "setup: done (.venv/bin/karte --help)"
