"""``loa bench``: Loa at province scale against the naive way and the limit."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.context import console, err_console, print_json

REPO = Path(__file__).resolve().parents[2]


def bench_cmd(
    quick: Annotated[
        bool, typer.Option("--quick", help="4 communes, 2 short bulletins: under 2 minutes, for CI and reviewers.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    endpoints_per_commune: Annotated[
        int | None, typer.Option("--endpoints-per-commune", min=1, max=20, help="SFTP endpoints per commune.")
    ] = None,
    communes: Annotated[
        int | None, typer.Option("--communes", min=1, max=500, help="Another number of communes.")
    ] = None,
    docs: Annotated[
        bool | None,
        typer.Option("--docs/--no-docs", help="Update docs/benchmarks.md (default: only for a full run)."),
    ] = None,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Build the workload in this directory and keep it.")
    ] = None,
    emergency_runs: Annotated[
        int | None,
        typer.Option(
            "--emergency-runs",
            min=1,
            max=50,
            help="Cold emergency dispatches, each on a fresh deployment (default 10; --quick: 2).",
        ),
    ] = None,
    runner_overhead: Annotated[
        int | None,
        typer.Option(
            "--runner-overhead",
            min=10,
            max=5000,
            help="Only measure the Celery runner's cost per unit against in-process on N units "
            "(starts its own redis-server and workers; docs/scale.md).",
        ),
    ] = None,
) -> None:
    """Build a province-sized deployment in a temporary directory and measure Loa on it.

    Cold nightly, warm re-run, the next day of a campaign, the naive way and the limit,
    in the same run, against a loopback OpenSSH sshd. Needs a checkout of the repository.

    Example: loa bench --quick --json   (or: loa bench --runner-overhead 200)
    """
    if runner_overhead is not None:
        _runner_overhead(runner_overhead, as_json=as_json)
        return
    from pipeline.bench import BenchOptions, run_bench
    from pipeline.bench.report import docs_section, ratios_table, runs_table, update_docs

    options = BenchOptions(
        quick=quick,
        endpoints_per_commune=endpoints_per_commune,
        communes=communes,
        keep=keep,
        emergency_runs=emergency_runs,
    )

    def say(message: str) -> None:
        err_console.print(message, markup=False, highlight=False)

    result = run_bench(options, repo=REPO, say=say)
    command = "loa " + shlex.join(sys.argv[1:]) if "bench" in sys.argv else "loa bench"
    result["command"] = command
    write_docs = docs if docs is not None else not (quick or communes or endpoints_per_commune or emergency_runs)
    if write_docs:
        path = REPO / "docs" / "benchmarks.md"
        update_docs(path, docs_section(result, command=command))
        result["docs"] = str(path)
    if as_json:
        print_json(result)
        return
    console.print(runs_table(result))
    console.print(ratios_table(result))
    if write_docs:
        console.print(f"docs updated: {result['docs']}", markup=False, highlight=False)


def _runner_overhead(units: int, *, as_json: bool) -> None:
    from pipeline.bench.celery import measure_runner_overhead

    rows = measure_runner_overhead(units, say=lambda m: err_console.print(m, markup=False, highlight=False))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['runner']:<24} cold {row['cold_ms_per_unit']:>7} ms/unit (x{row['cold_ratio_to_in_process']})"
            f"   warm {row['warm_ms_per_unit']:>6} ms/unit (+{row['warm_overhead_ms_per_unit']} ms)",
            markup=False,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cmd)
