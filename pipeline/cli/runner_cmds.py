"""``loa worker`` (run units for the Celery runner) and ``loa runner status``."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import UsageError

runner_app = typer.Typer(help="The runner that executes work units (docs/scale.md).", no_args_is_help=True)


def worker(
    ctx: typer.Context,
    queues: Annotated[
        str,
        typer.Option(help="Queues to take work from, most urgent first: loa-urgent (emergencies) and loa."),
    ] = "loa-urgent,loa",
    concurrency: Annotated[int, typer.Option(min=0, help="Units at once (0: one per core).")] = 0,
    pool: Annotated[str, typer.Option(help="prefork (processes, the default), threads or solo.")] = "prefork",
    name: Annotated[str | None, typer.Option(help="Worker name (default loa-<pid>@<host>).")] = None,
    metrics_port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Serve this worker's Prometheus metrics on this port (0: none)."),
    ] = 0,
) -> None:
    """Run work units sent by `[runner] kind = "celery"` until SIGTERM (finishes running units first).

    The worker uses the settings of its own --config / LOA_CONFIG: the broker, the shared
    segment store and outbox, the database, the TTS engines. Start one per machine (or
    more); a worker with `--queues loa-urgent` alone keeps a core free for emergencies.

    Example: loa --config /etc/loa/loa.toml worker --queues loa-urgent,loa --concurrency 4
    """
    from pipeline.runner_celery import QUEUES, configure_worker, make_app, worker_name

    settings = ctx_of(ctx).settings
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUEUES]
    if not wanted or unknown:
        raise UsageError(f"--queues: unknown queue {', '.join(unknown) or '(none)'}; use {', '.join(QUEUES)}")
    if pool not in ("prefork", "threads", "solo"):
        raise UsageError(f"--pool: {pool!r}; use prefork, threads or solo")
    hostname = name or worker_name()
    configure_worker(settings, name=hostname)  # and its heartbeat (pipeline/liveness.py)
    if metrics_port:
        from pipeline.ops.worker_metrics import serve_worker_metrics

        serve_worker_metrics(metrics_port, host=settings.metrics.worker_host, worker=hostname)
    app = make_app(settings)
    argv = [
        "worker",
        f"--queues={','.join(wanted)}",
        f"--concurrency={concurrency or os.cpu_count() or 1}",
        f"--pool={pool}",
        f"--hostname={hostname}",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    app.worker_main(argv)


def status(ctx: typer.Context, as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Queues and their depth, workers alive, units pending (for `[runner] kind = "celery"`).

    Example: loa runner status --json
    """
    from pipeline.runner_celery import runner_status

    info = runner_status(ctx_of(ctx).settings)
    if as_json:
        print_json(info)
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    console.print(f"runner: {info['kind']}   broker: {info['broker']}", markup=False, highlight=False)
    if info.get("error"):
        console.print(f"broker unreachable: {info['error']}", markup=False, highlight=False)
        return
    for q in info["queues"]:
        console.print(f"queue {q['name']:<11} {q['depth']:>7} waiting", markup=False, highlight=False)
    console.print(f"running (taken, not yet done): {info['running']}", markup=False, highlight=False)
    console.print(f"pending units: {info['pending']}", markup=False, highlight=False)
    workers = info["workers"]
    console.print(f"workers alive: {len(workers)}", markup=False, highlight=False)
    for w in workers:
        console.print(f"  {w['name']}  active {w['active']}", markup=False, highlight=False)
    for b in info.get("heartbeats", []):
        state = "alive" if b["alive"] else "SILENT (its units are sent to other workers)"
        console.print(f"  heartbeat {b['name']}  {b['age_s']:.0f} s ago  {state}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    runner_app.command("status")(status)
    app.add_typer(runner_app, name="runner")
