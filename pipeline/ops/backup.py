"""Backups: a consistent snapshot while Loa runs, a check, and a restore into an empty place.

A backup directory holds::

    database/loa.db | database/loa.pgdump    SQLite online backup, or pg_dump (custom format)
    data/…                                   the data directory's own files: recordings,
                                             standard phrases, consultation voice messages,
                                             reports, keys and secrets (mode 0600 kept)
    signing-key/<name>                       the signing key when it lives outside data/
    config/loa.toml, config/schedules/…      the configuration
    loa-backup.json                          written last: every file's size and sha256, and
                                             its own sha256

Not held (rebuilt by the next nightly): the segment cache, the outbox, temporary files,
locks and published audio. ``verify_backup`` refuses a damaged or partial backup;
``restore_backup`` refuses it too, and refuses a data directory (or database) not empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import __version__
from pipeline.config import Settings
from pipeline.errors import LoaError, UsageError
from pipeline.store import dump
from pipeline.store.migrations import known_versions

log = logging.getLogger(__name__)

MANIFEST = "loa-backup.json"
FORMAT, VERSION = "loa-backup", 1
#: Under the data directory, rebuilt rather than backed up.
NOT_BACKED_UP = ("cache", "outbox", "tmp", "locks", "publish")
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: str  # relative, POSIX
    bytes: int
    sha256: str
    mode: int = 0o600  # the original's permission bits, given back on restore


@dataclass(frozen=True, slots=True)
class BackupManifest:
    created_at: str
    loa_version: str
    database: str  # sqlite | postgresql
    migrations: tuple[int, ...]
    files: tuple[BackupFile, ...] = field(default_factory=tuple)

    def document(self) -> dict[str, object]:
        body: dict[str, object] = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "loa_version": self.loa_version,
            "database": self.database,
            "migrations": list(self.migrations),
            "files": [{"path": f.path, "bytes": f.bytes, "sha256": f.sha256, "mode": f.mode} for f in self.files],
        }
        return body | {"manifest_sha256": _digest_of(body)}


def _digest_of(body: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class BackupRefused(UsageError):
    """A backup that is damaged, partial, or from a newer Loa; or a restore target not empty."""

    code = "backup"


def _empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _excluded(settings: Settings, target: Path) -> set[Path]:
    data = settings.data_dir.resolve()
    skip = {(data / name) for name in NOT_BACKED_UP}
    skip |= {settings.segments_dir.resolve(), target.resolve()}
    if settings.backup.dir is not None:
        skip.add(settings.backup.dir.resolve())
    if dump.kind_of(settings.db_url) == "sqlite":
        db = dump.sqlite_path(settings.db_url).resolve()
        skip |= {db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")}
    return skip


def _data_files(settings: Settings, target: Path) -> Iterator[Path]:
    data = settings.data_dir.resolve()
    skip = _excluded(settings, target)
    for root, dirs, names in os.walk(data):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d) not in skip)
        for name in sorted(names):
            path = here / name
            if path not in skip and path.is_file() and not path.is_symlink():
                yield path


def _copy(src: Path, dest: Path) -> BackupFile | None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        shutil.copy2(src, dest)
    except FileNotFoundError:  # removed while we walked (a temporary file): not part of the snapshot
        return None
    return BackupFile("", dest.stat().st_size, sha256_file(dest), src.stat().st_mode & 0o777)


def _config_files(settings: Settings) -> Iterator[tuple[Path, str]]:
    if settings.config_file is not None and settings.config_file.is_file():
        yield settings.config_file, "config/loa.toml"
    schedules = settings.schedules_dir
    if schedules.is_dir():
        for path in sorted(schedules.rglob("*")):
            if path.is_file():
                yield path, f"config/schedules/{path.relative_to(schedules).as_posix()}"


def make_backup(settings: Settings, target: Path) -> BackupManifest:
    """Snapshot the database, the data directory's own files, the key and the configuration into ``target``."""
    if not _empty_dir(target):
        raise BackupRefused(
            f"{target}: not empty; give a new directory", code="backup.target_not_empty", path=str(target)
        )
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(target, 0o700)
    kind = dump.kind_of(settings.db_url)
    migrations = dump.schema_versions(settings.db_url)
    files: list[BackupFile] = []

    def add(rel: str, dest: Path) -> None:
        files.append(BackupFile(rel, dest.stat().st_size, sha256_file(dest)))

    (target / "database").mkdir(mode=0o700)
    if kind == "sqlite":
        db_file = target / "database" / "loa.db"
        dump.dump_sqlite(settings.db_url, db_file)
        add("database/loa.db", db_file)
    else:
        db_file = target / "database" / "loa.pgdump"
        dump.dump_postgres(settings.db_url, db_file, bin_dir=settings.backup.pg_bin_dir)
        add("database/loa.pgdump", db_file)
    data = settings.data_dir.resolve()
    for src in _data_files(settings, target):
        rel = f"data/{src.relative_to(data).as_posix()}"
        copied = _copy(src, target / rel)
        if copied is not None:
            files.append(BackupFile(rel, copied.bytes, copied.sha256, copied.mode))
    key = settings.signing_key_file.resolve()
    if key.is_file() and not key.is_relative_to(data):
        rel = f"signing-key/{key.name}"
        copied = _copy(key, target / rel)
        if copied is not None:
            files.append(BackupFile(rel, copied.bytes, copied.sha256, copied.mode))
    for src, rel in _config_files(settings):
        copied = _copy(src, target / rel)
        if copied is not None:
            files.append(BackupFile(rel, copied.bytes, copied.sha256, copied.mode))
    for f in files:  # secrets stay secret in the copy; nothing in a backup is for others to read
        os.chmod(target / f.path, 0o600)
    manifest = BackupManifest(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        loa_version=__version__,
        database=kind,
        migrations=tuple(migrations),
        files=tuple(sorted(files, key=lambda f: f.path)),
    )
    tmp = target / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest.document(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target / MANIFEST)  # last: a backup without it is partial
    return manifest


def _refuse(source: Path, why: str, code: str) -> BackupRefused:
    return BackupRefused(f"{source}: {why}; this backup cannot be used", code=code, path=str(source), why=why)


def read_manifest(source: Path) -> BackupManifest:
    path = source / MANIFEST
    if not path.is_file():
        raise _refuse(source, f"no {MANIFEST} (a partial backup, or not a Loa backup)", "backup.partial")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        claimed = doc.pop("manifest_sha256")
        if doc.get("format") != FORMAT or not isinstance(doc.get("files"), list):
            raise ValueError("not a Loa backup manifest")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise _refuse(source, f"{MANIFEST} is damaged ({exc})", "backup.damaged") from None
    if claimed != _digest_of(doc):
        raise _refuse(source, f"{MANIFEST} was changed after it was written", "backup.damaged")
    if doc.get("version") != VERSION:
        raise _refuse(source, f"backup format version {doc.get('version')} is unknown to this Loa", "backup.newer")
    return BackupManifest(
        created_at=str(doc["created_at"]),
        loa_version=str(doc["loa_version"]),
        database=str(doc["database"]),
        migrations=tuple(int(v) for v in doc["migrations"]),
        files=tuple(
            BackupFile(str(f["path"]), int(f["bytes"]), str(f["sha256"]), int(f.get("mode", 0o600)) & 0o777)
            for f in doc["files"]
        ),
    )


def verify_backup(source: Path) -> BackupManifest:
    """Every file listed is there with its size and sha256, nothing else is, the database is whole."""
    manifest = read_manifest(source)
    listed = {f.path for f in manifest.files}
    for f in manifest.files:
        path = source / f.path
        if ".." in Path(f.path).parts or Path(f.path).is_absolute():
            raise _refuse(source, f"{f.path}: a path outside the backup", "backup.damaged")
        if not path.is_file():
            raise _refuse(source, f"{f.path} is missing", "backup.partial")
        if path.stat().st_size != f.bytes or sha256_file(path) != f.sha256:
            raise _refuse(source, f"{f.path} does not match its sha256", "backup.damaged")
    extra = sorted(
        p.relative_to(source).as_posix()
        for p in source.rglob("*")
        if p.is_file() and p.name != MANIFEST and p.relative_to(source).as_posix() not in listed
    )
    if extra:
        raise _refuse(source, f"files not in the manifest: {', '.join(extra[:5])}", "backup.damaged")
    if not any(f.path.startswith("database/") for f in manifest.files):
        raise _refuse(source, "no database in it", "backup.partial")
    if manifest.database == "sqlite" and not dump.sqlite_ok(source / "database" / "loa.db"):
        raise _refuse(source, "the SQLite database fails its integrity check", "backup.damaged")
    newer = sorted(set(manifest.migrations) - known_versions())
    if newer:
        raise _refuse(source, f"made by a newer Loa (migrations {newer}); restore it with that version", "backup.newer")
    return manifest


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: BackupManifest
    restored: int
    config_kept: tuple[str, ...]  # config files that differ from the backup's: the backup's copy is beside them


def restore_backup(settings: Settings, source: Path) -> RestoreReport:
    """Rebuild an empty data directory (and an empty database) from a verified backup."""
    manifest = verify_backup(source)
    kind = dump.kind_of(settings.db_url)
    if kind != manifest.database:
        raise BackupRefused(
            f"{source}: a {manifest.database} backup; the settings name a {kind} database",
            code="backup.database_kind",
        )
    data = settings.data_dir
    if not _empty_dir(data):
        raise BackupRefused(
            f"{data}: the data directory is not empty; restore into an empty one (move this one aside)",
            code="backup.restore_not_empty",
            path=str(data),
        )
    if kind == "sqlite":
        db_path = dump.sqlite_path(settings.db_url)
        if db_path.exists():
            raise BackupRefused(f"{db_path}: a database is already there", code="backup.restore_not_empty")
    elif not dump.postgres_is_empty(settings.db_url):
        raise BackupRefused(
            "the PostgreSQL database named in the settings is not empty; create an empty one",
            code="backup.restore_not_empty",
        )
    key = settings.signing_key_file
    if key.exists() and not key.resolve().is_relative_to(data.resolve()):
        raise BackupRefused(f"{key}: a signing key is already there", code="backup.restore_not_empty")
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    restored = 0
    kept: list[str] = []
    try:
        for f in manifest.files:
            src = source / f.path
            if f.path.startswith("data/"):
                _place(src, data / f.path.removeprefix("data/"), mode=f.mode)
            elif f.path.startswith("signing-key/"):
                _place(src, key, mode=0o600)
            elif f.path.startswith("config/"):
                if _restore_config(settings, src, f):
                    kept.append(f.path)
                continue
            elif f.path == "database/loa.db":
                _place(src, dump.sqlite_path(settings.db_url), mode=0o600)
            elif f.path == "database/loa.pgdump":
                dump.restore_postgres(settings.db_url, src, bin_dir=settings.backup.pg_bin_dir)
            restored += 1
    except (OSError, LoaError) as exc:
        raise LoaError(
            f"restore from {source} stopped: {exc}; empty {data} (and the database) and run it again",
            code="backup.restore_failed",
        ) from exc
    return RestoreReport(manifest, restored, tuple(kept))


def _place(src: Path, dest: Path, *, mode: int | None = None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dest.with_name(f".{dest.name}.restoring")
    shutil.copy2(src, tmp)
    os.chmod(tmp, mode if mode is not None else src.stat().st_mode & 0o777)
    os.replace(tmp, dest)


def _restore_config(settings: Settings, src: Path, f: BackupFile) -> bool:
    """Put a config file back where the settings expect it; true when one differing was there."""
    rel = f.path.removeprefix("config/")
    if rel == "loa.toml":
        dest = settings.config_file or Path("loa.toml").resolve()
    else:
        dest = settings.schedules_dir / rel.removeprefix("schedules/")
    if not dest.exists():
        _place(src, dest, mode=f.mode)
        return False
    if sha256_file(dest) == f.sha256:
        return False
    _place(src, settings.data_dir / "restored-config" / rel, mode=0o600)
    return True


def stamped_dir(parent: Path, now: dt.datetime) -> Path:
    return parent / f"loa-{now:%Y%m%dT%H%M%S}"


def prune_backups(parent: Path, *, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups in ``parent`` (and older partial ones)."""
    backups = sorted(p for p in parent.glob("loa-*") if p.is_dir())
    complete = [p for p in backups if (p / MANIFEST).is_file()]
    kept = set(complete[-keep:])
    newest = max(kept) if kept else None
    removed = []
    for p in backups:
        if p in kept or (newest is not None and p > newest):
            continue  # a newer partial one may be being written now
        shutil.rmtree(p)
        removed.append(p)
    return removed
