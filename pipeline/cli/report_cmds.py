"""``loa report``: statistics for the provincial source-information system, and the reconcile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import UsageError


def report(
    ctx: typer.Context,
    start: Annotated[dt.datetime, typer.Option("--from", help="First day (YYYY-MM-DD).", formats=["%Y-%m-%d"])],
    end: Annotated[dt.datetime, typer.Option("--to", help="Last day (YYYY-MM-DD).", formats=["%Y-%m-%d"])],
    fmt: Annotated[
        list[str] | None, typer.Option("--format", "-f", help="csv or json (repeatable; default both).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory for the files (default <data>/reports/statistics).")
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Also POST the JSON to [report] push_url.")] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Bulletins and minutes by tier, language, commune and topic per month and quarter;
    coverage (scheduled items played) and emergency latency (approval → every endpoint);
    per commune and language per week and month: readings aired, airings that skipped the
    language, placeholders aired, minutes on air, share of required languages (docs/coverage.md).

    Writes CSV and JSON; with --push sends the JSON over HTTPS with the bearer token of
    [report] (LOA_REPORT__TOKEN or token_file). Exit 2 on a bad range or format.

    Example: loa report --from 2026-10-01 --to 2026-12-31 --format csv --out /srv/bao-cao
    """
    from pipeline.broadcast.reconcile import reconcile
    from pipeline.broadcast.statistics import FORMATS, compute_statistics, push_report, to_json, write_report
    from pipeline.voices import placeholder_keys

    app = ctx_of(ctx)
    first, last = start.date(), end.date()
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    formats = fmt or list(FORMATS)
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"--format {f}: use csv or json")
    settings = app.settings
    rec = reconcile(app.db, app.deployment, first, last, tz=settings.tz)
    placeholders = placeholder_keys(settings, app.db)
    stats = compute_statistics(rec, app.db, app.deployment, tz=settings.tz, placeholders=placeholders)
    written = write_report(stats, out or settings.reports_dir / "statistics", formats)
    status = push_report(to_json(stats), settings.report, outbound_policy=settings.outbound) if push else None
    totals = next((r for r in stats.rows if r.dimension == "all" and "-Q" in r.period), None)
    if json_out:
        print_json(
            {
                "files": [str(p) for p in written],
                "pushed": status,
                "not_played": len(rec.not_played),
                "unscheduled": len(rec.unscheduled),
                "silent_communes": [h.code for h in rec.health if h.silent],
            }
        )
        return
    for path in written:
        console.print(f"wrote {path}", markup=False)
    if totals is not None:
        console.print(
            f"{first}..{last}: {totals.items_scheduled} scheduled items, {totals.items_played} played "
            f"(coverage {totals.coverage if totals.coverage is not None else '-'}); "
            f"{len(rec.unscheduled)} played but not scheduled",
            markup=False,
        )
    if status is not None:
        console.print(f"pushed to {settings.report.push_url}: HTTP {status}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
