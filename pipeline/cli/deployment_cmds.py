"""``loa communes``: the deployment as loaded from schedules/."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.models import LANGUAGES


def communes(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List the deployment's communes, languages, slots and endpoints.

    Example: loa communes --json
    """
    dep = ctx_of(ctx).deployment
    if json_out:
        print_json(
            {
                "timezone": dep.timezone,
                "groups": [{"id": g.id, "name": g.name} for g in dep.groups],
                "communes": [
                    {
                        "code": c.code,
                        "name": c.name,
                        "group": c.group,
                        "languages": list(c.languages),
                        "slots": [
                            {
                                "name": s.name,
                                "start": s.start.strftime("%H:%M"),
                                "max_minutes": s.max_minutes,
                                "days": list(s.days),
                            }
                            for s in c.slots
                        ],
                        "endpoints": [
                            {"name": e.name, "transport": e.transport, "format": e.format} for e in c.endpoints
                        ],
                    }
                    for c in dep.communes
                ],
            }
        )
        return
    table = Table("mã", "xã/phường", "nhóm", "ngôn ngữ", "khung giờ", "điểm nhận")
    for c in dep.communes:
        table.add_row(
            c.code,
            c.name,
            c.group or "—",
            ", ".join(LANGUAGES[lang] for lang in c.languages),
            ", ".join(f"{s.name} {s.start:%H:%M}" for s in c.slots),
            ", ".join(f"{e.name} ({e.transport})" for e in c.endpoints) or "—",
        )
    console.print(table)
    console.print(f"{len(dep.communes)} communes in {len(dep.groups)} groups, {len(dep.endpoints())} endpoints")


def register(app: typer.Typer) -> None:
    app.command("communes")(communes)
