"""The public version: one cheap read that changes whenever what is public may have changed.

What the archive, the feeds and the public API show changes only at a build (programs
recorded: ``programs.built_at``) or at a change of a bulletin (saved, approved, withdrawn,
superseded, cancelled, redrafted: each sets ``bulletins.updated_at``; a new bulletin also
raises the newest id). Both columns are indexed (migration 18), so this is three index
look-ups per request; the web keys its cache of public answers by it
(``pipeline/web/public_cache.py``). A state change that bypassed ``updated_at`` would not be
seen until the next one: whoever changes a bulletin sets it (``pipeline/store/bulletins.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from pipeline.store.db import Database, as_utc


@dataclass(frozen=True, slots=True)
class PublicVersion:
    changed: dt.datetime | None  # newest bulletins.updated_at (UTC)
    newest: int  # newest bulletin id
    built: dt.datetime | None  # newest programs.built_at (UTC)

    @property
    def key(self) -> str:
        """Equal keys, equal public content (at one moment: airings also start with time)."""
        return f"{_iso(self.changed)}|{self.newest}|{_iso(self.built)}"

    @property
    def at(self) -> dt.datetime | None:
        """When it last changed."""
        return max((t for t in (self.changed, self.built) if t is not None), default=None)


def public_version(db: Database) -> PublicVersion:
    b, p = db.table("bulletins"), db.table("programs")
    query = sa.select(
        sa.select(sa.func.max(b.c.updated_at)).scalar_subquery(),
        sa.select(sa.func.max(b.c.id)).scalar_subquery(),
        sa.select(sa.func.max(p.c.built_at)).scalar_subquery(),
    )
    with db.begin() as conn:
        changed, newest, built = conn.execute(query).one()
    return PublicVersion(as_utc(changed), int(newest or 0), as_utc(built))


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value is not None else "-"
