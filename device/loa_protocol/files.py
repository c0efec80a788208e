"""A file's SHA-256, an atomic durable write, and safe relative paths."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path, PurePosixPath

BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def temp_beside(path: Path) -> Path:
    """A fresh hidden temporary name in ``path``'s directory (same file system: rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_dir(path: Path) -> None:
    """Make a rename in directory ``path`` survive a power cut."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; say whether it wrote.

    The data goes to a temporary name beside ``path``, is flushed to disk, and is renamed
    over ``path``, so a reader (or a restart after a power cut) sees the old content or the
    new, never a part.
    """
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return True


def safe_relative(root: Path, rel: str) -> Path | None:
    """``root/rel`` if ``rel`` is a plain relative POSIX path (no ``..``, no hidden names); else None."""
    p = PurePosixPath(rel)
    if not rel or rel.startswith("/") or not p.parts:
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in p.parts):
        return None
    return root.joinpath(*p.parts)
