"""The local transport: a directory on this machine (a mounted share, a USB stick).

Writes go to a temporary name in the target's directory, are fsync'ed, then
``os.replace``d over the final name, and the directory is fsync'ed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pipeline.errors import DeliveryError
from pipeline.models import Endpoint
from pipeline.transports.base import check_rel, is_temp_name, temp_name

_CHUNK = 1024 * 1024


class LocalTransport:
    """``Transport`` over ``endpoint.path``; the directory must exist (or ``create_root``)."""

    def __init__(self, endpoint: Endpoint, *, create_root: bool = False) -> None:
        if endpoint.path is None:
            raise DeliveryError(
                f"{endpoint.name}: a local endpoint needs 'path' (a directory) in its [[commune.endpoint]]",
                code="delivery.endpoint_config",
                endpoint=endpoint.name,
            )
        self.endpoint = endpoint
        self._root_given = Path(endpoint.path)
        self._create_root = create_root
        self._root: Path | None = None

    # --- connection -------------------------------------------------------------

    def __enter__(self) -> Self:
        root = self._root_given
        if self._create_root:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error("create the endpoint directory", root, exc) from exc
        if not root.is_dir():
            raise DeliveryError(
                f"{self.endpoint.name}: endpoint directory {root} does not exist; "
                "mount the device or create the directory (mkdir -p)",
                code="delivery.no_remote_dir",
                endpoint=self.endpoint.name,
            )
        self._root = root.resolve()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._root = None

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("use the transport in a 'with' block")
        return self._root

    # --- reading ----------------------------------------------------------------

    def list_dir(self, rel: str = "") -> list[str]:
        path = self._inside(rel, allow_root=True, follow=True)
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._error("list", path, exc) from exc

    def list_files(self, rel: str = "") -> dict[str, int]:
        path = self._inside(rel, allow_root=True, follow=True)
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as exc:
            raise self._error("list", path, exc) from exc
        return {
            e.name: e.stat(follow_symlinks=False).st_size
            for e in entries
            if e.is_file(follow_symlinks=False) and not is_temp_name(e.name)
        }

    def file_size(self, rel: str) -> int | None:
        path = self._inside(rel, follow=True)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error("read the size of", path, exc) from exc
        return st.st_size if path.is_file() else None

    def read_bytes(self, rel: str, *, limit: int = 10_000_000) -> bytes | None:
        path = self._inside(rel, follow=True)
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise self._error("read", path, exc) from exc
        if len(data) > limit:
            raise DeliveryError(
                f"{self.endpoint.name}: {rel} is larger than {limit} bytes; not read",
                code="delivery.too_large",
                endpoint=self.endpoint.name,
            )
        return data

    # --- writing ----------------------------------------------------------------

    def put_file(self, local: Path, rel: str) -> int:
        try:
            src = local.open("rb")
        except OSError as exc:
            raise DeliveryError(
                f"{self.endpoint.name}: cannot read the local file {local}: {exc}",
                code="delivery.outbox",
                endpoint=self.endpoint.name,
            ) from exc
        with src:
            return self._put(src, os.fstat(src.fileno()).st_size, rel)

    def put_bytes(self, data: bytes, rel: str) -> int:
        return self._put(io.BytesIO(data), len(data), rel)

    def _put(self, src: BinaryIO, size: int, rel: str) -> int:
        final = self._inside(rel)
        parent = self._make_parents(final.parent)
        tmp = parent / temp_name(final.name)
        sent = 0
        try:
            with tmp.open("xb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
                sent = out.tell()
            if sent != size:
                raise DeliveryError(
                    f"{self.endpoint.name}: {rel}: wrote {sent} bytes, expected {size}; "
                    "the local file changed while it was copied, run again",
                    code="delivery.incomplete",
                    endpoint=self.endpoint.name,
                )
            os.replace(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise self._error("write", final, exc) from exc
            raise
        _fsync_dir(parent)
        return sent

    def remove(self, rel: str) -> None:
        path = self._inside(rel)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("remove", path, exc) from exc

    def move(self, rel: str, to: str) -> None:
        """Rename the file ``root/rel`` to ``root/to`` (parents made), replacing ``to``."""
        src, dst = self._inside(rel), self._inside(to)
        parent = self._make_parents(dst.parent)
        try:
            os.replace(src, parent / dst.name)
        except OSError as exc:
            raise self._error("move", src, exc) from exc

    def remove_dir(self, rel: str) -> None:
        path = self._inside(rel)
        try:
            path.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("remove the directory", path, exc) from exc

    def remove_temps(self, rel: str = "") -> list[str]:
        removed = [n for n in self.list_dir(rel) if is_temp_name(n)]
        for name in removed:
            self.remove(f"{rel}/{name}" if rel not in ("", ".") else name)
        return removed

    def free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    # --- internals --------------------------------------------------------------

    def _inside(self, rel: str, *, allow_root: bool = False, follow: bool = False) -> Path:
        """``root/rel`` after checking that its resolved parent (or itself, when reading
        through it: ``follow``) has not left the root."""
        clean = check_rel(self.endpoint, rel, allow_root=allow_root)
        path = self.root.joinpath(*clean.parts)
        if path != self.root:
            self._check_inside((path if follow else path.parent).resolve(), rel)
        return path

    def _check_inside(self, resolved: Path, rel: str) -> None:
        if resolved != self.root and self.root not in resolved.parents:
            raise DeliveryError(
                f"{self.endpoint.name}: refused {rel!r}: it leads to {resolved}, outside {self.root} "
                "(a symbolic link on the device points out of the endpoint's directory; remove it)",
                code="delivery.path_refused",
                endpoint=self.endpoint.name,
            )

    def _make_parents(self, parent: Path) -> Path:
        current = self.root
        for part in parent.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir(exist_ok=True)
            except FileExistsError as exc:  # a file (or a dangling link) in the way
                raise self._error("make the directory", current, exc) from exc
            except OSError as exc:
                raise self._error("make the directory", current, exc) from exc
            self._check_inside(current.resolve(), str(current.relative_to(self.root)))
        return current

    def _error(self, doing: str, path: Path, exc: OSError) -> DeliveryError:
        name = self.endpoint.name
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return DeliveryError(
                f"{name}: cannot {doing} {path}: permission denied; "
                f"make {self.root} writable by the user running Loa (uid {os.getuid()})",
                code="delivery.permission",
                endpoint=name,
            )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            free = self.free_bytes()
            shown = f"{free} bytes free" if free is not None else "free space unknown"
            return DeliveryError(
                f"{name}: no space left on the device holding {self.root} ({shown}); "
                "free space on the device or use a larger one",
                code="delivery.no_space",
                endpoint=name,
            )
        return DeliveryError(f"{name}: cannot {doing} {path}: {exc.strerror or exc}", code="delivery.io", endpoint=name)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems (vfat on a USB stick) refuse
            os.fsync(fd)
    finally:
        os.close(fd)
