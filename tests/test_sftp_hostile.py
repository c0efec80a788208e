"""Hostile SFTP endpoints, through the whole delivery path (``push_folders``).

- a server at the endpoint's address presenting another host key than the pinned one
  (a re-installed device, or someone in the middle): refused before authentication,
  nothing written, both fingerprints named;
- symbolic links inside ``remote_dir`` leading out of it: the endpoint fails with an
  error naming the link, and nothing is written outside.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.bench.sshd import SshServer, have_sshd, keygen
from pipeline.config import Settings
from pipeline.messages import delivery_error_vi
from pipeline.models import Delivery, Endpoint
from pipeline.produce import push_folders
from pipeline.transports import fingerprint
from tests.conftest import Project
from tests.tcp_proxy import TcpProxy
from tests.test_deliver import build_outbox, commune_with, make_segment

pytestmark = pytest.mark.sshd

DAY = dt.date(2026, 12, 1)
KIB = 1024


def push(settings: Settings, ep: Endpoint, day: dt.date = DAY) -> Delivery:
    [d] = push_folders([(ep, [f"programs/{day}"])], label=str(day), settings=settings, today=day, sleep=lambda s: None)
    return d


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (not following links): file → sha256, link → target."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"-> {p.readlink()}"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def fp(key_line: str) -> str:
    return fingerprint(base64.b64decode(key_line.split()[1]))


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[SshServer]:
    """A second sshd with its own (different) ed25519 host key, trusting the same client key."""
    if not have_sshd():
        pytest.skip("/usr/sbin/sshd or ssh-keygen is not installed (apt-get install openssh-server)")
    server = SshServer(tmp_path / "impostor")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- host keys ------------------------------------------------------------------


def test_a_server_with_another_host_key_at_the_same_address_is_refused(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
    impostor: SshServer,
) -> None:
    settings = project.settings
    remote = tmp_path / "remote"
    remote.mkdir()
    impostor.authorized_keys.write_text(sshd_running.client_key.with_name("id_ed25519.pub").read_text())
    with TcpProxy(sshd_running.host, sshd_running.port) as link:
        ep = dataclasses.replace(sshd_running.endpoint(remote, port=link.port), commune="02641", name="y-ty-1")
        commune = commune_with(ep)
        build_outbox(settings, commune, DAY, [make_segment(tmp_path, "a", 8 * KIB)])
        assert push(settings, ep).status == "delivered"
        before = tree(remote)

        # The next night the same address answers with another key (the traffic is redirected).
        day2 = DAY + dt.timedelta(days=1)
        build_outbox(settings, commune, day2, [make_segment(tmp_path, "b", 8 * KIB)])
        link.target = (impostor.host, impostor.port)
        d = push(settings, ep, day2)
    assert d.status == "failed" and d.attempts == 1, d  # permanent: not retried
    assert d.error is not None and d.error.startswith("y-ty-1: HOST KEY MISMATCH"), d.error
    assert d.error_code == "delivery.host_key_mismatch" and d.error_fields["endpoint"] == "y-ty-1"
    shown = delivery_error_vi(d.error_code, d.error_fields)
    assert shown.startswith("Lỗi: Thiết bị y-ty-1 (") and "trình ra khóa nhận dạng khác với khóa đã ghi" in shown
    assert fp(impostor.host_key) in d.error and fp(sshd_running.host_key) in d.error
    assert fp(impostor.host_key) != fp(sshd_running.host_key)
    assert "update host_key for endpoint y-ty-1" in d.error
    assert (d.files_sent, d.bytes_sent) == (0, 0)
    assert tree(remote) == before  # nothing written, nothing removed
    log = impostor.log()
    assert "Connection from" in log or "connection from" in log.lower()  # it was really reached…
    assert "Accepted publickey" not in log  # …but the client never authenticated to it


def test_a_server_with_only_a_host_key_of_another_type_is_refused(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    settings = project.settings
    other = SshServer(tmp_path / "rsa-only", client_key=sshd_running.client_key)
    for old in (other.host_key_path, other.host_key_path.with_name(other.host_key_path.name + ".pub")):
        old.unlink()
    keygen(other.host_key_path, "rsa")  # the config's only HostKey is now an RSA key
    remote = tmp_path / "remote"
    remote.mkdir()
    other.start()
    try:
        # pinned: the genuine device's ed25519 key; this server only has RSA
        ep = dataclasses.replace(other.endpoint(remote, host_key=sshd_running.host_key), commune="02641", name="y-ty-1")
        build_outbox(settings, commune_with(ep), DAY, [make_segment(tmp_path, "a", 8 * KIB)])
        d = push(settings, ep)
    finally:
        other.stop()
    assert d.status == "failed" and d.attempts == 1, d
    assert d.error is not None and d.error.startswith("y-ty-1: ")
    assert "has no ssh-ed25519 host key" in d.error and "update host_key for endpoint y-ty-1" in d.error
    assert tree(remote) == {}
    assert "Accepted publickey" not in other.log()


# --- symbolic links out of remote_dir ------------------------------------------

Layout = Callable[[Path, Path], str]


def media_dir_out(remote: Path, outside: Path) -> str:
    (remote / "media").symlink_to(outside)
    return "media"


def programs_dir_out(remote: Path, outside: Path) -> str:
    (remote / "programs").symlink_to(outside)
    return "programs"


def day_dir_out(remote: Path, outside: Path) -> str:
    (remote / "programs").mkdir()
    (remote / f"programs/{DAY}").symlink_to(outside)
    return f"programs/{DAY}"


def nested_media_out(remote: Path, outside: Path) -> str:
    """A link inside the root to a directory inside the root that links out."""
    (remote / "store").mkdir()
    (remote / "store/media").symlink_to(outside)
    (remote / "media").symlink_to(remote / "store/media")
    return "media"


def manifest_out(remote: Path, outside: Path) -> str:
    (remote / f"programs/{DAY}").mkdir(parents=True)
    (outside / "manifest.json").write_text('{"files": []}\n')
    (remote / f"programs/{DAY}/manifest.json").symlink_to(outside / "manifest.json")
    return "manifest.json"


def old_program_out(remote: Path, outside: Path) -> str:
    """An expired day whose folder leads out: retention must not empty the outside."""
    (remote / "programs").mkdir()
    (outside / "manifest.json").write_text('{"files": []}\n')
    (outside / "keep-me.mp3").write_bytes(b"not Loa's")
    (remote / "programs/2020-01-01").symlink_to(outside)
    return "programs/2020-01-01"


def dangling_media(remote: Path, outside: Path) -> str:
    (remote / "media").symlink_to(outside / "not-yet")
    return "media"


@pytest.mark.parametrize(
    "layout",
    [media_dir_out, programs_dir_out, day_dir_out, nested_media_out, manifest_out, old_program_out],
)
def test_a_symlink_out_of_remote_dir_fails_the_endpoint_and_nothing_is_written_outside(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
    layout: Layout,
) -> None:
    settings = project.settings
    remote, outside = tmp_path / "remote", tmp_path / "outside"
    remote.mkdir()
    outside.mkdir()
    named = layout(remote, outside)
    outside_before = tree(outside)
    ep = dataclasses.replace(sshd_running.endpoint(remote), commune="02641", name="y-ty-1")
    build_outbox(settings, commune_with(ep), DAY, [make_segment(tmp_path, f"m{i}", 8 * KIB) for i in range(2)])
    d = push(settings, ep)
    assert d.status == "failed" and d.attempts == 1, d  # permanent: a person must remove the link
    assert d.error is not None and d.error.startswith("y-ty-1: refused "), d.error
    assert "outside remote_dir" in d.error and "remove it" in d.error and named in d.error
    assert tree(outside) == outside_before  # nothing written, replaced or removed out there
    assert not list(remote.rglob("manifest.json")) or layout in (manifest_out, old_program_out)
    if layout is not old_program_out:  # (there the day is delivered before retention refuses)
        assert not [p for p in remote.rglob("*.m3u")]


def test_symlinks_that_stay_inside_remote_dir_are_followed_and_a_linked_final_name_is_replaced(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    settings = project.settings
    remote, outside = tmp_path / "remote", tmp_path / "outside"
    (remote / "store/media").mkdir(parents=True)
    outside.mkdir()
    (remote / "media").symlink_to(remote / "store/media")  # e.g. media kept on a bigger disk inside
    segs = [make_segment(tmp_path, f"k{i}", 8 * KIB) for i in range(2)]
    victim = outside / "victim.mp3"
    victim.write_bytes(b"someone else's file")
    (remote / f"store/media/{segs[0].key}.mp3").symlink_to(victim)  # a final name that is a link out
    ep = dataclasses.replace(sshd_running.endpoint(remote), commune="02641", name="y-ty-1")
    build_outbox(settings, commune_with(ep), DAY, segs)
    d = push(settings, ep)
    assert (d.status, d.error) == ("delivered", None), d
    for seg in segs:
        landed = remote / f"store/media/{seg.key}.mp3"
        assert not landed.is_symlink() and landed.read_bytes() == seg.path.read_bytes()
    assert victim.read_bytes() == b"someone else's file"  # the link was replaced, not written through
    assert (remote / f"programs/{DAY}/manifest.json").is_file()


def push_with_dangling_media_link(settings: Settings, tmp_path: Path, server: SshServer) -> tuple[Delivery, Path]:
    remote, outside = tmp_path / "remote", tmp_path / "outside"
    remote.mkdir()
    outside.mkdir()
    dangling_media(remote, outside)
    ep = dataclasses.replace(server.endpoint(remote), commune="02641", name="y-ty-1")
    build_outbox(settings, commune_with(ep), DAY, [make_segment(tmp_path, "m", 8 * KIB)])
    return push(settings, ep), outside


def test_a_dangling_symlink_out_of_remote_dir_fails_and_nothing_is_made_outside(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    d, outside = push_with_dangling_media_link(project.settings, tmp_path, sshd_running)
    assert d.status == "failed" and d.attempts == 1, d
    assert d.error is not None and d.error.startswith("y-ty-1: ") and "media/" in d.error
    assert tree(outside) == {}  # the link's target was not created


def test_a_dangling_symlink_out_of_remote_dir_is_named_as_such(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    d, _ = push_with_dangling_media_link(project.settings, tmp_path, sshd_running)
    assert d.error is not None and "outside remote_dir" in d.error and "remove it" in d.error, d.error
