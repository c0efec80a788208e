"""``loa webhooks deliver`` and ``loa webhooks list``: the signed event outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json

webhooks_app = typer.Typer(
    help="Signed webhooks (approval, airing, withdrawal) to [[webhook]] URLs.\n\nExample: loa webhooks deliver",
    no_args_is_help=True,
)


@webhooks_app.command("deliver")
def deliver(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """Send every due event to every configured URL (retries wait their backoff); run it from cron or the scheduler.

    Example: loa webhooks deliver --json
    """
    from pipeline.publish.webhooks import deliver_webhooks

    app = ctx_of(ctx)
    report = deliver_webhooks(app.db, app.settings)
    if json_out:
        print_json(
            {
                "delivered": report.delivered,
                "retrying": report.retrying,
                "failed": report.failed,
                "errors": list(report.errors),
            }
        )
        return
    console.print(
        f"{report.delivered} delivered, {report.retrying} to retry, {report.failed} failed for good", markup=False
    )
    for line in report.errors:
        console.print(f"# {line}", markup=False)


@webhooks_app.command("list")
def list_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Recent deliveries: event, URL, status, attempts, last error.

    Example: loa webhooks list --limit 20
    """
    from pipeline.store.webhooks import list_deliveries

    rows = [
        {
            "event": d.event.id,
            "type": d.event.kind,
            "url": d.url,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        }
        for d in list_deliveries(ctx_of(ctx).db, limit=limit)
    ]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(
            f"{r['event']}\t{r['type']}\t{r['url']}\t{r['status']}\t{r['attempts']}\t{r['last_error'] or ''}",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
