"""``loa script|build|push|nightly|dispatch|status``: the stages, run from the command line."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, ctx_of
from pipeline.errors import LoaError

DATE_OPTION = typer.Option("--date", "-d", help="Broadcast date, YYYY-MM-DD.", formats=["%Y-%m-%d"])


def _not_built(name: str) -> LoaError:
    return LoaError(f"loa {name}: not built yet")


def build(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    commune: Annotated[str | None, typer.Option("--commune", help="Only this commune code.")] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Compose, render, master and package the programs of a date into the outbox.

    Example: loa build --date 2026-12-01
    """
    ctx_of(ctx)
    raise _not_built("build")


def push(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint.")] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Deliver the outbox of a date to the endpoints; only what they lack is sent.

    Example: loa push --date 2026-12-01 --endpoint y-ty-1
    """
    ctx_of(ctx)
    raise _not_built("push")


def nightly(
    ctx: typer.Context,
    date: Annotated[
        dt.datetime | None, typer.Option("--date", "-d", help="Default: tomorrow.", formats=["%Y-%m-%d"])
    ] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Build and push everything for a date (default: tomorrow); what the scheduler runs.

    Example: loa nightly --date 2026-12-01
    """
    ctx_of(ctx)
    raise _not_built("nightly")


def dispatch(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Emergency: build an emergency bulletin and push it now to its communes.

    Example: loa dispatch 5
    """
    ctx_of(ctx)
    raise _not_built("dispatch")


def status(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show what reached which endpoint for a date, from the delivery records.

    Example: loa status --date 2026-12-01 --json
    """
    ctx_of(ctx)
    raise _not_built("status")


def scheduler(ctx: typer.Context) -> None:
    """Run the schedule: the nightly job, delivery retries, emergency dispatch.

    Example: loa --config /etc/loa/loa.toml scheduler
    """
    ctx_of(ctx)
    raise _not_built("scheduler")


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Serve the web UI and the pull API.

    Example: loa serve --port 8080
    """
    ctx_of(ctx)
    raise _not_built("serve")


def register(app: typer.Typer) -> None:
    for func in (build, push, nightly, dispatch, status, scheduler, serve):
        app.command(func.__name__)(func)
