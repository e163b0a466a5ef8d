"""Vector tiles of the public layers (``/tiles/{layer}/{z}/{x}/{y}.mvt``).

Thin: the tiles come from :mod:`karte.services`.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
