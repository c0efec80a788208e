"""``loa dispatch``: emergency bulletins, now."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import PartialFailure


def dispatch(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Emergency: build an emergency bulletin and push it now to its communes.

    The bulletin must be approved and of emergency priority. It lands under emergency/<id>/
    with "play": "now" in the manifest. Exit 3 when some endpoints failed (named).

    Example: loa dispatch 5
    """
    from pipeline.cli.programs import deliveries_table, delivery_json
    from pipeline.dispatch import dispatch_bulletin

    app = ctx_of(ctx)
    report = dispatch_bulletin(bulletin_id, settings=app.settings, deployment=app.deployment, db=app.db)
    if json_out:
        print_json(
            {
                "bulletin": bulletin_id,
                "run": report.run_id,
                "seconds": round(report.seconds, 1),
                "segments_rendered": report.segments_rendered,
                "segments_reused": report.segments_reused,
                "programs": [p.id for p in report.programs],
                "failures": [dataclasses.asdict(f) for f in report.failures],
                "endpoints": [delivery_json(d) for d in report.deliveries],
                "reached": {r.commune: r.seconds for r in report.reached},
            }
        )
    else:
        for f in report.failures:
            console.print(f"FAILED {f.what}: {f.error}", markup=False)
        console.print(deliveries_table(list(report.deliveries)))
        console.print(f"dispatched bulletin {bulletin_id} to {len(report.programs)} communes in {report.seconds:.1f} s")
    failed = [f.what for f in report.failures] + [d.endpoint for d in report.deliveries if d.status != "delivered"]
    if failed:
        raise PartialFailure(f"dispatch {bulletin_id}: {len(failed)} failed: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    for func in (dispatch,):
        app.command(func.__name__)(func)
