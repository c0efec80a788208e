"""``loa reminders``: readers' e-mail addresses, evaluate and send now, what was sent (docs/phrases.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json

reminders_app = typer.Typer(help="Reminders to readers and approvers (docs/phrases.md).", no_args_is_help=True)


@reminders_app.command("email")
def email(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="A web user (a reader or an approver).")],
    address: Annotated[str, typer.Argument(help='Their e-mail address; "" removes it.')],
) -> None:
    """Set the e-mail address a user's reminders go to.

    Example: loa reminders email doc-mong doc.mong@laocai.example
    """
    from pipeline.store import reminders as reminder_store

    reminder_store.set_email(ctx_of(ctx).db, user, address)
    console.print(f"{user}: reminders go to {address or 'nobody (no address)'}", markup=False)


@reminders_app.command("run")
def run(ctx: typer.Context, as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Evaluate now and send what is due and was never sent (the scheduler does it every minute).

    Example: loa reminders run --json
    """
    from pipeline.reminders.send import run_reminders

    app = ctx_of(ctx)
    sent = run_reminders(app.settings, app.deployment, app.db, now=dt.datetime.now(dt.UTC))
    if as_json:
        print_json([{"event": e, "recipient": r} for e, r in sent])
        return
    for event, recipient in sent:
        console.print(f"{event} → {recipient}", markup=False)
    console.print(f"{len(sent)} sent", markup=False)


@reminders_app.command("list")
def list_sent(
    ctx: typer.Context,
    bulletin: Annotated[int | None, typer.Option(help="Only this bulletin's.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """The reminders sent, oldest first.

    Example: loa reminders list --bulletin 12
    """
    from pipeline.store import reminders as reminder_store

    rows = reminder_store.history(ctx_of(ctx).db, bulletin)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['sent_at']:%Y-%m-%d %H:%M} {r['event']} → {r['recipient']}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(reminders_app, name="reminders")


__all__ = ["register"]
