"""``loa script`` and ``loa voices check|placeholders`` (the compose stage)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import NotFoundError, PartialFailure

voices_app = typer.Typer(help="The clip library in voices/.", no_args_is_help=True)


def script(
    ctx: typer.Context,
    commune: Annotated[str, typer.Option("--commune", help="Commune code.")],
    date: Annotated[dt.datetime, typer.Option("--date", "-d", help="YYYY-MM-DD.", formats=["%Y-%m-%d"])],
    slot: Annotated[str, typer.Option("--slot", help="Slot name, e.g. morning.")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Print the cue sheet that would air for a commune, date and slot, with what is deferred or missing.

    Example: loa script --commune 02641 --date 2026-12-01 --slot morning
    """
    from pipeline.plan import PROGRAM_OVERHEAD_MS, overrun_ms
    from pipeline.produce import Producer

    app = ctx_of(ctx)
    day = date.date()
    found = app.deployment.commune(commune)
    if found is None:
        raise NotFoundError(f"commune {commune}: not in the deployment; see `loa communes`")
    if found.slot(slot) is None:
        names = ", ".join(s.name for s in found.slots)
        raise NotFoundError(f"slot {slot!r}: {found.name} has the slots {names}")
    plan, result = Producer(settings=app.settings, deployment=app.deployment, db=app.db).preview_script(
        day, found, slot
    )
    if plan is None or result is None:
        note = f"{found.name}: slot {slot} does not run on {day:%A} {day.isoformat()}; no program"
        if json_out:
            print_json({"name": f"{found.code}/{day.isoformat()}/{slot}", "runs": False, "note": note})
        else:
            console.print(f"# {note}", markup=False)
        return
    over = overrun_ms(plan)
    warnings = [f"the bulletins overrun the {plan.slot.max_minutes} min slot by about {over // 1000} s"] if over else []
    if json_out:
        print_json(
            {
                "name": result.name,
                "runs": True,
                "cues": [dataclasses.asdict(c) for c in result.cues],
                "bulletins": [
                    {
                        "id": i.bulletin.id,
                        "title": i.bulletin.title,
                        "languages": list(i.languages),
                        "estimated_ms": i.estimated_ms,
                    }
                    for i in plan.items
                ],
                "deferred": [
                    {"id": d.bulletin.id, "title": d.bulletin.title, "until_slot": d.until_slot, "reason": d.reason}
                    for d in plan.deferred
                ],
                "missing": [str(m) for m in result.missing],
                "warnings": warnings,
                "estimated_ms": plan.estimated_ms + PROGRAM_OVERHEAD_MS,
            }
        )
        return
    console.print(result.text, markup=False, end="" if result.text.endswith("\n") else "\n")
    for d in plan.deferred:
        until = d.until_slot or "will not air again"
        console.print(f"# deferred: {d.bulletin.id} {d.bulletin.title} → {until} ({d.reason})", markup=False)
    for gap in result.missing:
        console.print(f"# missing: {gap}", markup=False)
    for line in warnings:
        console.print(f"# warning: {line}", markup=False)
    estimate = (plan.estimated_ms + PROGRAM_OVERHEAD_MS) // 1000
    console.print(f"# about {estimate // 60} min {estimate % 60} s of {plan.slot.max_minutes} min", markup=False)


@voices_app.command("check")
def voices_check(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List placeholder clips, missing files and unreadable audio: what is still to record.

    Exit 3 when a clip is missing or unreadable; placeholders alone are reported, exit 0.

    Example: loa voices check
    """
    from pipeline.voices import check_voices, load_catalog

    app = ctx_of(ctx)
    catalog = load_catalog(app.settings.voices_dir)
    languages = {lang for c in app.deployment.communes for lang in c.languages}
    problems = check_voices(catalog, settings=app.settings, languages=languages)
    if json_out:
        print_json([dataclasses.asdict(p) for p in problems])
    else:
        table = Table("clip", "vấn đề", "chi tiết")
        for p in problems:
            table.add_row(p.key, p.problem, p.detail)
        console.print(table)
        console.print(f"{len(catalog.clips)} clips, {len(problems)} to look at")
    bad = [p.key for p in problems if p.problem != "placeholder"]
    if bad:
        raise PartialFailure(f"voices: {len(bad)} clips missing or unreadable: {', '.join(bad)}")


@voices_app.command("placeholders")
def voices_placeholders(
    ctx: typer.Context, force: Annotated[bool, typer.Option(help="Make them again even if present.")] = False
) -> None:
    """Generate the labelled placeholder clips the catalog marks placeholder = true.

    Example: loa voices placeholders
    """
    from pipeline.voices import load_catalog, make_placeholders

    app = ctx_of(ctx)
    made = make_placeholders(load_catalog(app.settings.voices_dir), settings=app.settings, force=force)
    console.print(f"{len(made)} placeholder clips made", markup=False)


def register(app: typer.Typer) -> None:
    app.command("script")(script)
    app.add_typer(voices_app, name="voices")
