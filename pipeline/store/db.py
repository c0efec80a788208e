"""Opening the database: engine, SQLite pragmas, migrations."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.migrations import NewerSchemaError, migrate


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


class Database:
    """An open, migrated database. ``begin()`` gives one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._meta = sa.MetaData()
        self._meta.reflect(engine)

    def table(self, name: str) -> sa.Table:
        """The current shape of a table, as the migrations left it."""
        return self._meta.tables[name]

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.engine.url.render_as_string()}: {exc.__class__.__name__}: {exc}") from exc

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` on SQLite; always true elsewhere."""
        if self.engine.dialect.name != "sqlite":
            return True
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def safe_url(url: str) -> str:
    """``url`` fit for a message or a log: the password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<the database URL in the settings>"


def _without(text: str, url: str) -> str:
    """``text`` with any password of ``url`` masked (drivers may quote the URL in errors)."""
    try:
        password = sa.engine.make_url(url).password
    except (SQLAlchemyError, ValueError):
        return text.replace(url, safe_url(url))
    return text.replace(str(password), "***") if password else text


def open_database(url: str) -> Database:
    """Open (creating if needed) and migrate the database at ``url``."""
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        with engine.begin() as conn:
            migrate(conn)
    except NewerSchemaError as exc:
        engine.dispose()
        raise StoreError(
            f"the database {safe_url(url)} was upgraded by a newer Loa (migrations {exc.unknown} are unknown "
            "to this version); install that version again, or restore the backup made before the upgrade "
            "(docs/deployment.md, Upgrades)",
            code="store.newer_schema",
            unknown=", ".join(str(v) for v in exc.unknown),
        ) from None
    except (SQLAlchemyError, ImportError) as exc:  # ImportError: the URL's driver is not installed
        raise StoreError(f"cannot open the database {safe_url(url)}: {_without(str(exc), url)}") from None
    except OSError as exc:
        raise StoreError(f"cannot create the database directory for {safe_url(url)}: {exc}") from exc
    return Database(engine)
