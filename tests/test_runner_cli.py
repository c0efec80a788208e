"""`loa worker` and `loa runner status` against a real redis-server and worker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pipeline.config import load_settings
from pipeline.runner import InProcessRunner, make_runner
from pipeline.runner_celery import CeleryRunner
from pipeline.units import RenderUnit
from tests.conftest import CliResult, Project
from tests.services import Worker, start_workers


def celery_config(project: Project, broker_url: str) -> None:
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text + f'[runner]\nkind = "celery"\nbroker_url = "{broker_url}"\n', encoding="utf-8")


def test_make_runner_follows_the_settings(project: Project) -> None:
    assert isinstance(make_runner(project.settings), InProcessRunner)
    celery_config(project, "redis://127.0.0.1:1/0")
    assert isinstance(make_runner(project.settings), CeleryRunner)


def test_a_wrong_runner_kind_names_the_field(project: Project, cli: Callable[..., CliResult]) -> None:
    project.config.write_text(project.config.read_text() + '[runner]\nkind = "dask"\n', encoding="utf-8")
    result = cli("runner", "status")
    assert result.code == 2
    assert "runner.kind" in result.err


def test_worker_refuses_an_unknown_queue(project: Project, cli: Callable[..., CliResult]) -> None:
    result = cli("worker", "--queues", "loa,nightly")
    assert result.code == 2
    assert "--queues: unknown queue nightly; use loa-urgent, loa" in result.err


def test_status_says_when_the_broker_is_unreachable(project: Project, cli: Callable[..., CliResult]) -> None:
    from tests.services import free_port

    celery_config(project, f"redis://127.0.0.1:{free_port()}/0")
    result = cli("runner", "status", "--json")
    assert result.code == 0
    info = json.loads(result.out)
    assert info["kind"] == "celery" and "Connection refused" in info["error"]


@pytest.mark.services
@pytest.mark.slow
def test_status_shows_queues_and_workers(
    project: Project, cli: Callable[..., CliResult], redis_url: str, workers: list[Worker]
) -> None:
    celery_config(project, redis_url)
    settings = load_settings(project.config, environ={})
    import redis

    broker = redis.Redis.from_url(redis_url)
    broker.lpush("loa", b"{}", b"{}")  # two units waiting (not real tasks: no worker listens yet)
    result = cli("runner", "status", "--json")
    info = json.loads(result.out)
    assert {q["name"]: q["depth"] for q in info["queues"]} == {"loa-urgent": 0, "loa": 2}
    assert info["pending"] == 2 and info["workers"] == []
    broker.delete("loa")
    broker.close()

    start_workers(workers, project.config, redis_url, count=1, concurrency=1, queues="loa-urgent")
    text = cli("runner", "status")
    assert text.code == 0
    assert "workers alive: 1" in text.out and "queue loa-urgent" in text.out
    assert settings.runner.kind == "celery"


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.audio
def test_bench_measures_the_runner_overhead(cli: Callable[..., CliResult]) -> None:
    result = cli("bench", "--runner-overhead", "10", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [r["runner"] for r in rows] == [
        "in-process, 2 threads",
        "celery, 1 worker(s) x 1",
        "celery, 2 worker(s) x 1",
    ]
    assert all(r["units"] == 10 and r["cold_s"] > 0 and r["warm_s"] >= 0 for r in rows)
    assert rows[0]["warm_overhead_ms_per_unit"] == 0
    assert all(r["warm_overhead_ms_per_unit"] > 0 for r in rows[1:])  # a task costs more than a call


def test_an_unreachable_broker_fails_the_units_with_the_reason(project: Project) -> None:
    from tests.services import free_port

    celery_config(project, f"redis://127.0.0.1:{free_port()}/0")
    settings = load_settings(project.config, environ={})
    unit = RenderUnit(key="a" * 64, kind="pause", language="vi", title="pause", where="script line 3", ms=300)
    [result] = CeleryRunner(settings).run([unit])  # never raises
    assert not result.ok
    assert result.error is not None and result.error.startswith("script line 3: the broker redis://127.0.0.1:")
    assert "start redis-server" in result.error


@pytest.mark.services
@pytest.mark.slow
def test_a_unit_that_keeps_failing_is_retried_then_fails_with_its_reason(
    project: Project, redis_url: str, workers: list[Worker]
) -> None:
    """A transient failure (a TTS service that refuses) is retried with backoff on the workers, then reported."""
    from tests.services import free_port

    closed = free_port()
    project.config.write_text(
        project.config.read_text(encoding="utf-8")
        + f'[tts]\nengines = ["gtts"]\n[tts.gtts]\nbase_url = "http://127.0.0.1:{closed}"\nretries = 0\n'
        + f'timeout_s = 2\n[runner]\nkind = "celery"\nbroker_url = "{redis_url}"\nretries = 2\n'
        + "retry_backoff_s = 0.1\n",
        encoding="utf-8",
    )
    settings = load_settings(project.config, environ={})
    [worker] = start_workers(workers, project.config, redis_url, count=1, concurrency=1)
    unit = RenderUnit(
        key="b" * 64, kind="speech", language="vi", title="lời chào", where="script line 5", text="xin chào bà con"
    )
    [result] = CeleryRunner(settings).run([unit])
    assert not result.ok and result.transient
    assert result.what == "script line 5" and result.error is not None
    assert "no speech engine could speak" in result.error and "Connection refused" in result.error
    assert result.error.endswith("(still failing after 2 retries on the workers)")
    assert worker.log.read_text(errors="replace").count("retry 1 of 2") == 1
    assert "retry 2 of 2" in worker.log.read_text(errors="replace")
