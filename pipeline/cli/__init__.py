"""``loa``: the one command line. ``main()`` is the only place that turns errors into exit codes.

Exit codes: 0 done, 1 unexpected failure, 2 bad input (nothing changed),
3 partly done (some communes or endpoints failed; they are named).
"""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer
from loa_protocol.errors import LinkError, ProtocolError

from pipeline.cli import (
    admin_cmds,
    agency_cmds,
    bench_cmd,
    bulletins,
    cap_cmds,
    compose_cmds,
    consultation_cmds,
    deployment_cmds,
    keys_cmds,
    ops_cmds,
    policy_cmds,
    programs,
    receipts_cmds,
    reminder_cmds,
    report_cmds,
    runner_cmds,
    scheduler_cmd,
    services,
    text,
    web_cmds,
    webhook_cmds,
)
from pipeline.cli.context import AppContext, err_console
from pipeline.errors import EXIT_BAD_INPUT, EXIT_FAILURE, LoaError
from pipeline.ops.logs import configure_from as configure_logging

app = typer.Typer(
    name="loa",
    help="Loa: policy bulletins into radio programs for commune loudspeakers.\n\n"
    "Example: loa --config loa.toml bulletin add examples/bulletins/*.md",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="LOA_CONFIG", help="Config file (default ./loa.toml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details and show tracebacks.")] = False,
) -> None:
    """Loa: policy bulletins into radio programs for commune loudspeakers.

    Example: loa --config loa.toml bulletin list
    """
    configure_logging(config, verbose=verbose)  # [log] format = "json" or readable text
    ctx.obj = AppContext(config_path=config, verbose=verbose)


bulletins.register(app)
deployment_cmds.register(app)
text.register(app)
compose_cmds.register(app)
programs.register(app)
services.register(app)
scheduler_cmd.register(app)
web_cmds.register(app)
keys_cmds.register(app)
bench_cmd.register(app)
admin_cmds.register(app)
consultation_cmds.register(app)
agency_cmds.register(app)
webhook_cmds.register(app)

receipts_cmds.register(app)
report_cmds.register(app)

cap_cmds.register(app)
policy_cmds.register(app)
runner_cmds.register(app)
ops_cmds.register(app)
reminder_cmds.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run ``loa`` and return the exit code (the console script exits with it)."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    try:
        app(args=args, prog_name="loa", standalone_mode=False)
    except LoaError as exc:
        if verbose:
            err_console.print_exception()
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except ProtocolError as exc:  # a manifest or receipt (loa_protocol) that cannot be used: bad input
        if verbose:
            err_console.print_exception()
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_FAILURE if isinstance(exc, LinkError) else EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        return EXIT_FAILURE
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    except Exception as exc:  # the one place that reports the unexpected
        if verbose:
            err_console.print_exception()
        err_console.print(
            f"error: unexpected {exc.__class__.__name__}: {exc} (run with --verbose for the traceback)",
            markup=False,
            highlight=False,
        )
        return EXIT_FAILURE
    return 0


__all__ = ["app", "main"]
