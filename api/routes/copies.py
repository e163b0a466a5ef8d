"""The web pages and API of 名簿の配布記録 (issue 20).

Thin: what a route shows comes from the topic's service in :mod:`karte.services`.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
