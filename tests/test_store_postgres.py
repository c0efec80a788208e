"""The store on a real PostgreSQL 15: migrations, concurrent writers, locks, the job store, sessions."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline import scheduler as sched
from pipeline.models import Program, Segment
from pipeline.store import open_database, users
from pipeline.store import runs as run_store
from pipeline.store.locks import advisory_lock, lock_id
from pipeline.store.migrations import MIGRATIONS, current_version
from tests.conftest import Project

pytestmark = pytest.mark.services


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loa.db'}"
    return str(request.getfixturevalue("pg_url"))


def segment(i: int) -> Segment:
    return Segment(
        key=f"{i:064x}",
        path=Path(f"/x/{i}.mp3"),
        duration_ms=1000 + i,
        kind="speech",
        language="vi",
        title=f"đoạn {i}",
        bytes=100,
        sha256="0" * 64,
    )


def test_migrations_run_on_postgresql(pg_url: str) -> None:
    db = open_database(pg_url)
    with db.engine.connect() as conn:
        assert current_version(conn) == MIGRATIONS[-1][0]
    assert {"host", "pid"} <= set(db.table("runs").c.keys())  # v3: ALTER TABLE … ADD COLUMN
    run_id = run_store.start_run(db, "nightly", dt.date(2026, 12, 1))
    assert run_store.recent_runs(db)[0].id == run_id
    db.close()
    again = open_database(pg_url)  # nothing applied twice
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM schema_migrations")).scalar() == len(MIGRATIONS)
    again.close()


def test_concurrent_writers_record_each_segment_and_program_once(db_url: str) -> None:
    """Eight writers (each its own engine, as on eight machines) record the same rows at once."""
    open_database(db_url).close()
    writers = 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    day = dt.date(2026, 12, 1)
    program = Program(
        id="02641/2026-12-01/morning",
        commune="02641",
        date=day,
        slot="morning",
        start=dt.datetime(2026, 12, 1, 5, 30, tzinfo=dt.UTC),
        priority="routine",
        valid_until=day,
        items=tuple(segment(i) for i in range(3)),
    )

    def write() -> None:
        db = open_database(db_url)
        try:
            barrier.wait()
            for round_ in range(5):
                run_store.record_segments(db, [segment(i) for i in range(round_ * 10, round_ * 10 + 40)])
                run_store.record_program(db, program)
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = open_database(db_url)
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM segments")).scalar() == 80
        assert conn.execute(sa.text("SELECT count(*) FROM programs")).scalar() == 1
    assert [p.id for p in run_store.programs_on(db, day)] == [program.id]
    db.close()


HOLDER = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("SELECT pg_advisory_lock(%s)", (int(sys.argv[2]),))
print("locked", flush=True)
time.sleep(600)
"""


def test_the_endpoint_lock_is_one_holder_and_a_killed_holder_frees_it(pg_url: str) -> None:
    """A worker that dies holding an endpoint's lock leaves it free: PostgreSQL drops it with the session."""
    db = open_database(pg_url)
    name = "endpoint:y-ty-loa"
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn, str(lock_id(name))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        got = threading.Event()

        def take() -> None:
            with advisory_lock(db, name):
                got.set()

        waiter = threading.Thread(target=take)
        waiter.start()
        time.sleep(0.5)
        assert not got.is_set(), "a second holder must wait"
        os.kill(holder.pid, signal.SIGKILL)  # the worker machine is lost mid-delivery
        holder.wait()
        waiter.join(timeout=30)
        assert got.is_set(), "the lock of a killed holder is free at once"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout:
            holder.stdout.close()
    with advisory_lock(db, "endpoint:other"), advisory_lock(db, name):  # different names do not block
        pass
    db.close()


def test_scheduler_job_store_on_postgresql(project: Project, pg_url: str) -> None:
    project.config.write_text(f'database_url = "{pg_url}"\n' + project.config.read_text(encoding="utf-8"))
    settings, deployment = project.settings, project.deployment
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=settings.tz)
    first = sched.build_scheduler(settings, deployment=deployment, now=lambda: now)
    first.shutdown(wait=False)
    again = sched.build_scheduler(settings, deployment=deployment, now=lambda: now)  # a restart
    try:
        assert {j.id for j in again.get_jobs()} == {
            sched.NIGHTLY_ID,
            sched.RETRY_ID,
            sched.EMERGENCY_ID,
            sched.PURGE_ID,
            sched.WEBHOOKS_ID,
            sched.OPS_ID,
        }
    finally:
        again.shutdown(wait=False)
    db = open_database(pg_url)
    with db.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {sched.JOBSTORE_TABLE}")).scalar() == 6
    db.close()


def test_web_sessions_on_postgresql(pg_url: str) -> None:
    db = open_database(pg_url)
    user = users.add_user(db, "biên tập", password_hash="x", role="editor")
    users.create_session(db, "s3cret", user_id=user.id, csrf_token="c" * 64, lifetime=dt.timedelta(hours=1))
    found = users.session_user(db, "s3cret")
    assert found is not None and found[0].name == "biên tập" and found[1] == "c" * 64
    users.delete_session(db, "s3cret")
    assert users.session_user(db, "s3cret") is None
    db.close()
