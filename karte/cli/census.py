"""The commands census (a new census in one command, issue 23)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this topic's commands and command groups to the ``karte`` application."""
