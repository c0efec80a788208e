"""``loa dispatch|serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, ctx_of
from pipeline.errors import LoaError


def dispatch(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Emergency: build an emergency bulletin and push it now to its communes.

    Example: loa dispatch 5
    """
    ctx_of(ctx)
    raise LoaError("loa dispatch: not built yet")


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Serve the web UI and the pull API.

    Example: loa serve --port 8080
    """
    ctx_of(ctx)
    raise LoaError("loa serve: not built yet")


def register(app: typer.Typer) -> None:
    for func in (dispatch, serve):
        app.command(func.__name__)(func)
