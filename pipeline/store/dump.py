"""A consistent copy of the database while it is in use, and putting one back.

SQLite: the online backup API (a snapshot of one moment, whatever writes go on).
PostgreSQL: ``pg_dump`` in its custom format and ``pg_restore``, the binaries of the
server's own major version (``/usr/lib/postgresql/<major>/bin``) unless configured.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.db import safe_url
from pipeline.store.migrations import applied_versions

PG_LIB = Path("/usr/lib/postgresql")


def kind_of(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise StoreError(f"backups support SQLite and PostgreSQL, not {safe_url(url)}")


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def schema_versions(url: str) -> list[int]:
    """The migrations applied to the database at ``url`` (without migrating it)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(applied_versions(conn))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema version of {safe_url(url)}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


def dump_sqlite(url: str, dest: Path) -> None:
    """Copy the SQLite database with the online backup API (consistent while others write)."""
    src = sqlite3.connect(sqlite_path(url), timeout=60)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst, pages=1024)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: reading it leaves no -wal/-shm
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {sqlite_path(url)} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


def sqlite_ok(path: Path) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = sa.engine.make_url(url)
    args = ["-h", u.host or "localhost", "-p", str(u.port or 5432), "-d", u.database or "postgres"]
    if u.username:
        args += ["-U", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)  # never on the command line, where ps shows it
    return args, env


def pg_bin(url: str, name: str, configured: Path | None) -> str:
    """``pg_dump``/``pg_restore`` for the server's major version (a newer server refuses older tools)."""
    if configured is not None:
        return str(configured / name)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            major = int(str(conn.exec_driver_sql("SHOW server_version_num").scalar_one())) // 10000
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach {safe_url(url)}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()
    candidate = PG_LIB / str(major) / "bin" / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StoreError(f"{name} for PostgreSQL {major} not found; install postgresql-client-{major}")
    return found


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=6 * 3600)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise StoreError(f"{what} failed (exit {result.returncode}): {' / '.join(tail)}")


def dump_postgres(url: str, dest: Path, *, bin_dir: Path | None = None) -> None:
    args, env = _pg_args(url)
    cmd = [pg_bin(url, "pg_dump", bin_dir), *args, "--format=custom", "--no-owner", "--file", str(dest)]
    _run(cmd, env, f"pg_dump of {safe_url(url)}")


def postgres_is_empty(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return not sa.inspect(conn).get_table_names()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach {safe_url(url)}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


def restore_postgres(url: str, src: Path, *, bin_dir: Path | None = None) -> None:
    args, env = _pg_args(url)
    cmd = [pg_bin(url, "pg_restore", bin_dir), *args, "--no-owner", "--exit-on-error", "--single-transaction", str(src)]
    _run(cmd, env, f"pg_restore into {safe_url(url)}")
