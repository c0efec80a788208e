"""``loa scheduler``: run the schedule."""

from __future__ import annotations

import typer

from pipeline.cli.context import ctx_of
from pipeline.errors import LoaError


def scheduler(ctx: typer.Context) -> None:
    """Run the schedule: the nightly job, delivery retries, emergency dispatch.

    Example: loa --config /etc/loa/loa.toml scheduler
    """
    ctx_of(ctx)
    raise LoaError("loa scheduler: not built yet")


def register(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)
