"""``loa script`` and ``loa voices check`` (the compose stage)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the compose commands to ``app``."""
