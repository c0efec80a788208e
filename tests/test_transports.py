"""Transports against real endpoints: OpenSSH's sshd on 127.0.0.1 and a local directory."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.bench.sshd import SshServer
from pipeline.config import DeliverSettings
from pipeline.errors import DeliveryError, TransientDeliveryError
from pipeline.models import Endpoint
from pipeline.transports import (
    LocalTransport,
    SftpTransport,
    Transport,
    fingerprint,
    is_temp_name,
    open_transport,
    temp_name,
)
from pipeline.transports.sftp import parse_host_key

pytestmark = pytest.mark.sshd

SETTINGS = DeliverSettings(connect_timeout_s=5, op_timeout_s=10, keepalive_s=0)

Opener = Callable[[Path], Transport]


def local_endpoint(root: Path) -> Endpoint:
    return Endpoint(name="test-local", commune="00000", transport="local", path=root)


@pytest.fixture(params=["sftp", "local"])
def opener(request: pytest.FixtureRequest, sshd_running: SshServer) -> Opener:
    """Opens a transport (sftp through the real sshd, or local) whose root is a directory."""
    if request.param == "sftp":
        return lambda root: open_transport(sshd_running.endpoint(root), settings=SETTINGS)
    return lambda root: open_transport(local_endpoint(root), settings=SETTINGS)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "endpoint"
    path.mkdir()
    return path


@pytest.fixture
def transport(opener: Opener, root: Path) -> Iterator[Transport]:
    with opener(root) as t:
        yield t


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_put_list_size_read_remove_round_trip(transport: Transport, root: Path, tmp_path: Path) -> None:
    local = tmp_path / "segment.mp3"
    local.write_bytes(os.urandom(300_000))
    assert transport.put_file(local, "media/ab12.mp3") == 300_000
    assert transport.put_bytes("xin chào\n".encode(), "programs/2026-12-01/morning.m3u") == 10

    assert files_under(root) == {
        "media/ab12.mp3": local.read_bytes(),
        "programs/2026-12-01/morning.m3u": "xin chào\n".encode(),
    }
    assert transport.list_dir() == ["media", "programs"]
    assert transport.list_dir("programs/2026-12-01") == ["morning.m3u"]
    assert transport.list_files("media") == {"ab12.mp3": 300_000}
    assert transport.file_size("media/ab12.mp3") == 300_000
    assert transport.read_bytes("programs/2026-12-01/morning.m3u") == "xin chào\n".encode()
    assert transport.read_bytes("media/ab12.mp3") == local.read_bytes()

    transport.remove("programs/2026-12-01/morning.m3u")
    transport.remove_dir("programs/2026-12-01")
    assert transport.list_dir("programs") == []
    assert not (root / "programs" / "2026-12-01").exists()


def test_missing_things_are_none_or_empty(transport: Transport) -> None:
    assert transport.file_size("media/none.mp3") is None
    assert transport.read_bytes("media/none.mp3") is None
    assert transport.list_dir("nowhere") == []
    assert transport.list_files("nowhere/deeper") == {}
    transport.remove("media/none.mp3")  # missing: not an error
    transport.remove_dir("nowhere")


def test_a_directory_is_not_a_file(transport: Transport, root: Path) -> None:
    (root / "media").mkdir()
    assert transport.file_size("media") is None
    assert transport.read_bytes("media") is None


def test_reupload_replaces_by_rename_and_leaves_no_temp(transport: Transport, root: Path) -> None:
    transport.put_bytes(b"first version", "programs/d/manifest.json")
    before = os.stat(root / "programs/d/manifest.json").st_ino
    transport.put_bytes(b"second, longer version", "programs/d/manifest.json")
    after = root / "programs/d/manifest.json"
    assert after.read_bytes() == b"second, longer version"
    # a new inode: the old file was replaced whole by a rename, never rewritten in place
    assert os.stat(after).st_ino != before
    assert transport.list_dir("programs/d") == ["manifest.json"]


def test_empty_file(transport: Transport, root: Path) -> None:
    assert transport.put_bytes(b"", "empty.txt") == 0
    assert (root / "empty.txt").read_bytes() == b""
    assert transport.file_size("empty.txt") == 0


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.txt", "media/../../x", "a\\b.mp3", "nul\x00.mp3", ""])
def test_paths_that_could_leave_the_root_are_refused(transport: Transport, root: Path, bad: str) -> None:
    with pytest.raises(DeliveryError) as info:
        transport.put_bytes(b"x", bad)
    assert not isinstance(info.value, TransientDeliveryError)
    assert str(info.value).startswith(transport.endpoint.name + ":")
    assert info.value.code == "delivery.path_refused" and info.value.fields["endpoint"] == transport.endpoint.name
    assert files_under(root.parent) == {}


def test_a_symlink_out_of_the_root_is_refused(transport: Transport, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not for the device")
    (root / "media").symlink_to(outside)
    (root / "leak.txt").symlink_to(outside / "secret.txt")

    for act in (
        lambda: transport.put_bytes(b"x", "media/a.mp3"),
        lambda: transport.put_bytes(b"x", "media/sub/a.mp3"),
        lambda: transport.read_bytes("media/secret.txt"),
        lambda: transport.file_size("media/secret.txt"),
        lambda: transport.list_dir("media"),
        lambda: transport.read_bytes("leak.txt"),
    ):
        with pytest.raises(DeliveryError, match="outside"):
            act()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # a link that stays inside is fine
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    transport.put_bytes(b"ok", "alias/a.txt")
    assert (root / "real" / "a.txt").read_bytes() == b"ok"


def test_temp_names_and_their_cleanup(transport: Transport, root: Path) -> None:
    name = temp_name("ab12.mp3")
    assert is_temp_name(name) and name.startswith(".ab12.mp3.part-")
    assert not is_temp_name("ab12.mp3") and not is_temp_name(".hidden")
    (root / "media").mkdir()
    (root / "media" / name).write_bytes(b"half a file")
    (root / "media" / "ab12.mp3").write_bytes(b"whole")
    assert transport.list_files("media") == {"ab12.mp3": 5}
    assert transport.remove_temps("media") == [name]
    assert sorted(os.listdir(root / "media")) == ["ab12.mp3"]


def test_read_limit(transport: Transport) -> None:
    transport.put_bytes(b"x" * 2000, "big.txt")
    with pytest.raises(DeliveryError, match="larger than 1000 bytes"):
        transport.read_bytes("big.txt", limit=1000)


def test_remove_dir_that_is_not_empty(transport: Transport) -> None:
    transport.put_bytes(b"x", "programs/d/a.m3u")
    with pytest.raises(DeliveryError, match="not empty") as info:
        transport.remove_dir("programs/d")
    assert not isinstance(info.value, TransientDeliveryError)


def test_free_bytes_matches_the_file_system(transport: Transport, root: Path) -> None:
    free = transport.free_bytes()
    st = os.statvfs(root)
    assert free is not None
    assert free == pytest.approx(st.f_bavail * st.f_frsize, rel=0.05)


def test_missing_root_is_refused(opener: Opener, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="mkdir -p") as info:
        opener(tmp_path / "absent").__enter__()
    assert not isinstance(info.value, TransientDeliveryError)
    assert info.value.code == "delivery.no_remote_dir"


def test_local_can_create_its_root(tmp_path: Path) -> None:
    target = tmp_path / "usb" / "y-ty"
    with open_transport(local_endpoint(target), settings=SETTINGS, create_root=True) as t:
        t.put_bytes(b"x", "a.txt")
    assert (target / "a.txt").read_bytes() == b"x"


def test_open_transport_chooses_by_kind(sshd_server: SshServer, tmp_path: Path) -> None:
    assert isinstance(open_transport(sshd_server.endpoint(tmp_path), settings=SETTINGS), SftpTransport)
    assert isinstance(open_transport(local_endpoint(tmp_path), settings=SETTINGS), LocalTransport)
    odd = Endpoint(name="y-ty-ftp", commune="02641", transport="ftp")
    with pytest.raises(DeliveryError, match="y-ty-ftp: unknown transport 'ftp'"):
        open_transport(odd, settings=SETTINGS)
    no_host = Endpoint(name="y-ty-1", commune="02641", transport="sftp", remote_dir="/srv/loa")
    with pytest.raises(DeliveryError, match="y-ty-1: an sftp endpoint needs host, user, key_file"):
        open_transport(no_host, settings=SETTINGS)


def test_fingerprint_is_openssh_s(sshd_server: SshServer) -> None:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd_server.host_key_path) + ".pub"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    kind, blob = parse_host_key(sshd_server.endpoint("/"))
    assert kind == "ssh-ed25519"
    assert fingerprint(blob) == out[1]


@pytest.mark.parametrize(
    ("host_key", "message"),
    [
        ("ssh-ed25519", "must look like"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "must look like"),
        ("ssh-ed25519 not-base64!", "not valid base64"),
        ("ssh-rsa {ed25519}", "says ssh-rsa but holds a ssh-ed25519 key"),
        ("ssh-ed25519 AAAA", "holds a malformed key"),
    ],
)
def test_bad_host_key_lines(sshd_server: SshServer, host_key: str, message: str) -> None:
    host_key = host_key.replace("{ed25519}", sshd_server.host_key.split()[1])
    with pytest.raises(DeliveryError, match=message):
        parse_host_key(sshd_server.endpoint("/", host_key=host_key))


def test_a_known_hosts_line_is_accepted(sshd_server: SshServer) -> None:
    line = f"[127.0.0.1]:{sshd_server.port} {sshd_server.host_key}"
    assert parse_host_key(sshd_server.endpoint("/", host_key=line)) == parse_host_key(sshd_server.endpoint("/"))


def test_local_permission_denied_is_permanent(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through chmod 0555; the sftp read-only test covers permission denied")
    root = tmp_path / "ro"
    root.mkdir(mode=0o555)
    with (
        open_transport(local_endpoint(root), settings=SETTINGS) as t,
        pytest.raises(DeliveryError, match="permission denied"),
    ):
        t.put_bytes(b"x", "a.txt")


def test_the_paramiko_internals_sftp_relies_on(sshd_running: SshServer, root: Path) -> None:
    """``transports/sftp.py`` uses four things paramiko does not document; this breaks if a release moves them.

    ``SFTPClient._request`` (statvfs@openssh.com), ``SFTPClient._read_response`` and
    ``SFTPFile._reqs`` (reading every pipelined write's status), ``paramiko.sftp.CMD_EXTENDED``
    and ``CMD_EXTENDED_REPLY``, and ``paramiko.Message`` (the embedded host key text).
    """
    import collections

    import paramiko
    from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

    assert (CMD_EXTENDED, CMD_EXTENDED_REPLY) == (200, 201)
    with open_transport(sshd_running.endpoint(root), settings=SETTINGS) as t:
        assert isinstance(t, SftpTransport)
        sftp = t.sftp
        kind, msg = sftp._request(CMD_EXTENDED, "statvfs@openssh.com", str(root))
        assert kind == CMD_EXTENDED_REPLY and isinstance(msg, paramiko.Message)
        with sftp.open(str(root / "pipelined"), "w") as f:
            f.set_pipelined(True)
            f.write(b"x" * 1000)
            assert isinstance(f._reqs, collections.deque) and len(f._reqs) == 1
            sftp._read_response(f._reqs.popleft())
        assert (root / "pipelined").stat().st_size == 1000
    blob = paramiko.Message()
    blob.add_string("ssh-ed25519")
    assert paramiko.Message(blob.asbytes()).get_text() == "ssh-ed25519"
