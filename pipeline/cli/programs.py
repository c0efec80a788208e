"""``loa build|push|nightly|status``: the stages run from the command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import labels
from pipeline.cli.context import JSON_OPTION, console, ctx_of, err_console, print_json
from pipeline.errors import PartialFailure
from pipeline.models import Delivery
from pipeline.store.runs import latest_deliveries

if TYPE_CHECKING:  # the stages are imported when a command runs, keeping `loa --help` quick
    from pipeline.nightly import BuildReport

RECHECK_OPTION = typer.Option(
    "--recheck",
    help="Connect to every endpoint and compare every file, trusting neither the delivery records "
    "(deliver.recheck_hours) nor the device's manifest.",
)
DATE_OPTION = typer.Option("--date", "-d", help="Broadcast date, YYYY-MM-DD.", formats=["%Y-%m-%d"])


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr (silent with --json or when not a terminal)."""
    if not enabled or not err_console.is_terminal:
        yield lambda phase, done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        yield update


def print_build(report: BuildReport) -> None:
    s = report.summary()
    console.print(
        f"built {s['programs']} programs for {s['date']}: {s['audio_minutes']} min of audio, "
        f"segments rendered {s['segments_rendered']}, reused {s['segments_reused']}, {s['seconds']} s",
        markup=False,
    )
    if s.get("communes_reached"):
        console.print(
            f"communes reached: {s['communes_reached']}, the first in {s['first_commune_reached_s']} s, "
            f"the last in {s['last_commune_reached_s']} s",
            markup=False,
        )
    for line in report.missing:
        console.print(f"missing recording: {line}", markup=False)
    for line in report.deferred:
        console.print(f"deferred: {line}", markup=False)
    for f in report.failures:
        console.print(f"FAILED {f.what}: {f.error}", markup=False)


def deliveries_table(deliveries: list[Delivery]) -> Table:
    table = Table("endpoint", "xã", "trạng thái", "gửi", "bỏ qua", "bytes", "lần", "lỗi")
    for d in deliveries:
        table.add_row(
            d.endpoint,
            d.commune,
            labels.lower(labels.DELIVERY, d.status),
            str(d.files_sent),
            str(d.files_skipped),
            str(d.bytes_sent),
            str(d.attempts),
            d.error or "",
        )
    return table


def delivery_json(d: Delivery) -> dict[str, object]:
    keys = (
        "endpoint",
        "commune",
        "status",
        "files_sent",
        "files_skipped",
        "bytes_sent",
        "attempts",
        "seconds",
        "error",
    )
    return {k: v for k, v in dataclasses.asdict(d).items() if k in keys}


def _fail_if_partial(what: str, failed: list[str]) -> None:
    if failed:
        raise PartialFailure(f"{what}: {len(failed)} failed: {', '.join(failed)}")


def build(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    commune: Annotated[str | None, typer.Option("--commune", help="Only this commune code.")] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Compose, render, master and package the programs of a date into the outbox.

    Exit 3 when some programs failed (named); the others are built.

    Example: loa build --date 2026-12-01
    """
    from pipeline.nightly import build_day

    app = ctx_of(ctx)
    with progress_bar(not json_out) as progress:
        report = build_day(
            date.date(),
            settings=app.settings,
            deployment=app.deployment,
            db=app.db,
            commune=commune,
            progress=progress,
        )
    if json_out:
        print_json(report.summary())
    else:
        print_build(report)
    _fail_if_partial("build", [f.what for f in report.failures])


def push(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint.")] = None,
    recheck: Annotated[bool, RECHECK_OPTION] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Deliver the outbox of a date to the endpoints; only what they lack is sent.

    An endpoint that took exactly this delivery less than deliver.recheck_hours ago is
    not reconnected (0 attempts in the table); --endpoint connects anyway, --recheck
    connects to every endpoint and compares every file (a device wiped behind Loa's back).
    Exit 0 when every endpoint has its programs, 3 when some failed (named).

    Example: loa push --date 2026-12-01 --endpoint y-ty-loa
    """
    from pipeline.nightly import push_day

    app = ctx_of(ctx)
    with progress_bar(not json_out) as progress:
        count = [0]
        total = len(app.deployment.endpoints()) if endpoint is None else 1

        def done(_d: Delivery) -> None:
            count[0] += 1
            progress("push", count[0], total)

        deliveries = push_day(
            date.date(),
            settings=app.settings,
            deployment=app.deployment,
            db=app.db,
            endpoint=endpoint,
            on_done=done,
            recheck=recheck,
        )
    if json_out:
        print_json({"date": date.date().isoformat(), "endpoints": [delivery_json(d) for d in deliveries]})
    else:
        console.print(deliveries_table(deliveries))
    _fail_if_partial("push", [d.endpoint for d in deliveries if d.status != "delivered"])


def nightly(
    ctx: typer.Context,
    date: Annotated[
        dt.datetime | None, typer.Option("--date", "-d", help="Default: tomorrow.", formats=["%Y-%m-%d"])
    ] = None,
    recheck: Annotated[bool, RECHECK_OPTION] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Build and push everything for a date (default: tomorrow); what the scheduler runs.

    Writes a run record and a JSON report under data/reports/. Exit 0 all done, 3 partly.

    Example: loa nightly --date 2026-12-01
    """
    from pipeline.nightly import run_nightly, tomorrow

    app = ctx_of(ctx)
    day = date.date() if date else tomorrow(app.settings)
    with progress_bar(not json_out) as progress:
        report = run_nightly(
            day, settings=app.settings, deployment=app.deployment, db=app.db, progress=progress, recheck=recheck
        )
    if json_out:
        print_json(
            {
                "run": report.run_id,
                "report": str(report.report_file),
                "build": report.build.summary(),
                "reached": {r.commune: r.seconds for r in report.build.reached},
                "endpoints": [delivery_json(d) for d in report.deliveries],
            }
        )
    else:
        print_build(report.build)
        console.print(deliveries_table(list(report.deliveries)))
        console.print(f"report: {report.report_file}", markup=False)
    failed = [f.what for f in report.build.failures] + [
        d.endpoint for d in report.deliveries if d.status != "delivered"
    ]
    _fail_if_partial(f"nightly {day}", failed)


def status(
    ctx: typer.Context,
    date: Annotated[dt.datetime, DATE_OPTION],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show what reached which endpoint for a date, and the runs of that date.

    Endpoints with no record yet are shown as pending. A run whose process died (on this
    host), or whose heartbeat stopped (on any host), is marked failed here, with the reason.

    Example: loa status --date 2026-12-01 --json
    """
    from pipeline.store.runs import reap_stale_runs, recent_runs

    app = ctx_of(ctx)
    day = date.date().isoformat()
    reap_stale_runs(app.db, heartbeat_timeout_s=app.settings.runner.heartbeat_timeout_s)
    runs = [r for r in recent_runs(app.db, limit=200) if r.date is not None and r.date.isoformat() == day]
    recorded = {d.endpoint: d for d in latest_deliveries(app.db, day)}
    rows = [
        recorded.get(e.name) or Delivery(endpoint=e.name, commune=e.commune, program=day, status="pending")
        for e in app.deployment.endpoints()
    ]
    if json_out:
        print_json(
            {
                "date": day,
                "endpoints": [delivery_json(d) for d in rows],
                "runs": [{"id": r.id, "kind": r.kind, "status": r.status, "failures": list(r.failures)} for r in runs],
            }
        )
        return
    console.print(deliveries_table(rows))
    counts = {s: sum(d.status == s for d in rows) for s in ("delivered", "failed", "pending")}
    console.print(f"{counts['delivered']} delivered, {counts['failed']} failed, {counts['pending']} pending")
    for r in runs:
        why = "; ".join(str(f.get("error")) for f in r.failures)
        console.print(f"run {r.id} {r.kind}: {r.status}{f' — {why}' if why else ''}", markup=False)


def register(app: typer.Typer) -> None:
    for func in (build, push, nightly, status):
        app.command(func.__name__)(func)
