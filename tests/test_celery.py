"""The Celery runner with real services: redis-server, two `loa worker` processes, PostgreSQL.

A small night built on the workers is byte for byte the night built in process; a worker
killed mid-night costs nothing but time; a redis restart is survived; an emergency goes
ahead of a night's backlog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.store.runs import latest_deliveries, recent_runs
from tests.conftest import CliResult, Project, add_bulletin
from tests.services import RedisServer, Worker, start_workers

pytestmark = [pytest.mark.services, pytest.mark.audio, pytest.mark.slow]
DAY = "2026-12-01"
BODY = "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT. Bà con mang theo sổ hộ khẩu."


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def use_celery(project: Project, broker_url: str, *, extra: str = "", db_url: str | None = None) -> None:
    """Switch ``project`` to the Celery runner (and optionally a PostgreSQL store)."""
    text = project.config.read_text(encoding="utf-8")
    head = f'database_url = "{db_url}"\n' if db_url else ""
    project.config.write_text(
        head
        + text
        + f'[runner]\nkind = "celery"\nbroker_url = "{broker_url}"\nvisibility_timeout_s = 10\n'
        + f"retry_backoff_s = 0.2\nbroker_wait_s = 30\n{extra}",
        encoding="utf-8",
    )


def run_cli(project: Project, *args: str) -> CliResult:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(project.config), *args])
    return CliResult(code, out.getvalue(), err.getvalue())


def twin(small: Project, name: str) -> Project:
    """A copy of ``small`` (its database, bulletins and signing key) in a new directory."""
    root = small.root.parent / name
    shutil.copytree(small.root, root)
    return Project(root=root, config=root / "loa.toml")


@pytest.fixture
def night(small: Project, capsys: pytest.CaptureFixture[str]) -> Project:
    """``small`` with a bulletin and its signing key, ready to be copied and built twice."""
    add_bulletin(small, BODY)
    from pipeline.runner import WorkContext

    WorkContext(small.settings).key  # noqa: B018  the key both twins sign with
    return small


def test_a_night_on_two_workers_is_byte_identical_to_in_process(
    night: Project, redis_url: str, workers: list[Worker]
) -> None:
    celery = twin(night, "celery")
    use_celery(celery, redis_url)
    start_workers(workers, celery.config, redis_url)

    local = run_cli(night, "nightly", "--date", DAY, "--json")
    assert local.code == 0, local.err
    distributed = run_cli(celery, "nightly", "--date", DAY, "--json")
    assert distributed.code == 0, distributed.err

    for part in ("data/outbox", "data/cache/segments", "endpoints"):
        mine, theirs = digests(night.root / part), digests(celery.root / part)
        assert mine and mine == theirs, part
    report = json.loads(distributed.out)
    assert report["build"]["programs"] == 4
    assert {e["status"] for e in report["endpoints"]} == {"delivered"}
    # and the work was shared: both workers ran units
    logs = [w.log.read_text(errors="replace") for w in workers]
    assert all("succeeded" in log for log in logs), logs
