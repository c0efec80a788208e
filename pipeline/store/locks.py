"""Locks that hold across machines: PostgreSQL advisory locks.

Workers on several machines share one database; ``advisory_lock(db, "endpoint:x")``
holds the named lock on its own connection until the block ends, or until the
process dies (PostgreSQL ends the session and drops its locks at once, so a killed
worker never leaves an endpoint locked). On SQLite, which serves one machine, it is a
no-op: the caller's file lock on the local data directory already covers that machine.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import sqlalchemy as sa

from pipeline.store.db import Database


def lock_id(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (what ``pg_advisory_lock`` takes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(db: Database, name: str) -> Iterator[None]:
    """Hold the database-wide lock ``name`` for the block (PostgreSQL; no-op elsewhere)."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    key = lock_id(name)
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
