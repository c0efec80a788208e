"""The Celery runner with real services: redis-server, two `loa worker` processes, PostgreSQL.

A small night built on the workers is byte for byte the night built in process; a worker
killed mid-night costs nothing but time; a redis restart is survived; an emergency goes
ahead of a night's backlog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from pipeline import manifest as mf
from pipeline.cli import main
from pipeline.models import Delivery
from pipeline.produce import Producer
from pipeline.runner import WorkContext
from pipeline.runner_celery import QUEUE
from pipeline.signing import load_key, public_key
from pipeline.store.runs import latest_deliveries, recent_runs
from tests.conftest import REPO, SMALL_DEPLOYMENT, CliResult, Project, add_bulletin
from tests.services import RedisServer, Worker, start_workers

pytestmark = [pytest.mark.services, pytest.mark.audio, pytest.mark.slow]
DAY = "2026-12-01"
BODY = "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT. Bà con mang theo sổ hộ khẩu."


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path.

    Left out: lock files, and the hidden temporary files (``.NAME.xxxx.tmp…``) a killed
    worker leaves behind — never read, never renamed into place (docs/scale.md).
    """
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and not (p.name.startswith(".") and ".tmp" in p.name)
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
    root = small.root.parent / f"{name}-{time.monotonic_ns()}"
    shutil.copytree(small.root, root)
    return Project(root=root, config=root / "loa.toml")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Project:
    """The small deployment with a bulletin and its signing key, not built: tests copy it."""
    root = tmp_path_factory.mktemp("celery") / "base"
    (root / "schedules").mkdir(parents=True)
    (root / "schedules" / "small.toml").write_text(SMALL_DEPLOYMENT, encoding="utf-8")
    shutil.copytree(voices_with_placeholders, root / "voices")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n[deliver]\nbackoff_s = 0.01\n',
        encoding="utf-8",
    )
    project = Project(root=root, config=config)
    add_bulletin(project, BODY)
    WorkContext(project.settings).key  # noqa: B018  the key every copy signs with
    return project


@pytest.fixture(scope="module")
def reference(base: Project) -> Project:
    """The night built in process: what every distributed build must equal, byte for byte."""
    project = twin(base, "reference")
    result = run_cli(project, "nightly", "--date", DAY, "--json")
    assert result.code == 0, result.err
    return project


def assert_same_night(reference: Project, other: Project) -> None:
    for part in ("data/outbox", "data/cache/segments", "endpoints"):
        mine, theirs = digests(reference.root / part), digests(other.root / part)
        assert mine and mine == theirs, part


def assert_programs_whole(project: Project) -> None:
    """Every endpoint's folder: signature good, every file's size and SHA-256 as its manifest says."""
    pub = public_key(load_key(project.settings.signing_key_file).public_key())
    at = dt.datetime.fromisoformat(f"{DAY}T00:00:00+07:00")
    folders = sorted((project.root / "endpoints").glob(f"*/programs/{DAY}"))
    assert len(folders) == 3
    for folder in folders:
        mf.verify_folder(folder.parent.parent, f"programs/{DAY}", public_key=pub, now=at)


def test_a_night_on_two_workers_is_byte_identical_to_in_process(
    reference: Project, base: Project, redis_url: str, workers: list[Worker]
) -> None:
    celery = twin(base, "identical")
    use_celery(celery, redis_url)
    start_workers(workers, celery.config, redis_url)

    distributed = run_cli(celery, "nightly", "--date", DAY, "--json")
    assert distributed.code == 0, distributed.err
    assert_same_night(reference, celery)
    report = json.loads(distributed.out)
    assert report["build"]["programs"] == 4
    assert report["build"]["communes_reached"] == 2, "streamed on the workers: each commune's arrival"
    assert {e["status"] for e in report["endpoints"]} == {"delivered"}
    logs = [w.log.read_text(errors="replace") for w in workers]
    assert all("succeeded" in log for log in logs), "both workers ran units"


def test_the_phased_night_on_the_workers_is_the_streaming_night_byte_for_byte(
    reference: Project, base: Project, redis_url: str, workers: list[Worker]
) -> None:
    """``reference`` streams in process (the default); this night goes phase by phase on the
    workers; the test above streams on the workers: all three are the same bytes."""
    celery = twin(base, "phased")
    use_celery(celery, redis_url, extra="streaming = false\n")
    assert not celery.settings.runner.streaming and reference.settings.runner.streaming
    start_workers(workers, celery.config, redis_url)

    phased = run_cli(celery, "nightly", "--date", DAY, "--json")
    assert phased.code == 0, phased.err
    assert_same_night(reference, celery)
    assert "communes_reached" not in json.loads(phased.out)["build"], "phase by phase: no arrivals"


def in_flight(log: Path) -> set[str]:
    """Task ids a worker took and has not finished, from its log."""
    text = log.read_text(errors="replace")
    received = set(re.findall(r"Task loa\.execute\[([0-9a-f-]+)\] received", text))
    done = set(re.findall(r"Task loa\.execute\[([0-9a-f-]+)\] (?:succeeded|retry|raised)", text))
    return received - done


def test_a_worker_killed_mid_night_loses_nothing(
    reference: Project, base: Project, redis_url: str, pg_url: str, workers: list[Worker]
) -> None:
    """SIGKILL one of two workers (and its pool) while it runs units: the other finishes the night.

    The store is PostgreSQL: the orchestrator records there, the workers take the
    endpoint locks there.
    """
    celery = twin(base, "killed")
    use_celery(celery, redis_url, db_url=pg_url)
    add_bulletin(celery, BODY)  # the twin's copy of the bulletin, in its own database
    victim, survivor = start_workers(workers, celery.config, redis_url)

    outcome: dict[str, CliResult] = {}
    night = threading.Thread(target=lambda: outcome.update(r=run_cli(celery, "nightly", "--date", DAY, "--json")))
    night.start()
    deadline = time.monotonic() + 120
    while not (victim.log.read_text(errors="replace").count("succeeded") >= 2 and in_flight(victim.log)):
        assert time.monotonic() < deadline, "the first worker never ran a unit"
        assert night.is_alive(), outcome
        time.sleep(0.02)
    lost = in_flight(victim.log)
    victim.kill()
    night.join(timeout=240)
    assert not night.is_alive(), "the night did not finish on the surviving worker"

    result = outcome["r"]
    assert result.code == 0, result.err
    rerun = survivor.log.read_text(errors="replace")
    assert all(f"[{t}] succeeded" in rerun for t in lost), "the killed worker's units ran again on the other"
    assert_programs_whole(celery)
    assert_same_night(reference, celery)

    db = celery.db()
    assert db.engine.dialect.name == "postgresql"
    records = latest_deliveries(db, DAY)
    assert sorted(d.endpoint for d in records) == ["ban-lau-loa", "y-ty-loa", "y-ty-radio"]
    assert {d.status for d in records} == {"delivered"}
    t = db.table("deliveries")
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.endpoint, t.c.files_sent).where(t.c.program == DAY)).all()
    assert len(rows) == 3, "one record per endpoint: none lost, none twice"
    for endpoint, files_sent in rows:
        on_device = [p for p in (celery.root / "endpoints" / endpoint).rglob("*") if p.is_file()]
        assert files_sent == len(on_device), f"{endpoint}: every file sent once"
    assert recent_runs(db)[0].status == "done"


def test_a_worker_lost_with_default_settings_is_replaced_within_a_minute(
    reference: Project, base: Project, redis_url: str, pg_url: str, workers: list[Worker]
) -> None:
    """Default settings (visibility_timeout_s of an hour): the dead worker's heartbeat stops, the
    orchestrator sends its units again after heartbeat_timeout_s (30 s), the night ends in a minute."""
    from pipeline.config import RunnerSettings
    from pipeline.liveness import worker_heartbeats

    defaults = RunnerSettings()
    assert (defaults.visibility_timeout_s, defaults.heartbeat_timeout_s) == (3600, 30.0)
    celery = twin(base, "failover")
    text = celery.config.read_text(encoding="utf-8")
    celery.config.write_text(
        f'database_url = "{pg_url}"\n{text}[runner]\nkind = "celery"\nbroker_url = "{redis_url}"\n', encoding="utf-8"
    )
    add_bulletin(celery, BODY)  # the twin's copy of the bulletin, in its own database
    victim, survivor = start_workers(workers, celery.config, redis_url)
    names = {b.name for b in worker_heartbeats(redis_url) if b.alive}
    assert len(names) == 2, names

    outcome: dict[str, CliResult] = {}
    night = threading.Thread(target=lambda: outcome.update(r=run_cli(celery, "nightly", "--date", DAY, "--json")))
    night.start()
    deadline = time.monotonic() + 180
    while not (victim.log.read_text(errors="replace").count("succeeded") >= 2 and in_flight(victim.log)):
        assert time.monotonic() < deadline, "the first worker never ran a unit"
        assert night.is_alive(), outcome
        time.sleep(0.02)
    lost = in_flight(victim.log)
    victim.kill()  # SIGKILL to its whole process group: the worker and its pool
    killed_at = time.monotonic()
    night.join(timeout=150)
    took = time.monotonic() - killed_at
    assert not night.is_alive(), "the night did not finish on the surviving worker"
    print(f"failover: the night finished {took:.1f} s after the kill ({len(lost)} units in flight)")
    assert took < 60, f"the night finished {took:.1f} s after the kill"

    result = outcome["r"]
    assert result.code == 0, result.err
    rerun = survivor.log.read_text(errors="replace")
    assert all(f"[{t}] succeeded" in rerun for t in lost), "the killed worker's units ran again on the other"
    assert_programs_whole(celery)
    assert_same_night(reference, celery)
    beats = {b.name: b for b in worker_heartbeats(redis_url)}
    assert sum(b.alive for b in beats.values()) == 1 and any(not b.alive for b in beats.values())
    db = celery.db()
    assert {d.status for d in latest_deliveries(db, DAY)} == {"delivered"}
    assert recent_runs(db)[0].status == "done"


def night_lists() -> list[str]:
    """The Redis lists of the night's queue: kombu keeps each message priority in its own."""
    return [QUEUE, *(f"{QUEUE}\x06\x16{p}" for p in (3, 6, 9))]


def backlog_of(broker: redis.Redis) -> int:
    return sum(int(broker.llen(key)) for key in night_lists())


def producer(project: Project) -> Producer:
    return Producer(settings=project.settings, deployment=project.deployment, db=project.db())


def test_an_emergency_goes_ahead_of_a_night_backlog(base: Project, redis_url: str, workers: list[Worker]) -> None:
    """One worker, one unit at a time, a night queued: the emergency is taken next and delivered."""
    celery = twin(base, "emergency")
    use_celery(celery, redis_url)
    start_workers(workers, celery.config, redis_url, count=1, concurrency=1)
    broker = redis.Redis.from_url(redis_url)
    outcome: list[object] = []
    night = threading.Thread(
        target=lambda: outcome.append(producer(celery).run_day(dt.date.fromisoformat(DAY), kind="nightly"))
    )
    night.start()
    deadline = time.monotonic() + 120
    while backlog_of(broker) < 5:
        assert time.monotonic() < deadline and night.is_alive(), "the night never queued a backlog"
        time.sleep(0.02)

    bid = add_bulletin(
        celery, "Mưa lớn, nguy cơ lũ quét. Bà con không qua suối.", priority="emergency", targets='["02695"]'
    )
    started = time.monotonic()
    report = producer(celery).dispatch(bid)
    took = time.monotonic() - started
    backlog = backlog_of(broker)
    assert report.ok, report
    assert (celery.root / "endpoints" / "ban-lau-loa" / "emergency" / str(bid) / "manifest.json").is_file()
    assert took < 30, f"the emergency took {took:.1f} s"
    assert backlog > 0, "the night's units were still waiting: the emergency went ahead of them"

    # End the night quickly: its queue and run marker vanish as if redis lost its data.
    broker.delete(*night_lists(), *broker.keys("loa:run:*"))
    night.join(timeout=180)
    broker.close()
    assert not night.is_alive()
    _, _, _, status = outcome[0]  # type: ignore[misc]
    assert status == "partial"
    failures = recent_runs(celery.db(), kind="nightly")[0].failures
    assert any("lost its queue" in f["error"] and "run the command again" in f["error"] for f in failures)


def test_redis_restarted_during_a_run(base: Project, tmp_path: Path, workers: list[Worker]) -> None:
    """redis-server stopped and started again mid-run: the run resumes, or fails clearly and a re-run finishes."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        celery = twin(base, "restart")
        use_celery(celery, server.url, extra="stall_timeout_s = 20\n")
        first, _ = start_workers(workers, celery.config, server.url)
        day = dt.date.fromisoformat(DAY)
        outcome: list[tuple[int, object, list[Delivery], str]] = []
        night = threading.Thread(
            target=lambda: outcome.append(
                producer(celery).run_day(day, kind="nightly", commune="02695", endpoint="ban-lau-loa")
            )
        )
        night.start()
        deadline = time.monotonic() + 120
        while first.log.read_text(errors="replace").count("succeeded") < 2:
            assert time.monotonic() < deadline and night.is_alive(), "no unit ran"
            time.sleep(0.02)
        server.stop()
        time.sleep(1)
        server.start()
        night.join(timeout=240)
        assert not night.is_alive()
        _, _, deliveries, status = outcome[0]
        print(f"redis restart: the first run ended {status}")
        if status != "done":  # then it said why, and running it again finishes the job
            failures = recent_runs(celery.db())[0].failures
            assert any("broker" in f["error"] and "run the command again" in f["error"] for f in failures), failures
            _, _, deliveries, status = producer(celery).run_day(
                day, kind="nightly", commune="02695", endpoint="ban-lau-loa"
            )
        assert status == "done"
        assert [(d.endpoint, d.status) for d in deliveries] == [("ban-lau-loa", "delivered")]
        pub = public_key(load_key(celery.settings.signing_key_file).public_key())
        at = dt.datetime.fromisoformat(f"{DAY}T00:00:00+07:00")
        mf.verify_folder(celery.root / "endpoints" / "ban-lau-loa", f"programs/{DAY}", public_key=pub, now=at)
    finally:
        for w in workers:
            w.stop()
        server.stop()
