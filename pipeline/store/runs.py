"""Runs of the job, programs built, segments known, and every delivery attempt."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.errors import StoreError
from pipeline.models import Delivery, Program, ProgramRecord, Run, Segment
from pipeline.store.db import Database, as_utc, utcnow

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def upsert(db: Database, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for this database (PostgreSQL or SQLite)."""
    if db.engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def start_run(db: Database, kind: str, day: dt.date | None) -> int:
    t = db.table("runs")
    with db.begin() as conn:
        result = conn.execute(
            t.insert().values(
                kind=kind,
                date=day,
                status="running",
                started_at=utcnow(),
                counts={},
                failures=[],
                host=HOST,
                pid=os.getpid(),
                heartbeat_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def beat_run(db: Database, run_id: int) -> None:
    """The running process is alive: note it on its run (``RunHeartbeat`` calls this)."""
    t = db.table("runs")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == run_id, t.c.status == "running").values(heartbeat_at=utcnow()))


class RunHeartbeat:
    """Beats on a run every ``interval_s`` from a thread, while the ``with`` block runs."""

    def __init__(self, db: Database, run_id: int, *, interval_s: float) -> None:
        self.db, self.run_id, self.interval_s = db, run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"run-{run_id}-heartbeat", daemon=True)

    def __enter__(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                beat_run(self.db, self.run_id)
            except StoreError as exc:  # the database is away for a moment: beat again next time
                log.warning("run %d: heartbeat not written: %s", self.run_id, exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_runs(db: Database, *, heartbeat_timeout_s: float = 30.0) -> list[int]:
    """Mark failed every run still "running" whose process is gone; their ids.

    On this host, a run whose process no longer exists; on any host, a run whose heartbeat
    (``RunHeartbeat``) is older than ``heartbeat_timeout_s``: its machine may be dead for good.
    """
    t = db.table("runs")
    now = utcnow()
    with db.begin() as conn:
        rows = conn.execute(sa.select(t.c.id, t.c.pid, t.c.host, t.c.heartbeat_at).where(t.c.status == "running")).all()
        dead: list[tuple[int, str]] = []
        for rid, pid, host, heartbeat_at in rows:
            beat = as_utc(heartbeat_at)
            if host == HOST and (pid is None or (pid != os.getpid() and not _alive(pid))):
                why = f"the process (pid {pid} on {HOST}) ended before the run finished"
            elif beat is not None and (now - beat).total_seconds() > heartbeat_timeout_s:
                seen = beat.isoformat(timespec="seconds")
                why = f"its host {host} (pid {pid}) stopped its heartbeat at {seen} (host down?)"
            else:
                continue
            dead.append((rid, f"{why}; run it again to finish the job"))
        for rid, reason in dead:
            conn.execute(
                t.update()
                .where(t.c.id == rid, t.c.status == "running")
                .values(status="failed", finished_at=utcnow(), failures=[{"what": "run", "error": reason}])
            )
    return [rid for rid, _ in dead]


def finish_run(db: Database, run_id: int, *, status: str, counts: dict[str, Any], failures: list[Any]) -> None:
    t = db.table("runs")
    with db.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == run_id)
            .values(status=status, finished_at=utcnow(), counts=counts, failures=failures)
        )


def _run(r: Any) -> Run:
    return Run(
        id=r["id"],
        kind=r["kind"],
        date=r["date"],
        status=r["status"],
        started_at=as_utc(r["started_at"]),
        finished_at=as_utc(r["finished_at"]),
        counts=dict(r["counts"] or {}),
        failures=tuple(r["failures"] or ()),
        host=r.get("host"),
        pid=r.get("pid"),
        heartbeat_at=as_utc(r.get("heartbeat_at")),
    )


def recent_runs(db: Database, limit: int | None = 20, *, kind: str | None = None) -> list[Run]:
    """Runs, newest first; only those of ``kind`` if given."""
    t = db.table("runs")
    query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(t.c.kind == kind)
    with db.begin() as conn:
        return [_run(r) for r in conn.execute(query).mappings().all()]


def record_segments(db: Database, segments: Iterable[Segment]) -> None:
    """Remember segments (the first sighting wins; content-addressed keys never change)."""
    t = db.table("segments")
    unique = {s.key: s for s in segments}
    if not unique:
        return
    with db.begin() as conn:
        rows = [
            {
                "key": s.key,
                "kind": s.kind,
                "language": s.language,
                "title": s.title,
                "duration_ms": s.duration_ms,
                "bytes": s.bytes,
                "sha256": s.sha256,
                "engine": s.engine,
                "loudness_lufs": s.loudness_lufs,
                "bulletin_id": s.bulletin_id,
                "created_at": utcnow(),
            }
            for key, s in sorted(unique.items())  # one order for every writer: no deadlock
        ]
        # INSERT … ON CONFLICT DO NOTHING: two workers recording one key at once is no error
        conn.execute(upsert(db, t).on_conflict_do_nothing(index_elements=[t.c.key]), rows)


def record_program(db: Database, program: Program) -> None:
    record_programs(db, [program])


def record_programs(db: Database, programs: Sequence[Program]) -> None:
    """Remember built programs (the last build of an id wins), in one transaction."""
    if not programs:
        return
    t = db.table("programs")
    built_at = utcnow()
    rows = [
        {
            "id": p.id,
            "commune": p.commune,
            "date": p.date,
            "slot": p.slot,
            "kind": p.kind,
            "priority": p.priority,
            "duration_ms": p.duration_ms,
            "items": [s.key for s in p.items],
            "missing": list(p.missing),
            "built_at": built_at,
        }
        for p in sorted(programs, key=lambda p: p.id)  # one order for every writer: no deadlock
    ]
    stmt = upsert(db, t)
    # race-free on both databases: one statement per row, no select-then-insert
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.id], set_={k: stmt.excluded[k] for k in rows[0] if k != "id"})
    with db.begin() as conn:
        for i in range(0, len(rows), 200):  # a night of thousands: bounded parameter lists
            conn.execute(stmt, rows[i : i + 200])


def programs_on(db: Database, day: dt.date) -> list[ProgramRecord]:
    t = db.table("programs")
    with db.begin() as conn:
        return [
            ProgramRecord(
                id=r["id"],
                commune=r["commune"],
                date=r["date"],
                slot=r["slot"],
                kind=r["kind"],
                priority=r["priority"],
                duration_ms=r["duration_ms"],
                items=tuple(r["items"]),
                missing=tuple(r["missing"]),
                built_at=as_utc(r["built_at"]),
            )
            for r in conn.execute(sa.select(t).where(t.c.date == day).order_by(t.c.id)).mappings()
        ]


def record_delivery(db: Database, d: Delivery, *, run_id: int | None = None) -> None:
    t = db.table("deliveries")
    with db.begin() as conn:
        conn.execute(
            t.insert().values(
                run_id=run_id,
                endpoint=d.endpoint,
                commune=d.commune,
                program=d.program,
                status=d.status,
                attempts=d.attempts,
                files_sent=d.files_sent,
                files_skipped=d.files_skipped,
                bytes_sent=d.bytes_sent,
                seconds=d.seconds,
                error=d.error,
                finished_at=d.finished_at or utcnow(),
                state=d.state,
                error_code=d.error_code,
                error_fields=d.error_fields or None,
            )
        )


def held_states(db: Database, endpoints: Sequence[str], *, since: dt.datetime) -> dict[str, str]:
    """What each endpoint held after the last delivery that connected to it since ``since``.

    Only a delivery that connected (attempts > 0) and succeeded counts: a skipped one
    (attempts 0) proves nothing new, and a failed last attempt means it must be checked.
    """
    t = db.table("deliveries")
    names = list(endpoints)
    held: dict[str, str] = {}
    with db.begin() as conn:
        for i in range(0, len(names), 500):
            last = (
                sa.select(sa.func.max(t.c.id))
                .where(t.c.endpoint.in_(names[i : i + 500]), t.c.attempts > 0, t.c.finished_at >= since)
                .group_by(t.c.endpoint)
            )
            query = sa.select(t.c.endpoint, t.c.status, t.c.state).where(t.c.id.in_(last))
            for r in conn.execute(query):
                if r.status == "delivered" and r.state:
                    held[r.endpoint] = r.state
    return held


def latest_deliveries(db: Database, program: str) -> list[Delivery]:
    """The last recorded attempt for each endpoint of ``program`` (e.g. a date "2026-12-01")."""
    t = db.table("deliveries")
    last = sa.select(sa.func.max(t.c.id).label("id")).where(t.c.program == program).group_by(t.c.endpoint).subquery()
    query = sa.select(t).join(last, t.c.id == last.c.id).order_by(t.c.commune, t.c.endpoint)
    with db.begin() as conn:
        return [delivery_of(r) for r in conn.execute(query).mappings()]


def delivery_of(r: Any) -> Delivery:
    """A ``deliveries`` row as the record it is."""
    return Delivery(
        endpoint=r["endpoint"],
        commune=r["commune"],
        program=r["program"],
        status=r["status"],
        attempts=r["attempts"],
        files_sent=r["files_sent"],
        files_skipped=r["files_skipped"],
        bytes_sent=r["bytes_sent"],
        seconds=r["seconds"],
        error=r["error"],
        finished_at=as_utc(r["finished_at"]),
        state=r.get("state"),
        error_code=r.get("error_code"),
        error_fields=dict(r.get("error_fields") or {}),
    )
