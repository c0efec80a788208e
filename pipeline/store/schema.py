"""What the database's schema is compared with this code, read without changing anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.db import safe_url
from pipeline.store.migrations import MIGRATIONS, applied_versions, known_versions


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    applied: tuple[int, ...]
    pending: tuple[tuple[int, str], ...]  # (version, description) that ``open_database`` would apply
    unknown: tuple[int, ...]  # applied by a newer Loa: this code refuses the database

    @property
    def newer(self) -> bool:
        return bool(self.unknown)


def schema_status(url: str) -> SchemaStatus:
    """The database's migrations against this code's, without migrating (a missing SQLite file: all pending)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        have: set[int] = set()
    else:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                have = applied_versions(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the schema of {safe_url(url)}: {exc.__class__.__name__}") from None
        finally:
            engine.dispose()
    pending = tuple((v, d) for v, d, _f in sorted(MIGRATIONS, key=lambda m: m[0]) if v not in have)
    return SchemaStatus(tuple(sorted(have)), pending, tuple(sorted(have - known_versions())))
