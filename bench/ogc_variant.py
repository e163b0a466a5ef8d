"""A karte app variant for ``bench/ogc.py --karte-app bench.ogc_variant:create_app``: the build
check of every request (:func:`karte.snapshot.current`) without building a pydantic ``Settings``
from the environment on every call.

The only change: :func:`karte.analysis.current_params` is kept for one second (the season it
gives changes once a day, or when an operator changes ``KARTE_WINTER*`` and restarts). It
measures the patch proposed for ``karte/analysis.py``; the served answers are the same.
"""

from __future__ import annotations

import time

import karte.snapshot
from api.app import create_app as _create_app
from karte.analysis import current_params

_KEPT: list = [0.0, None]


def _current_params_kept():
    now = time.monotonic()
    if _KEPT[1] is None or now - _KEPT[0] > 1.0:
        _KEPT[0], _KEPT[1] = now, current_params()
    return _KEPT[1]


def create_app():
    karte.snapshot.current_params = _current_params_kept
    return _create_app()
