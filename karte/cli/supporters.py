"""The commands match, points (issue 14)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
