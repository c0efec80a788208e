"""Readiness: is this Loa able to do its work now? Each check named, with what it found.

``/healthz`` only says the process answers; ``/readyz`` runs ``readiness`` (the database
answers, the data directory is writable with space left, the scheduler's heartbeat is
recent, the broker answers when Celery is configured).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import LoaError
from pipeline.store import Database
from pipeline.store import ops as ops_store

SCHEDULER = "scheduler"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ok else "unready",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def free_bytes(path: Path) -> int:
    """Free bytes (for an unprivileged writer) on the file system holding ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_database(db: Database) -> Check:
    try:
        ops_store.ping(db)
    except LoaError as exc:
        return Check("database", False, str(exc).splitlines()[0][:300])
    return Check("database", True, "answers")


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        fd, name = tempfile.mkstemp(prefix=".readyz-", dir=path)
        os.close(fd)
        os.unlink(name)
        free = free_bytes(path)
    except OSError as exc:
        return Check("data_dir", False, f"{path}: not writable ({exc.strerror or exc})")
    need = settings.health.min_free_mb * 1024 * 1024
    mb = free // (1024 * 1024)
    if free < need:
        return Check("data_dir", False, f"{path}: {mb} MB free, below {settings.health.min_free_mb} MB")
    return Check("data_dir", True, f"{path}: writable, {mb} MB free")


def check_scheduler(settings: Settings, db: Database, *, now: dt.datetime) -> Check:
    limit = settings.health.scheduler_stale_s
    try:
        at = ops_store.heartbeat(db, SCHEDULER)
    except LoaError as exc:
        return Check("scheduler", False, f"heartbeat unreadable: {str(exc).splitlines()[0][:200]}")
    if at is None:
        return Check("scheduler", False, "no heartbeat yet: is `loa scheduler` running?")
    age = (now - at).total_seconds()
    if limit and age > limit:
        return Check("scheduler", False, f"last heartbeat {int(age)} s ago (limit {limit} s)")
    return Check("scheduler", True, f"last heartbeat {max(0, int(age))} s ago")


def check_broker(settings: Settings, *, timeout: float = 2.0) -> Check:
    import redis

    from pipeline.store.db import safe_url

    where = safe_url(settings.runner.broker_url)
    client = redis.Redis.from_url(settings.runner.broker_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check("broker", False, f"{where}: {exc.__class__.__name__}")
    finally:
        client.close()
    return Check("broker", True, f"{where}: answers")


def readiness(settings: Settings, db: Database, *, now: dt.datetime | None = None) -> Readiness:
    when = now or dt.datetime.now(dt.UTC)
    checks = [check_database(db), check_data_dir(settings)]
    if settings.health.scheduler_stale_s:
        checks.append(check_scheduler(settings, db, now=when))
    if settings.runner.kind == "celery":
        checks.append(check_broker(settings))
    return Readiness(tuple(checks))
