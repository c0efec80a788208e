"""File helpers every stage shares: a file's SHA-256 and an atomic write."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from loa_protocol.files import sha256_file, temp_beside  # one copy, shared with the commune's player

__all__ = ["local_secret", "sha256_file", "sha256_file_cached", "temp_beside", "write_atomic"]


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def sha256_file_cached(path: Path) -> str:
    """``sha256_file`` remembered for this process while the file's inode, size and mtime stay.

    For files read over and over in one run (a clip named by every commune's script).
    """
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        digest = _DIGESTS[key] = sha256_file(path)
    return digest


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; say whether it wrote.

    The data goes to a temporary name beside ``path``, is flushed to disk, and is renamed
    over ``path``, so a reader sees the old content or the new, never a part.
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
        tmp.unlink(missing_ok=True)
        raise
    return True


def local_secret(path: Path) -> bytes:
    """The secret kept in ``path``, made on first use (32 random bytes as hex, mode 0600).

    Created with O_EXCL, so two processes starting at once agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()
