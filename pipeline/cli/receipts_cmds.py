"""``loa receipts collect`` and ``loa receipts key``: proof of play from the devices."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import NotFoundError, PartialFailure

receipts_app = typer.Typer(help="As-run receipts: what the devices played.", no_args_is_help=True)


@receipts_app.command("collect")
def collect(
    ctx: typer.Context,
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", "-e", help="Only this endpoint (repeatable).")
    ] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Fetch, verify and store the receipts devices left in <remote_dir>/reports/ (sftp and local).

    Collected receipts are removed from the device; refused ones (forged, replayed,
    malformed) are moved to reports/rejected/ and named. Exit 3 if any was refused or an
    endpoint could not be reached.

    Example: loa receipts collect --endpoint y-ty-1
    """
    from pipeline.broadcast.collect_receipts import collect_from_endpoints
    from pipeline.broadcast.receipts import load_receipt_secret

    app = ctx_of(ctx)
    chosen = []
    for name in endpoint or []:
        found = app.deployment.endpoint(name)
        if found is None:
            raise NotFoundError(f"endpoint {name}: not in the deployment; see `loa communes`")
        chosen.append(found)
    targets = chosen or list(app.deployment.endpoints())
    reports = collect_from_endpoints(
        targets,
        db=app.db,
        secret=load_receipt_secret(app.settings.data_dir),
        tz=app.settings.tz,
        settings=app.settings.deliver,
    )
    if json_out:
        print_json(
            [
                {"endpoint": r.endpoint, "collected": r.collected, "cleared": r.cleared, "refused": r.refused}
                | {"error": r.error}
                for r in reports
            ]
        )
    else:
        for r in reports:
            line = f"{r.endpoint}: {len(r.collected)} collected, {len(r.refused)} refused"
            console.print(line + (f"; error: {r.error}" if r.error else ""), markup=False)
            for name, why in r.refused:
                console.print(f"  refused {name}: {why}", markup=False)
    bad = [r for r in reports if r.refused or r.error]
    if bad:
        raise PartialFailure(
            f"receipts: {len(bad)} endpoint(s) with refused receipts or errors: " + ", ".join(r.endpoint for r in bad)
        )


@receipts_app.command("key")
def key(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT", help="Endpoint name from schedules/.")],
) -> None:
    """Print an endpoint's receipt key (hex) to install on an SFTP device; keep it secret.

    The key is derived from the deployment secret <data_dir>/receipt_key; the device signs
    its receipts with it (HMAC-SHA256). Pull devices fetch theirs with their token.

    Example: loa receipts key y-ty-1 > /media/usb/receipt.key
    """
    from pipeline.broadcast.receipts import endpoint_key, load_receipt_secret

    app = ctx_of(ctx)
    if app.deployment.endpoint(endpoint) is None:
        raise NotFoundError(f"endpoint {endpoint}: not in the deployment; see `loa communes`")
    console.print(endpoint_key(load_receipt_secret(app.settings.data_dir), endpoint).hex(), markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(receipts_app, name="receipts")
