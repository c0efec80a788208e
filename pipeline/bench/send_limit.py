"""The transport's limit: OpenSSH's own C client sending the day's bytes once.

``send_once_limit`` takes, per endpoint, exactly the files ``limit.bytes_floor`` counts
(the files its signed manifest for the day names, the manifest and its signature, less
the media it got for ``before``) and sends them with ``sftp -b`` to the same sshd, into
a scratch directory beside ``remote_dir`` (``<remote_dir>.sendlimit``). One ``sftp``
process per endpoint connects once, as Loa's delivery does, and at most
``deliver.parallel`` run at once. OpenSSH's client, written in C and pipelining its
writes, is what this transport can do on this machine: Loa's delivery time over this
time says how much Loa's own work costs beyond sending the bytes once. It prefers the
ciphers Loa's paramiko transport prefers.

The sshd is on the loopback, so ``remote_dir`` is a local path: every file is checked
there (size) after the run, and the scratch directories are removed.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from base64 import b64encode
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.bench.limit import files_to_send
from pipeline.config import Settings
from pipeline.errors import LoaError
from pipeline.models import Deployment, Endpoint
from pipeline.transports.sftp import PREFERRED_CIPHERS, parse_host_key

SFTP = "sftp"
SCRATCH_SUFFIX = ".sendlimit"
#: Lines of sftp's stderr quoted in an error.
STDERR_TAIL = 8


class SendLimitError(LoaError):
    """OpenSSH's sftp could not send an endpoint's files, or they did not arrive whole."""


@dataclass(frozen=True, slots=True)
class SendLimit:
    endpoints: int  # endpoints that had something to receive
    files: int
    bytes: int
    seconds: float  # wall time of all sftp processes, from the first start to the last exit

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
            "mb_per_s": round(self.bytes / 1e6 / self.seconds, 1) if self.seconds > 0 else None,
        }


@dataclass(frozen=True, slots=True)
class _Send:
    """One endpoint's sftp run: its batch file and what must land in ``scratch``."""

    endpoint: Endpoint
    argv: tuple[str, ...]
    scratch: Path  # the scratch directory as a local path (the sshd is on the loopback)
    files: tuple[tuple[str, int], ...]  # (relative path, bytes)


def _arg(path: str, *, glob: bool = False) -> str:
    """``path`` as one sftp batch argument, backslash-escaped; ``glob``: one sftp expands (``put``'s source).

    sftp unescapes ``\\x`` except before ``*?[``, where it leaves the backslash for glob(3).
    """
    special = " \t\"'\\" + ("*?[]" if glob else "")
    return "".join("\\" + c if c in special else c for c in path)


def _known_hosts_line(endpoint: Endpoint) -> str:
    kind, blob = parse_host_key(endpoint)
    host = endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"
    return f"{host} {kind} {b64encode(blob).decode()}\n"


def _scratch(endpoint: Endpoint) -> tuple[str, Path]:
    """The scratch directory beside ``remote_dir``: as sftp names it, and as a local path."""
    assert endpoint.remote_dir is not None
    remote = endpoint.remote_dir.rstrip("/") + SCRATCH_SUFFIX
    local = Path(remote).expanduser()
    return remote, local if local.is_absolute() else Path.home() / local


def _batch(remote: str, files: dict[str, tuple[Path, int]]) -> str:
    """``-mkdir`` for the scratch directory and every folder under it (parents first), then ``put``s."""
    dirs = {PurePosixPath(rel).parent for rel in files}
    dirs = {a for d in dirs for a in (d, *d.parents) if str(a) != "."}
    lines = [f"-mkdir {_arg(remote)}"]
    lines += [f"-mkdir {_arg(f'{remote}/{d}')}" for d in sorted(dirs, key=str)]
    lines += [f"put {_arg(str(local), glob=True)} {_arg(f'{remote}/{rel}')}" for rel, (local, _) in files.items()]
    return "\n".join(lines) + "\n"


def _prepare(endpoint: Endpoint, files: dict[str, tuple[Path, int]], work: Path, index: int) -> _Send:
    if endpoint.transport != "sftp" or not (endpoint.host and endpoint.user and endpoint.key_file):
        raise SendLimitError(
            f"{endpoint.name}: the send limit needs an sftp endpoint with host, user and key_file "
            f"(transport is {endpoint.transport}); benchmark a deployment of sftp endpoints only"
        )
    remote, local = _scratch(endpoint)
    shutil.rmtree(local, ignore_errors=True)  # left by an interrupted run
    known_hosts = work / f"{index:04d}.known_hosts"
    known_hosts.write_text(_known_hosts_line(endpoint))
    batch = work / f"{index:04d}.sftp"
    batch.write_text(_batch(remote, files), encoding="utf-8")
    argv = (
        SFTP,
        "-b",
        str(batch),
        "-i",
        str(endpoint.key_file),
        "-P",
        str(endpoint.port),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"Ciphers=^{','.join(PREFERRED_CIPHERS)}",  # preferred first, as Loa's transport does
        "-o",
        "LogLevel=ERROR",
        f"{endpoint.user}@{endpoint.host}",
    )
    return _Send(endpoint, argv, local, tuple((rel, size) for rel, (_, size) in files.items()))


def _run(send: _Send) -> None:
    done = subprocess.run(send.argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-STDERR_TAIL:]) or "(nothing on stderr)"
        raise SendLimitError(f"{send.endpoint.name}: sftp exited with {done.returncode}:\n{tail}")


def _check(send: _Send) -> None:
    for rel, size in send.files:
        path = send.scratch / rel
        got = path.stat().st_size if path.is_file() else None
        if got != size:
            raise SendLimitError(
                f"{send.endpoint.name}: {rel} arrived in {send.scratch} with "
                f"{'no file' if got is None else f'{got} bytes'}, not {size} bytes"
            )


@contextmanager
def _scratch_dirs(sends: list[_Send]) -> Iterator[None]:
    try:
        yield
    finally:
        for send in sends:
            shutil.rmtree(send.scratch, ignore_errors=True)


def send_once_limit(
    settings: Settings, deployment: Deployment, day: dt.date, *, before: dt.date | None = None, work: Path
) -> SendLimit:
    """Send ``day``'s byte floor once with ``sftp -b``, ``deliver.parallel`` endpoints at a time.

    ``work`` holds the batch and known_hosts files; only the sending is timed.
    """
    work.mkdir(parents=True, exist_ok=True)
    sends: list[_Send] = []
    with _scratch_dirs(sends):
        for index, endpoint in enumerate(deployment.endpoints()):
            files = files_to_send(settings.outbox_dir, endpoint, day, before=before)
            if files:
                sends.append(_prepare(endpoint, files, work, index))
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=settings.deliver.parallel) as pool:
            list(pool.map(_run, sends))
        seconds = time.monotonic() - started
        for send in sends:
            _check(send)
    return SendLimit(
        endpoints=len(sends),
        files=sum(len(s.files) for s in sends),
        bytes=sum(size for s in sends for _, size in s.files),
        seconds=seconds,
    )
