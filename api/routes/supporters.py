"""The web pages and API of 地域福祉サポーター (issue 14).

Thin: what a route shows comes from the topic's service in :mod:`karte.services`.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
