"""Faults a mountain link and a commune device produce, against the real sshd.

After each fault: the right error class (transient or permanent), no partial file under
a final name, and a retry that completes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.bench.sshd import SshServer, keygen
from pipeline.config import DeliverSettings
from pipeline.errors import DeliveryError, TransientDeliveryError
from pipeline.models import Endpoint
from pipeline.transports import is_temp_name, open_transport
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.sshd

SETTINGS = DeliverSettings(connect_timeout_s=3, op_timeout_s=3, keepalive_s=0)
MIB = 1024 * 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "endpoint"
    path.mkdir()
    return path


@pytest.fixture
def proxy(sshd_running: SshServer) -> Iterator[TcpProxy]:
    with TcpProxy(sshd_running.host, sshd_running.port) as p:
        yield p


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "program.mp3"
    path.write_bytes(os.urandom(2 * MIB))
    return path


def ssh_keygen_fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


def assert_no_partial_final(root: Path, expected: dict[str, bytes]) -> list[str]:
    """Every file under a final name is one we sent, whole; return the temp names found."""
    temps = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if is_temp_name(p.name):
            temps.append(rel)
            continue
        assert rel in expected, f"unexpected final file {rel}"
        assert p.read_bytes() == expected[rel], f"{rel} is partial or wrong"
    return temps


def permanent(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and not isinstance(exc, TransientDeliveryError)


# --- the link ---------------------------------------------------------------------


def test_connection_cut_in_the_middle_of_a_file(
    sshd_running: SshServer,
    proxy: TcpProxy,
    root: Path,
    payload: Path,
) -> None:
    proxy.cut_after = 1 * MIB  # the handshake is a few KiB; the file is 2 MiB
    ep = sshd_running.endpoint(root, port=proxy.port)
    with open_transport(ep, settings=SETTINGS) as t:
        t.put_bytes(b"small", "media/first.txt")
        with pytest.raises(TransientDeliveryError, match=r"connection lost while uploading media/big.mp3"):
            t.put_file(payload, "media/big.mp3")
        with pytest.raises(TransientDeliveryError, match="no connection"):
            t.put_bytes(b"x", "media/after.txt")  # the transport knows it is broken
    assert proxy.bytes_up <= 1 * MIB
    temps = assert_no_partial_final(root, {"media/first.txt": b"small"})

    proxy.cut_after = None
    with open_transport(ep, settings=SETTINGS) as t:
        assert sorted(t.remove_temps("media")) == sorted(Path(x).name for x in temps)
        assert t.file_size("media/big.mp3") is None
        assert t.put_file(payload, "media/big.mp3") == 2 * MIB
    assert assert_no_partial_final(root, {"media/first.txt": b"small", "media/big.mp3": payload.read_bytes()}) == []


def test_sshd_stopped_between_files_then_back(sshd_running: SshServer, root: Path) -> None:
    ep = sshd_running.endpoint(root)
    try:
        with open_transport(ep, settings=SETTINGS) as t:
            t.put_bytes(b"one", "media/1.mp3")
            sshd_running.stop()  # the device reboots: sessions end, nobody listens
            with pytest.raises(TransientDeliveryError, match=r"test-sftp: connection lost while uploading media/2.mp3"):
                t.put_bytes(b"two", "media/2.mp3")
        with pytest.raises(TransientDeliveryError, match="connection refused"):
            open_transport(ep, settings=SETTINGS).__enter__()
        assert assert_no_partial_final(root, {"media/1.mp3": b"one"}) == []
    finally:
        sshd_running.start()
    with open_transport(ep, settings=SETTINGS) as t:
        t.put_bytes(b"two", "media/2.mp3")
        assert t.list_files("media") == {"1.mp3": 3, "2.mp3": 3}


def test_silent_link_times_out(sshd_running: SshServer, proxy: TcpProxy, root: Path) -> None:
    fast = DeliverSettings(connect_timeout_s=1, op_timeout_s=1, keepalive_s=0)
    ep = sshd_running.endpoint(root, port=proxy.port)
    with open_transport(ep, settings=fast) as t:
        proxy.blackhole = True  # packets vanish; nothing is closed
        with pytest.raises(TransientDeliveryError, match="no answer for 1 s"):
            t.put_bytes(b"x" * 100_000, "media/a.mp3")
    with pytest.raises(TransientDeliveryError, match=r"timed out|handshake"):
        open_transport(ep, settings=fast).__enter__()
    proxy.blackhole = False
    with open_transport(ep, settings=fast) as t:
        t.remove_temps("media")
        t.put_bytes(b"x" * 100_000, "media/a.mp3")
    assert assert_no_partial_final(root, {"media/a.mp3": b"x" * 100_000}) == []


# --- trust ------------------------------------------------------------------------


def test_wrong_host_key_is_refused_with_both_fingerprints(
    sshd_running: SshServer,
    root: Path,
    tmp_path: Path,
) -> None:
    other = keygen(tmp_path / "other_host_key")
    ep = sshd_running.endpoint(root, host_key=other, name="y-ty-1")
    with pytest.raises(DeliveryError) as info:
        open_transport(ep, settings=SETTINGS).__enter__()
    msg = str(info.value)
    assert permanent(info.value)
    assert msg.startswith("y-ty-1: HOST KEY MISMATCH")
    assert ssh_keygen_fingerprint(sshd_running.host_key_path.with_suffix(".pub")) in msg
    assert ssh_keygen_fingerprint(tmp_path / "other_host_key.pub") in msg
    assert "update host_key for endpoint y-ty-1" in msg
    assert files_in(root) == []


def test_pinned_key_of_a_type_the_device_lacks(
    sshd_running: SshServer,
    root: Path,
    tmp_path: Path,
) -> None:
    ecdsa = keygen(tmp_path / "ecdsa_host_key", "ecdsa")  # the device only has an ed25519 key
    ep = sshd_running.endpoint(root, host_key=ecdsa)
    with pytest.raises(DeliveryError, match="has no ecdsa-sha2-nistp256 host key") as info:
        open_transport(ep, settings=SETTINGS).__enter__()
    assert permanent(info.value)


def test_unknown_host_key_is_refused(sshd_running: SshServer, root: Path) -> None:
    ep = sshd_running.endpoint(root, host_key=None)
    with pytest.raises(DeliveryError, match=rf"no host key is pinned.*ssh-keyscan -p {ep.port} 127.0.0.1") as info:
        open_transport(ep, settings=SETTINGS).__enter__()
    assert permanent(info.value)
    assert files_in(root) == []


def test_rejected_client_key_is_permanent(sshd_running: SshServer, root: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "id_stranger"
    keygen(stranger)
    ep = sshd_running.endpoint(root, key_file=stranger)
    with pytest.raises(DeliveryError, match="does not accept key") as info:
        open_transport(ep, settings=SETTINGS).__enter__()
    assert permanent(info.value)
    assert f"~{sshd_running.user}/.ssh/authorized_keys" in str(info.value)


def test_unreadable_or_encrypted_key_file(sshd_running: SshServer, root: Path, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="cannot read key_file") as info:
        open_transport(sshd_running.endpoint(root, key_file=tmp_path / "nope"), settings=SETTINGS).__enter__()
    assert permanent(info.value)
    locked = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(DeliveryError, match="passphrase"):
        open_transport(sshd_running.endpoint(root, key_file=locked), settings=SETTINGS).__enter__()


# --- the device ---------------------------------------------------------------------


def test_read_only_remote_dir_is_permanent(sshd_read_only: SshServer, root: Path) -> None:
    (root / "media").mkdir()
    (root / "media" / "old.mp3").write_bytes(b"old")
    with open_transport(sshd_read_only.endpoint(root, name="y-ty-ro"), settings=SETTINGS) as t:
        assert t.list_files("media") == {"old.mp3": 3}  # reading still works
        with pytest.raises(DeliveryError, match=r"y-ty-ro: permission denied.*not writable by") as info:
            t.put_bytes(b"new", "media/new.mp3")
        assert permanent(info.value)
        with pytest.raises(DeliveryError, match="permission denied"):
            t.put_bytes(b"new", "programs/d/a.m3u")  # making a directory is refused too
    assert assert_no_partial_final(root, {"media/old.mp3": b"old"}) == []


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI and this machine run tests as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *options)), "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.parametrize("mib", [2, 6])  # 6 MiB: more writes in flight than paramiko lets wait
def test_remote_disk_full_is_permanent_and_leaves_nothing(
    sshd_running: SshServer,
    tmp_path: Path,
    mib: int,
) -> None:
    payload = tmp_path / "program.mp3"
    payload.write_bytes(os.urandom(mib * MIB))
    with tmpfs(tmp_path / "small", "1m") as root:
        ep = sshd_running.endpoint(root, name="y-ty-full")
        with open_transport(ep, settings=SETTINGS) as t:
            with pytest.raises(DeliveryError, match=r"y-ty-full: no space left on the device.*free space") as info:
                t.put_file(payload, "media/big.mp3")  # into 1 MiB
            assert permanent(info.value)
            assert assert_no_partial_final(root, {}) == []  # the temporary file was removed
            t.put_bytes(b"fits", "media/small.mp3")  # the session is still usable
        assert assert_no_partial_final(root, {"media/small.mp3": b"fits"}) == []


def test_local_disk_full_and_read_only(tmp_path: Path, payload: Path) -> None:
    with tmpfs(tmp_path / "usb", "1m") as root:
        ep = Endpoint(name="y-ty-usb", commune="02641", transport="local", path=root)
        with open_transport(ep, settings=SETTINGS) as t:
            with pytest.raises(DeliveryError, match="y-ty-usb: no space left") as info:
                t.put_file(payload, "media/big.mp3")
            assert permanent(info.value)
            t.put_bytes(b"fits", "a.txt")
        assert assert_no_partial_final(root, {"a.txt": b"fits"}) == []
    with tmpfs(tmp_path / "ro", "1m", "ro") as root:
        ep = Endpoint(name="y-ty-usb", commune="02641", transport="local", path=root)
        with (
            open_transport(ep, settings=SETTINGS) as t,
            pytest.raises(DeliveryError, match=r"y-ty-usb: cannot make the directory .*permission denied"),
        ):
            t.put_bytes(b"x", "media/a.mp3")


def files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_authentication_timeout_on_a_slow_link_is_transient(
    sshd_running: SshServer,
    proxy: TcpProxy,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link stalls after the handshake: paramiko's "Authentication timeout." is a retry, not a wrong key."""
    import paramiko

    fast = DeliverSettings(connect_timeout_s=1, op_timeout_s=1, keepalive_s=0)
    ep = sshd_running.endpoint(root, port=proxy.port)
    real_auth = paramiko.Transport.auth_publickey

    def stall_then_auth(self: paramiko.Transport, *args: object, **kwargs: object) -> object:
        proxy.blackhole = True  # the handshake went through; the authentication gets no answer
        return real_auth(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(paramiko.Transport, "auth_publickey", stall_then_auth)
    with pytest.raises(DeliveryError) as info:
        open_transport(ep, settings=fast).__enter__()
    assert isinstance(info.value, TransientDeliveryError), str(info.value)
    assert "authorized_keys" not in str(info.value)
    assert "will retry" in str(info.value)
    monkeypatch.setattr(paramiko.Transport, "auth_publickey", real_auth)
    proxy.blackhole = False
    with open_transport(ep, settings=fast) as t:  # the retry, on a link that answers again
        t.put_bytes(b"ok", "media/a.mp3")
    assert (root / "media/a.mp3").read_bytes() == b"ok"
