"""A real OpenSSH sshd on 127.0.0.1, for the benchmark and the tests.

``SshServer`` generates its own host and client keys in a directory, writes an
``sshd_config`` and runs ``/usr/sbin/sshd -D -e`` on a free port. ``BenchSshd`` opens it up
for parallel pushes: OpenSSH's default ``MaxStartups 10:30:100`` starts dropping
unauthenticated connections beyond ten, and Loa opens ``deliver.parallel`` (16) at once.
The test suite's fixtures (``tests/sshd.py``) start ``SshServer`` too.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.models import Endpoint

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keygen(path: Path, kind: str = "ed25519") -> str:
    """Make a key pair at ``path`` (no passphrase); return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"loa-test-{path.name}", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    parts = path.with_name(path.name + ".pub").read_text().split()
    return f"{parts[0]} {parts[1]}"


class SshServer:
    """One sshd process on 127.0.0.1:``port`` serving SFTP for the current user.

    ``read_only=True`` serves SFTP with ``internal-sftp -R``: every write is refused by
    the server with "permission denied", even for root.
    """

    def __init__(self, workdir: Path, *, read_only: bool = False, client_key: Path | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = getpass.getuser()
        self.read_only = read_only
        self.host_key_path = self.dir / "ssh_host_ed25519_key"
        self.host_key = keygen(self.host_key_path)
        if client_key is None:
            client_key = self.dir / "id_ed25519"
            keygen(client_key)
        self.client_key = client_key
        self.authorized_keys = self.dir / "authorized_keys"
        self.authorized_keys.write_text(client_key.with_name(client_key.name + ".pub").read_text())
        self.log_path = self.dir / "sshd.log"
        self.config_path = self.dir / "sshd_config"
        self.config_path.write_text(self._config())
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None

    def _config(self) -> str:
        sftp = "internal-sftp -R" if self.read_only else "internal-sftp"
        return "\n".join(
            [
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {self.host_key_path}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                f"PidFile {self.dir / 'sshd.pid'}",
                f"Subsystem sftp {sftp}",
                f"ForceCommand {sftp}",
                f"AllowUsers {self.user}",
                "LogLevel VERBOSE",
                "",
            ]
        )

    # --- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            return
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"sshd exited at start; see {self.log_path}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port}; see {self.log_path}")

    def stop(self) -> None:
        """Stop the listener and every session it started (sessions share its group)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        sessions = _descendants(proc.pid)
        proc.terminate()
        for pid in sessions:  # each connection's sshd has called setsid(): end them one by one
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # sshd -D does not end its session children; the port must be free for a restart.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((self.host, self.port))
                return
            except OSError:
                time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- helpers for tests ------------------------------------------------------

    def endpoint(
        self,
        remote_dir: Path | str,
        *,
        name: str = "test-sftp",
        port: int | None = None,
        host_key: str | None = "pinned",
        key_file: Path | None = None,
    ) -> Endpoint:
        """An sftp ``Endpoint`` for this server; ``port`` to go through a proxy."""
        return Endpoint(
            name=name,
            commune="00000",
            transport="sftp",
            host=self.host,
            port=self.port if port is None else port,
            user=self.user,
            key_file=self.client_key if key_file is None else key_file,
            host_key=self.host_key if host_key == "pinned" else host_key,
            remote_dir=str(remote_dir),
        )

    def endpoint_toml(self, name: str, remote_dir: Path | str) -> str:
        """This server as a deployment file's ``[[commune.endpoint]]`` (sftp, its host key pinned),
        indented to follow a ``[[commune]]``."""
        return "\n".join(
            [
                "  [[commune.endpoint]]",
                f'  name = "{name}"',
                '  transport = "sftp"',
                f'  host = "{self.host}"',
                f"  port = {self.port}",
                f'  user = "{self.user}"',
                f'  key_file = "{self.client_key}"',
                f'  host_key = "{self.host_key}"',
                f'  remote_dir = "{remote_dir}"',
                "",
            ]
        )

    def known_hosts(self) -> Path:
        """A known_hosts file for OpenSSH's own clients (``-o UserKnownHostsFile=``)."""
        path = self.dir / "known_hosts"
        path.write_text(f"[{self.host}]:{self.port} {self.host_key}\n")
        return path


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid``, read from /proc (children first found first)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def have_sshd() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None


class BenchSshd(SshServer):
    """``SshServer`` with room for many parallel SFTP sessions."""

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
