"""``loa bench`` smoke test: a two-commune province through every measurement, on a real sshd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pipeline.bench import BenchOptions, Size, run_bench
from pipeline.bench.report import END, START, TARGETS, docs_section, ratios_table, runs_table, target_rows, update_docs
from pipeline.bench.sshd import have_sshd
from pipeline.cli import bench_cmd

REPO = Path(__file__).resolve().parent.parent
TINY = Size(
    "test",
    communes=2,
    groups=1,
    bulletins=1,
    speech_s=(10, 12),
    recording_s=(3, 5),
    endpoints_per_commune=1,
    naive_communes=1,
)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not have_sshd():
        pytest.skip("/usr/sbin/sshd or ssh-keygen is not installed (apt-get install openssh-server)")
    keep = tmp_path_factory.mktemp("bench")
    return run_bench(BenchOptions(custom=TINY, keep=keep, emergency_runs=2), repo=REPO)


@pytest.mark.slow
def test_every_run_has_its_figures(figures: dict[str, Any]) -> None:
    cold, warm, nxt = figures["cold"], figures["warm"], figures["next_day"]
    assert figures["size"]["communes"] == 2 and figures["size"]["endpoints"] == 2
    for run in (cold, warm, nxt):
        assert run["failures"] == 0, run["failure_examples"]
        assert run["programs"] == 4  # two communes, two slots
        assert set(run["stages_s"]) == {"plan_compose", "render", "package", "deliver", "other"}
        assert run["peak_rss_mb"] > 10
    assert cold["segments_rendered"] > 0 and cold["segments_reused"] == 0
    assert cold["bytes_sent"] > 0 and cold["audio_minutes"] > 0
    # every endpoint received its files once: exactly the floor
    assert cold["bytes_sent"] == figures["limit"]["bytes_floor_cold"]
    # a streaming night: its overlapping stages are still measured, and each commune's arrival
    stages = cold["stages_s"]
    assert stages["plan_compose"] > 0 and stages["render"] > 0 and stages["package"] > 0
    assert 0 < stages["deliver"] < cold["wall_s"]
    assert 0 < cold["first_commune_reached_s"] <= cold["last_commune_reached_s"] <= cold["wall_s"]


@pytest.mark.slow
def test_warm_rerun_renders_and_sends_nothing(figures: dict[str, Any]) -> None:
    warm = figures["warm"]
    assert warm["segments_rendered"] == 0
    assert warm["segments_reused"] == figures["cold"]["segments_rendered"]
    assert warm["bytes_sent"] == 0
    assert figures["ratios"]["warm_bytes_sent"] == 0
    # the delivery records say every endpoint holds it: none is connected to, unless asked
    assert warm["connected"] == 0 and warm["endpoints"] == 2
    connected = figures["warm_connected"]
    assert connected["connected"] == 2 and connected["bytes_sent"] == 0 and connected["segments_rendered"] == 0


@pytest.mark.slow
def test_next_day_sends_only_what_changed(figures: dict[str, Any]) -> None:
    nxt, made, cold = figures["next_day"], figures["next_day_making"], figures["cold"]
    # its making (a build) renders what changed; its night then renders nothing and delivers
    assert 0 < made["segments_rendered"] < cold["segments_rendered"]
    assert made["segments_reused"] > 0 and made["bytes_sent"] == 0
    assert nxt["segments_rendered"] == 0
    assert 0 < nxt["bytes_sent"] < cold["bytes_sent"]
    assert nxt["bytes_sent"] == figures["limit"]["bytes_floor_next_day"]
    # the next day's limit makes exactly the segments the day before did not have
    assert figures["limit_next_day"]["segments"] == made["segments_rendered"]
    ratios = figures["ratios"]
    assert ratios["next_day_making_vs_limit"] == pytest.approx(
        made["wall_s"] / figures["limit_next_day"]["total_s"], rel=0.02
    )


@pytest.mark.slow
def test_the_cold_making_is_measured_alone(figures: dict[str, Any]) -> None:
    making, cold = figures["cold_making"], figures["cold"]
    # the same day on an empty segment store, every program composed again, nothing delivered
    assert making["segments_rendered"] == cold["segments_rendered"] and making["segments_reused"] == 0
    assert making["programs_composed"] == making["programs"] == cold["programs"]
    assert making["bytes_sent"] == 0
    assert figures["ratios"]["cold_making_vs_limit"] == pytest.approx(
        making["wall_s"] / figures["limit"]["total_s"], rel=0.02
    )


@pytest.mark.slow
def test_naive_and_limit_are_measured(figures: dict[str, Any]) -> None:
    naive, limit = figures["naive"], figures["limit"]
    assert naive["sample"]["bytes_sent"] > 0 and naive["sample"]["audio_ms"] > 0
    assert naive["bytes_sent"] >= naive["sample"]["bytes_sent"]
    assert limit["segments"] == figures["cold"]["segments_rendered"]
    assert limit["encode_s"] > 0 and limit["unique_mp3_bytes"] > 0
    ratios = figures["ratios"]
    assert ratios["cold_vs_limit"] == pytest.approx(figures["cold"]["wall_s"] / limit["total_s"], rel=0.01)
    assert [r["communes"] for r in figures["rss_by_communes"]] == [1, 2, 10]
    send = figures["send_limit"]
    assert send["cold"]["bytes"] == figures["limit"]["bytes_floor_cold"] and send["cold"]["seconds"] > 0
    assert send["next_day"]["bytes"] == figures["limit"]["bytes_floor_next_day"]


@pytest.mark.slow
def test_emergency_and_workers_are_measured(figures: dict[str, Any]) -> None:
    emergency = figures["emergency"]
    assert emergency["communes"] == emergency["endpoints"] == emergency["verified"] == 2
    assert figures["ratios"]["emergency_s"] == emergency["wall_s"] > 0
    # after the night's build the communes' greetings are made: only the warning is rendered
    warm = figures["emergency_after_night"]
    assert warm["verified"] == 2 and 0 < warm["segments_rendered"] < emergency["segments_rendered"]
    scaling = figures["workers_scaling"]
    assert [x["workers"] for x in scaling] == [1, 2]
    assert scaling[0]["segments_rendered"] == scaling[1]["segments_rendered"] > 0  # each on an empty store


@pytest.mark.slow
def test_emergency_runs_each_on_a_fresh_deployment(figures: dict[str, Any]) -> None:
    em = figures["emergency_runs"]
    assert em["n"] == len(em["runs"]) == len(em["wall_s"]) == len(em["first_commune_s"]) == 2
    assert em["failures"] == 0
    bulletins = set()
    for run in em["runs"]:
        assert run["verified"] == run["endpoints"] == 2 and run["failures"] == 0
        assert 0 < run["first_commune_s"] <= run["last_commune_s"] <= run["wall_s"]
        bulletins.add(run["bulletin"])
    # cold every time: each run renders the same segments, none found made by the run before
    assert em["runs"][0]["segments_rendered"] == em["runs"][1]["segments_rendered"] > 2
    assert em["wall_min_s"] == min(em["wall_s"]) and em["wall_max_s"] == max(em["wall_s"])
    assert em["under_target"] == sum(w < 15 for w in em["wall_s"])
    assert figures["emergency"] == em["runs"][0]
    ratios = figures["ratios"]
    assert ratios["emergency_runs_under_target"] == em["under_target"] / 2
    assert ratios["shown"]["emergency_runs_under_target"].startswith(f"{em['under_target']} of 2 (range ")


@pytest.mark.slow
def test_celery_workers_render_the_same_cold_build(figures: dict[str, Any]) -> None:
    celery = figures["celery_scaling"]
    in_process = figures["workers_scaling"]
    assert [x["workers"] for x in celery] == [1, 2]
    for row in celery:
        assert row["failures"] == 0
        # each on an empty segment store: everything rendered, by the workers, as in process
        assert row["segments_rendered"] == in_process[0]["segments_rendered"] > 0
        assert row["render_s"] > 0 and row["cpu_self_s"] > 0
        assert row["workers_cpu_s"] is not None and row["workers_cpu_s"] > 0
        assert row["redis_cpu_s"] >= 0
    assert figures["ratios"]["celery_2_vs_1"] == pytest.approx(celery[0]["render_s"] / celery[1]["render_s"], abs=0.01)


@pytest.mark.slow
def test_many_communes_composed_again_without_the_cache(figures: dict[str, Any]) -> None:
    many = figures["rss_by_communes"][-1]
    assert many["communes"] == 10 and many["programs"] == 20
    assert many["programs_composed"] == 0  # nothing changed: every composed program kept
    assert many["uncached_programs_composed"] == 20  # the bench switch: every program composed again
    # the times themselves are a few tenths of a second here: only the full run's 500 communes say which is faster
    ratios = figures["ratios"]
    assert ratios["many_plan_compose_cached_vs_uncached"] == pytest.approx(
        many["plan_compose_s"] / many["uncached_plan_compose_s"], abs=0.01
    )
    assert ratios["many_plan_compose_s"] > 0 and ratios["many_plan_compose_uncached_s"] > 0
    assert ratios["many_cpu_self_s"] > 0 and ratios["many_cpu_self_uncached_s"] > 0
    cold = figures["cold"]
    assert ratios["first_endpoint_vs_cold_wall"] == pytest.approx(
        cold["first_commune_reached_s"] / cold["wall_s"], abs=0.01
    )


def test_targets_are_marked_met_or_not_from_the_figures() -> None:
    ratios = {
        "cold_making_vs_limit": 1.25,
        "cold_vs_limit_and_send": 1.31,
        "next_day_making_vs_limit": 1.5,
        "first_endpoint_vs_cold_wall": 0.2,
        "many_plan_compose_cached_vs_uncached": 0.08,
        "celery_2_vs_1": 1.69,
        "warm_s": 2.9,
        "warm_bytes_sent": 0,
        "rss_many_vs_all": 1.1,
        "emergency_runs_under_target": 0.9,
        "emergency_runs_first_under_target": 1.0,
        "shown": {"emergency_runs_under_target": "9 of 10 (range 9.3–15.6 s)"},
    }
    rows = {label: (measured, goal, met) for label, measured, goal, met in target_rows(ratios)}
    by_key = {key: rows[label] for key, (label, _, _) in TARGETS.items()}
    assert by_key["cold_making_vs_limit"] == ("1.25", "≤ 1.3", "yes")
    assert by_key["cold_vs_limit_and_send"][2] == "NO"
    assert by_key["next_day_making_vs_limit"] == ("1.5", "≤ 1.5", "yes")
    assert by_key["first_endpoint_vs_cold_wall"] == ("0.2", "≤ 0.15", "NO")
    assert by_key["many_plan_compose_cached_vs_uncached"] == ("0.08", "≤ 0.10", "yes")
    assert by_key["celery_2_vs_1"] == ("1.69", "≥ 1.7", "NO")
    assert by_key["warm_s"][2] == by_key["warm_bytes_sent"][2] == by_key["rss_many_vs_all"][2] == "yes"
    assert by_key["emergency_runs_under_target"] == ("9 of 10 (range 9.3–15.6 s)", "every run", "NO")
    assert by_key["emergency_runs_first_under_target"][2] == "yes"
    assert by_key["cold_vs_limit"] == ("n/a", "≤ 1.3", "n/a")  # not measured
    assert by_key["workers_2_vs_1"][2] == "—"  # informational


@pytest.mark.slow
def test_report_table_and_docs_section(figures: dict[str, Any], tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(runs_table(figures))
    console.print(ratios_table(figures))
    text = console.export_text()
    assert "cold nightly" in text and "warm re-run" in text and "naive" in text
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Text front end\nkept\n", encoding="utf-8")
    update_docs(docs, docs_section(figures, command="loa bench --quick"))
    update_docs(docs, docs_section(figures, command="loa bench --quick"))  # replaced, not appended twice
    written = docs.read_text(encoding="utf-8")
    assert written.count(START) == 1 and written.count(END) == 1
    assert "## Text front end\nkept" in written
    assert "## Province scale (loa bench)" in written and "`loa bench --quick`" in written
    assert "The cold dispatch 2 times" in written and "Through Celery" in written


def test_bench_help_has_an_example() -> None:
    app = typer.Typer(rich_markup_mode=None)  # as the real `loa` app
    bench_cmd.register(app)
    app.command("noop")(lambda: None)  # two commands, so "bench" is a subcommand
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert "Example: loa bench --quick --json" in result.output
    assert "--endpoints-per-commune" in result.output


def test_no_module_of_the_package_imports_the_tests() -> None:
    """The benchmark (and everything else under pipeline/) runs from an installed package: no ``tests``."""
    import ast

    found = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert found == []
