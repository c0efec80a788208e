"""``loa policy check``: what the broadcast rules would refuse or report for a day."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from pipeline.broadcast.policy_check import check_day
from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import UsageError

policy_app = typer.Typer(
    help="Check programs against the broadcast rules ([policy] in schedules/).", no_args_is_help=True
)


@policy_app.command("check")
def check(
    ctx: typer.Context,
    date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: tomorrow).")] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Plan a day and check it against quiet hours, program length, replays a day and languages.

    Exit 2 when a rule would refuse a program or a replay schedule (missing languages are
    only reported). Nothing is built or sent.

    Example: loa policy check --date 2026-12-01
    """
    app = ctx_of(ctx)
    try:
        day = dt.date.fromisoformat(date) if date else dt.datetime.now(app.settings.tz).date() + dt.timedelta(days=1)
    except ValueError as exc:
        raise UsageError(f"--date {date!r}: not a date; write YYYY-MM-DD") from exc
    found = check_day(day, settings=app.settings, deployment=app.deployment, db=app.db)
    if json_out:
        print_json(
            [
                {"rule": v.rule, "commune": v.commune, "what": v.what, "refuse": v.refuse, "message": v.message}
                for v in found
            ]
        )
    else:
        for v in found:
            console.print(f"{'refused' if v.refuse else 'report '} {v.rule}: {v.message}", markup=False)
        if not found:
            console.print(f"{day}: every program keeps the broadcast rules", markup=False)
    refusing = [v for v in found if v.refuse]
    if refusing:
        rules = ", ".join(sorted({v.rule for v in refusing}))
        raise UsageError(f"{day}: the broadcast rules refuse {len(refusing)} (rules: {rules})")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
