"""The send limit: OpenSSH's sftp sends the byte floor once to a real sshd, then cleans up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from pipeline.bench.limit import bytes_floor
from pipeline.bench.send_limit import SendLimitError, send_once_limit
from pipeline.bench.sshd import SshServer
from pipeline.config import Settings
from pipeline.models import Commune, Deployment, Endpoint, Program, Segment, Slot
from tests.conftest import Project, package_day

DAY = dt.date(2026, 12, 3)
NEXT = DAY + dt.timedelta(days=1)
CODE = "02641"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def segment(tmp: Path, name: str, size: int) -> Segment:
    path = tmp / f"{name}.mp3"
    path.write_bytes(os.urandom(size))
    return Segment(
        name.ljust(64, "0"), path, 1000, "speech", "vi", name, size, hashlib.sha256(path.read_bytes()).hexdigest()
    )


def package(settings: Settings, commune: Commune, day: dt.date, segs: list[Segment]) -> None:
    start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=settings.tz)
    program = Program(f"{commune.code}/{day}/morning", commune.code, day, "morning", start, "routine", day, tuple(segs))
    package_day(settings, commune, [program], day)


def commune_with(*endpoints: Endpoint) -> Commune:
    return Commune(CODE, "Y Tý", None, ("vi",), (Slot("morning", dt.time(5, 30), 30),), tuple(endpoints))


def deployment(*communes: Commune) -> Deployment:
    return Deployment("Asia/Ho_Chi_Minh", (), communes)


def day_bytes(settings: Settings, endpoint: Endpoint, day: dt.date, media: list[Segment]) -> int:
    """What one playlist endpoint receives for ``day``, added up from the outbox by hand."""
    folder = settings.outbox_dir / CODE / f"programs/{day}"
    own = [
        folder / "morning.m3u",
        folder / f"manifests/{endpoint.name}.json",
        folder / f"manifests/{endpoint.name}.json.sig",
    ]
    return sum(s.bytes for s in media) + sum(p.stat().st_size for p in own)


def scratch(endpoint: Endpoint) -> Path:
    return Path(f"{endpoint.remote_dir}.sendlimit")


@pytest.mark.sshd
def test_sends_the_byte_floor_once_and_leaves_nothing_behind(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    # an outbox path sftp must be told about carefully (spaces, quotes, glob characters)
    settings = project.settings.model_copy(update={"data_dir": tmp_path / "da ta [1] 'q'*"})
    remote = tmp_path / "remote"
    remote.mkdir()
    a, b = (dataclasses.replace(sshd_running.endpoint(remote / n), commune=CODE, name=n) for n in ("y-ty-1", "y-ty-2"))
    unpackaged = dataclasses.replace(a, name="elsewhere", commune="99999")
    deploy = deployment(commune_with(a, b), Commune("99999", "Khác", None, ("vi",), (), (unpackaged,)))
    segs = [segment(tmp_path, f"s{i}", (30 + i) * 1024 + i) for i in range(3)]
    package(settings, commune_with(a, b), DAY, segs)

    limit = send_once_limit(settings, deploy, DAY, work=tmp_path / "work")
    expected = day_bytes(settings, a, DAY, segs) + day_bytes(settings, b, DAY, segs)
    assert (limit.endpoints, limit.files, limit.bytes) == (2, 12, expected)  # 3 media, playlist, manifest, sig
    assert limit.bytes == bytes_floor(settings, deploy, DAY)
    assert limit.seconds > 0 and limit.as_dict()["bytes"] == expected
    assert list(remote.iterdir()) == []  # nothing in remote_dir; no scratch dir left beside it
    assert not any(scratch(e).exists() for e in (a, b, unpackaged))

    # the next day reuses two segments the endpoints got the day before: those are not sent
    new = segment(tmp_path, "n", 50 * 1024)
    package(settings, commune_with(a, b), NEXT, [*segs[1:], new])
    cold = send_once_limit(settings, deploy, NEXT, work=tmp_path / "work")
    warm = send_once_limit(settings, deploy, NEXT, before=DAY, work=tmp_path / "work")
    held = 2 * (segs[1].bytes + segs[2].bytes)
    assert cold.bytes == day_bytes(settings, a, NEXT, [*segs[1:], new]) + day_bytes(settings, b, NEXT, [*segs[1:], new])
    assert (warm.files, warm.bytes) == (cold.files - 4, cold.bytes - held)
    assert warm.bytes == bytes_floor(settings, deploy, NEXT, before=DAY)
    assert list(remote.iterdir()) == []


@pytest.mark.sshd
def test_a_wrong_host_key_names_the_endpoint(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    settings = project.settings
    remote = tmp_path / "remote"
    remote.mkdir()
    good = dataclasses.replace(sshd_running.endpoint(remote / "good"), commune=CODE, name="good")
    bad = dataclasses.replace(sshd_running.endpoint(remote / "bad", host_key=OTHER_KEY), commune=CODE, name="bad-key")
    package(settings, commune_with(good, bad), DAY, [segment(tmp_path, "x", 1024)])
    with pytest.raises(
        SendLimitError, match=r"(?s)^bad-key: sftp exited with \d+:\n.*Host key verification failed"
    ) as caught:
        send_once_limit(settings, deployment(commune_with(good, bad)), DAY, work=tmp_path / "work")
    assert "good" not in str(caught.value)
    assert list(remote.iterdir()) == []  # the endpoint that was sent to is cleaned up too
