"""What every transport offers, and the path rules they share.

A transport is a connection to one endpoint's root directory (``remote_dir`` for sftp,
``path`` for a local directory). Paths given to it are POSIX paths relative to that
root; anything that could leave the root is refused. Every write goes to a temporary
name in the same directory and is renamed over the final name only when complete, so
a device never sees a partial file under a final name.
"""

from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Protocol, Self

from pipeline.errors import DeliveryError
from pipeline.models import Endpoint

#: Temporary uploads are named ``.<final name>.part-<8 hex digits>``.
TEMP_MARKER = ".part-"


def temp_name(final: str) -> str:
    """A fresh temporary name for an upload to ``final`` (a bare file name)."""
    return f".{final}{TEMP_MARKER}{secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary upload left by ``temp_name`` (e.g. after a cut link)."""
    head, sep, tail = name.rpartition(TEMP_MARKER)
    return (
        name.startswith(".")
        and bool(sep)
        and len(head) > 1
        and len(tail) == 8
        and all(c in "0123456789abcdef" for c in tail)
    )


def check_rel(endpoint: Endpoint, rel: str, *, allow_root: bool = False) -> PurePosixPath:
    """``rel`` as a clean relative path under the endpoint's root, or ``DeliveryError``.

    Refused: absolute paths, ``..``, NUL, backslashes, empty paths (unless ``allow_root``,
    where ``""`` and ``"."`` mean the root itself).
    """
    if not isinstance(rel, str):
        raise DeliveryError(
            f"{endpoint.name}: path {rel!r} must be a string", code="delivery.path_refused", endpoint=endpoint.name
        )
    if "\x00" in rel or "\\" in rel:
        raise DeliveryError(
            f"{endpoint.name}: refused path {rel!r}: NUL or backslash in a path",
            code="delivery.path_refused",
            endpoint=endpoint.name,
        )
    path = PurePosixPath(rel)
    if path.is_absolute():
        raise DeliveryError(
            f"{endpoint.name}: refused absolute path {rel!r}; paths are relative to the endpoint's root",
            code="delivery.path_refused",
            endpoint=endpoint.name,
        )
    if ".." in path.parts:
        raise DeliveryError(
            f"{endpoint.name}: refused path {rel!r}: '..' would leave the endpoint's root",
            code="delivery.path_refused",
            endpoint=endpoint.name,
        )
    if not path.parts and not allow_root:
        raise DeliveryError(
            f"{endpoint.name}: empty path; name a file under the endpoint's root",
            code="delivery.path_refused",
            endpoint=endpoint.name,
        )
    return path


def is_under(root: str, candidate: str) -> bool:
    """Whether the POSIX path ``candidate`` is ``root`` or inside it (both normalized)."""
    r, c = PurePosixPath(root), PurePosixPath(candidate)
    return c == r or r in c.parents


class Transport(Protocol):
    """A connection to one endpoint; use it as a context manager.

    ``__enter__`` connects (sftp: TCP, host key check, key auth, SFTP session) and
    checks the root exists; ``__exit__`` disconnects. Errors are ``DeliveryError``
    (permanent: fix something first) or ``TransientDeliveryError`` (retry later); every
    message starts with the endpoint's name.
    """

    endpoint: Endpoint

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def list_dir(self, rel: str = "") -> list[str]:
        """Names in ``root/rel``, sorted; ``[]`` if it does not exist. Temp names included."""
        ...

    def list_files(self, rel: str = "") -> dict[str, int]:
        """Regular files in ``root/rel`` with their sizes, in one request; no temp names."""
        ...

    def file_size(self, rel: str) -> int | None:
        """Size in bytes of the regular file ``root/rel``; ``None`` if missing."""
        ...

    def read_bytes(self, rel: str, *, limit: int = 10_000_000) -> bytes | None:
        """Content of ``root/rel``; ``None`` if missing; ``DeliveryError`` if over ``limit``."""
        ...

    def put_file(self, local: Path, rel: str) -> int:
        """Upload ``local`` to ``root/rel`` atomically (temp name, size check, rename); bytes sent.

        Parent directories are made. A failure removes the temporary file (best effort);
        the final name is never partial.
        """
        ...

    def put_bytes(self, data: bytes, rel: str) -> int:
        """Like ``put_file`` for data in memory."""
        ...

    def remove(self, rel: str) -> None:
        """Remove the file ``root/rel``; a missing file is not an error."""
        ...

    def move(self, rel: str, to: str) -> None:
        """Rename the file ``root/rel`` to ``root/to`` (parent directories made), replacing ``to``."""
        ...

    def remove_dir(self, rel: str) -> None:
        """Remove the empty directory ``root/rel``; missing is not an error, not empty is."""
        ...

    def remove_temps(self, rel: str = "") -> list[str]:
        """Remove temporary uploads left in ``root/rel`` by an earlier cut; their names."""
        ...

    def free_bytes(self) -> int | None:
        """Bytes free for this user on the root's file system; ``None`` if unknown."""
        ...
