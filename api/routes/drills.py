"""The web pages and API of 個別避難計画・訓練・災害時 (issue 19).

Thin: what a route shows comes from the topic's service in :mod:`karte.services`.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
