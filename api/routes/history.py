"""The web pages and API of 計画・指標 (issue 12).

Thin: what a route shows comes from the topic's service in :mod:`karte.services`.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
