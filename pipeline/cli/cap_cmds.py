"""``loa cap import|export``: Common Alerting Protocol 1.2 alerts in and out."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pipeline.broadcast.cap import alert_xml
from pipeline.broadcast.cap_import import fetch_alert, import_alert
from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import CapError, UsageError
from pipeline.lifecycle import reads as bulletin_store
from pipeline.store import cap as cap_store

cap_app = typer.Typer(help="Import and export CAP 1.2 alerts (emergency bulletins).", no_args_is_help=True)


@cap_app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|URL", help="A CAP 1.2 XML file, or an allow-listed URL.")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Turn a CAP 1.2 alert into an emergency bulletin; Update supersedes, Cancel withdraws.

    The vi-VN <info> gives the text; <area> maps to communes by [[cap_area]] in schedules/
    (or commune codes and names); <expires> gives valid_until. A URL must be listed in
    [cap] allowed_urls. With [cap] approval = "manual" (default) the bulletin is a draft
    to approve; with "auto" it is approved and the scheduler dispatches it. Importing the
    same alert again does nothing. Bad alerts exit 2 naming the element; nothing is stored.

    Example: loa cap import kttv-canh-bao-lu-2026-001.xml
    """
    app = ctx_of(ctx)
    if source.startswith(("http://", "https://")):
        data = fetch_alert(source, settings=app.settings)
    else:
        path = Path(source)
        try:
            if path.stat().st_size > app.settings.cap.max_bytes:
                raise CapError(f"{path}: larger than {app.settings.cap.max_bytes} bytes; not a CAP alert Loa takes")
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    result = import_alert(data, where=source, deployment=app.deployment, db=app.db, settings=app.settings)
    if json_out:
        print_json(
            {
                "outcome": result.outcome,
                "message": result.message,
                "bulletin": result.bulletin.id if result.bulletin else None,
                "status": result.bulletin.status if result.bulletin else None,
                "ended": list(result.ended),
            }
        )
        return
    console.print(f"{result.outcome}: {result.message}", markup=False)


@cap_app.command("export")
def export(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write a CAP 1.2 alert for an emergency bulletin (for the province's other channels).

    A bulletin that supersedes another (a CAP Update) is written as an Update referencing it.

    Example: loa cap export 5 -o canh-bao-5.xml
    """
    app = ctx_of(ctx)
    b = bulletin_store.get_bulletin(app.db, bulletin_id)
    old = bulletin_store.get_bulletin(app.db, b.supersedes) if b.supersedes is not None else None
    xml = alert_xml(b, deployment=app.deployment, sender=app.settings.cap.sender, tz=app.settings.tz, superseded=old)
    if output is None:
        typer.echo(xml.decode("utf-8"), nl=False)
        return
    fd, tmp = tempfile.mkstemp(dir=output.parent if str(output.parent) else ".", prefix=".cap-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(xml)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    console.print(f"wrote {output} ({len(xml)} bytes)", markup=False)


@cap_app.command("list")
def list_(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List the CAP messages imported, with what each did.

    Example: loa cap list --json
    """
    items = cap_store.messages(ctx_of(ctx).db)
    if json_out:
        print_json(
            [
                {
                    "sender": m.sender,
                    "identifier": m.identifier,
                    "sent": m.sent.isoformat(),
                    "msgType": m.msg_type,
                    "references": list(m.refs),
                    "bulletin": m.bulletin_id,
                    "outcome": m.outcome,
                }
                for m in items
            ]
        )
        return
    for m in items:
        made = f" #{m.bulletin_id}" if m.bulletin_id else ""
        console.print(
            f"{m.sent:%Y-%m-%d %H:%M} {m.msg_type:6} {m.sender},{m.identifier}{made}: {m.outcome}", markup=False
        )


def register(app: typer.Typer) -> None:
    app.add_typer(cap_app, name="cap")
