"""The commune players (``loa-device``) as the server knows them: heartbeats, enrollment codes, rotation."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pipeline.errors import UsageError
from pipeline.store.db import Database, as_utc, utcnow


class EnrollmentError(UsageError):
    """An enrollment code that is wrong, used or expired (``code``: enroll.wrong | enroll.used | enroll.expired)."""

    code = "enroll"


@dataclass(frozen=True, slots=True)
class Device:
    endpoint: str
    heartbeat_at: dt.datetime | None
    version: str | None
    free_bytes: int | None
    clock_offset_s: float | None
    last_program: str | None
    last_played_at: dt.datetime | None
    pending_receipts: int | None
    detail: dict[str, Any]
    enrolled_at: dt.datetime | None
    rotate_requested_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    version: str
    free_bytes: int | None
    clock_offset_s: float | None
    last_program: str | None
    last_played_at: dt.datetime | None
    pending_receipts: int | None
    detail: dict[str, Any]


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _device(r: Any) -> Device:
    return Device(
        endpoint=r["endpoint"],
        heartbeat_at=as_utc(r["heartbeat_at"]),
        version=r["version"],
        free_bytes=r["free_bytes"],
        clock_offset_s=r["clock_offset_s"],
        last_program=r["last_program"],
        last_played_at=as_utc(r["last_played_at"]),
        pending_receipts=r["pending_receipts"],
        detail=dict(r["detail"] or {}),
        enrolled_at=as_utc(r["enrolled_at"]),
        rotate_requested_at=as_utc(r["rotate_requested_at"]),
    )


def _upsert(conn: sa.Connection, t: sa.Table, endpoint: str, values: dict[str, Any]) -> None:
    done = conn.execute(t.update().where(t.c.endpoint == endpoint).values(**values))
    if done.rowcount == 0:
        conn.execute(t.insert().values(endpoint=endpoint, **values))


def save_heartbeat(db: Database, endpoint: str, hb: Heartbeat, *, at: dt.datetime | None = None) -> Device:
    """Keep ``endpoint``'s latest heartbeat; the device's row as it is now."""
    t = db.table("devices")
    values = {
        "heartbeat_at": at or utcnow(),
        "version": hb.version,
        "free_bytes": hb.free_bytes,
        "clock_offset_s": hb.clock_offset_s,
        "last_program": hb.last_program,
        "last_played_at": hb.last_played_at,
        "pending_receipts": hb.pending_receipts,
        "detail": hb.detail,
    }
    with db.begin() as conn:
        _upsert(conn, t, endpoint, values)
        row = conn.execute(sa.select(t).where(t.c.endpoint == endpoint)).mappings().one()
    return _device(row)


def devices(db: Database, endpoints: set[str] | None = None) -> dict[str, Device]:
    """The known devices (of ``endpoints`` when given), by endpoint name."""
    t = db.table("devices")
    query = sa.select(t)
    if endpoints is not None:
        query = query.where(t.c.endpoint.in_(sorted(endpoints)))
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return {r["endpoint"]: _device(r) for r in rows}


def request_rotation(db: Database, endpoint: str) -> None:
    """Ask the device to fetch a new token at its next heartbeat."""
    t = db.table("devices")
    with db.begin() as conn:
        _upsert(conn, t, endpoint, {"rotate_requested_at": utcnow()})


def rotation_started(db: Database, endpoint: str, *, revoke: list[int]) -> None:
    """A new token was handed out: remember which old ones go once the device uses it."""
    t = db.table("devices")
    with db.begin() as conn:
        _upsert(conn, t, endpoint, {"rotate_revoke": sorted(revoke)})


def rotation_pending(db: Database, endpoint: str) -> list[int]:
    """The token ids to revoke when the device confirms its new token (empty: none pending)."""
    t = db.table("devices")
    with db.begin() as conn:
        value = conn.execute(sa.select(t.c.rotate_revoke).where(t.c.endpoint == endpoint)).scalar()
    return [int(i) for i in value or []]


def rotation_done(db: Database, endpoint: str) -> None:
    t = db.table("devices")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.endpoint == endpoint).values(rotate_requested_at=None, rotate_revoke=None))


# --- enrollment codes -------------------------------------------------------------


def add_enrollment_code(db: Database, endpoint: str, code: str, *, created_by: str, lifetime: dt.timedelta) -> None:
    """Keep a one-time ``code`` (hashed) for ``endpoint``, valid for ``lifetime``."""
    t = db.table("enrollment_codes")
    now = utcnow()
    with db.begin() as conn:
        conn.execute(
            t.insert().values(
                code_hash=_digest(code.strip().upper()),
                endpoint=endpoint,
                created_by=created_by,
                created_at=now,
                expires_at=now + lifetime,
            )
        )


def redeem_enrollment_code(db: Database, code: str, *, now: dt.datetime | None = None) -> str:
    """The endpoint ``code`` was issued for, marking it used; ``EnrollmentError`` if wrong, used or expired."""
    t = db.table("enrollment_codes")
    devices_t = db.table("devices")
    now = now or utcnow()
    digest = _digest(code.strip().upper())
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.code_hash == digest)).mappings().first()
        if row is None:
            raise EnrollmentError("enrollment code: no such code", code="enroll.wrong")
        if row["used_at"] is not None:
            raise EnrollmentError("enrollment code: already used", code="enroll.used", endpoint=row["endpoint"])
        expires = as_utc(row["expires_at"])
        if expires is not None and expires <= now:
            raise EnrollmentError("enrollment code: expired", code="enroll.expired", endpoint=row["endpoint"])
        done = conn.execute(t.update().where(t.c.id == row["id"], t.c.used_at.is_(None)).values(used_at=now))
        if done.rowcount != 1:  # another request took it at the same moment
            raise EnrollmentError("enrollment code: already used", code="enroll.used", endpoint=row["endpoint"])
        _upsert(conn, devices_t, row["endpoint"], {"enrolled_at": now, "rotate_requested_at": None})
    return str(row["endpoint"])
