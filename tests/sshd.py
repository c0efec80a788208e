"""pytest fixtures around a real OpenSSH sshd on 127.0.0.1 (``pipeline.bench.sshd.SshServer``).

The fixtures start one server per module; import them into a test module with
``from tests.sshd import sshd_server  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.bench.sshd import SSHD, SshServer, have_sshd


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running sshd for the module; tests that stop it must start it again."""
    if not have_sshd():
        pytest.skip(f"{SSHD} or ssh-keygen is not installed (apt-get install openssh-server)")
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sshd_read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd whose SFTP server refuses every write (``internal-sftp -R``)."""
    if not have_sshd():
        pytest.skip(f"{SSHD} or ssh-keygen is not installed (apt-get install openssh-server)")
    server = SshServer(tmp_path_factory.mktemp("sshd-ro"), read_only=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd_running(sshd_server: SshServer) -> SshServer:
    """``sshd_server``, started again if an earlier test left it stopped."""
    sshd_server.start()
    return sshd_server
