"""The benchmark's loopback OpenSSH sshd: the test suite's ``SshServer``, opened up for parallel pushes.

OpenSSH's default ``MaxStartups 10:30:100`` starts dropping unauthenticated connections
beyond ten, and Loa opens ``deliver.parallel`` (16) at once; this server allows more.
``tests/sshd.py`` ships with the repository, not with the installed package, so the
benchmark needs a checkout.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _server_class() -> type:
    if not (REPO / "tests" / "sshd.py").is_file():
        raise ConfigError(f"{REPO}: no tests/sshd.py; run `loa bench` from a checkout of the repository")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.sshd import SshServer

    return SshServer


class BenchSshd(_server_class()):  # type: ignore[misc]
    """``tests.sshd.SshServer`` with room for many parallel SFTP sessions."""

    def _config(self) -> str:
        base: str = super()._config()
        return base + "MaxStartups 200:30:400\nMaxSessions 64\n"

    def toml(self) -> dict[str, str]:
        """The endpoint keys of this server, for a deployment file."""
        return {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "key_file": str(self.client_key),
            "host_key": self.host_key,
        }


@contextmanager
def bench_dir(keep: Path | None, *, prefix: str) -> Iterator[tuple[Path, BenchSshd]]:
    """A directory to measure in (``keep``, or a temporary one removed afterwards) and its running sshd."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        server = BenchSshd(tmp / "sshd")
        server.start()
        try:
            yield tmp, server
        finally:
            server.stop()
