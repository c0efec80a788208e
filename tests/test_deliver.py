"""Delivery to local and real-sshd endpoints: only what is missing, manifest last, faults."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import pytest

from pipeline.bench.sshd import SshServer
from pipeline.config import Settings
from pipeline.models import Commune, Endpoint, Program, Segment, Slot
from pipeline.produce import push_folders
from tests.conftest import Project, package_day
from tests.tcp_proxy import TcpProxy

DAY = dt.date(2026, 12, 1)
KIB = 1024


def make_segment(tmp: Path, name: str, size: int) -> Segment:
    path = tmp / f"{name}.mp3"
    path.write_bytes(os.urandom(size))
    import hashlib

    return Segment(
        name.ljust(64, "0"),
        path,
        1000,
        "speech",
        "vi",
        name,
        size,
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def build_outbox(settings: Settings, commune: Commune, day: dt.date, segs: list[Segment]) -> None:
    start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=settings.tz)
    program = Program(f"{commune.code}/{day}/morning", commune.code, day, "morning", start, "routine", day, tuple(segs))
    package_day(settings, commune, [program], day)


def commune_with(*endpoints: Endpoint) -> Commune:
    return Commune("02641", "Y Tý", None, ("vi",), (Slot("morning", dt.time(5, 30), 30),), tuple(endpoints))


def local(tmp: Path, name: str) -> Endpoint:
    return Endpoint(name=name, commune="02641", transport="local", path=tmp / name)


def push(settings: Settings, endpoints: list[Endpoint], day: dt.date = DAY) -> list:  # type: ignore[type-arg]
    return push_folders(
        [(e, [f"programs/{day}"]) for e in endpoints],
        label=str(day),
        settings=settings,
        today=day,
        sleep=lambda s: None,
    )


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_local_push_sends_only_what_is_missing(project: Project, tmp_path: Path) -> None:
    settings = project.settings
    ep = local(tmp_path, "y-ty-loa")
    commune = commune_with(ep)
    segs = [make_segment(tmp_path, f"a{i}", 20 * KIB) for i in range(3)]
    build_outbox(settings, commune, DAY, segs)
    [first] = push(settings, [ep])
    assert first.status == "delivered" and first.files_sent == 6  # 3 media, playlist, signature, manifest
    root = tmp_path / "y-ty-loa"
    manifest = json.loads((root / f"programs/{DAY}/manifest.json").read_text())
    for f in manifest["files"]:
        assert (root / f["path"]).stat().st_size == f["bytes"]
    before = snapshot(root)
    [second] = push(settings, [ep])
    assert (second.bytes_sent, second.files_sent) == (0, 0)
    assert snapshot(root) == before  # nothing rewritten

    # the next campaign day reuses two segments: only the new one and the day's files travel
    day2 = DAY + dt.timedelta(days=1)
    build_outbox(settings, commune, day2, [*segs[:2], make_segment(tmp_path, "b", 20 * KIB)])
    [third] = push(settings, [ep], day2)
    assert third.files_sent == 4 and third.bytes_sent < 25 * KIB  # the new segment, playlist, signature, manifest


def test_retention_removes_old_programs_then_unused_media(project: Project, tmp_path: Path) -> None:
    settings = project.settings.model_copy(
        update={"deliver": project.settings.deliver.model_copy(update={"retention_days": 2})}
    )
    ep = local(tmp_path, "y-ty-loa")
    commune = commune_with(ep)
    old = make_segment(tmp_path, "old", KIB)
    keep = make_segment(tmp_path, "keep", KIB)
    build_outbox(settings, commune, DAY, [old, keep])
    push(settings, [ep], DAY)
    later = DAY + dt.timedelta(days=5)
    build_outbox(settings, commune, later, [keep])
    [d] = push(settings, [ep], later)
    assert d.status == "delivered"
    root = tmp_path / "y-ty-loa"
    assert not (root / f"programs/{DAY}").exists()
    assert (root / f"programs/{later}/manifest.json").exists()
    assert sorted(p.name[:4] for p in (root / "media").iterdir()) == ["keep"]


def test_single_file_endpoint_gets_one_mp3_per_slot(project: Project, tmp_path: Path) -> None:
    from tests import audio_fixtures as fx

    settings = project.settings
    radio = dataclasses.replace(local(tmp_path, "y-ty-radio"), format="single")
    speaker = local(tmp_path, "y-ty-loa")
    commune = commune_with(speaker, radio)
    segs = []
    for i in range(2):
        path = fx.sine(tmp_path / f"s{i}.mp3", seconds=1.0, channels=1, rate=44100)
        segs.append(dataclasses.replace(make_segment(tmp_path, f"k{i}", 1), path=path, bytes=path.stat().st_size))
    build_outbox(settings, commune, DAY, segs)
    results = {d.endpoint: d for d in push(settings, [speaker, radio])}
    assert all(d.status == "delivered" for d in results.values())
    radio_files = sorted(
        str(p.relative_to(tmp_path / "y-ty-radio")) for p in (tmp_path / "y-ty-radio").rglob("*") if p.is_file()
    )
    assert radio_files == [
        f"programs/{DAY}/manifest.json",
        f"programs/{DAY}/manifest.json.sig",
        f"programs/{DAY}/morning.mp3",
    ]
    assert (tmp_path / "y-ty-loa/media").is_dir() and not (tmp_path / f"y-ty-loa/programs/{DAY}/morning.mp3").exists()


@pytest.mark.sshd
def test_sftp_cut_mid_file_is_retried_and_a_rerun_sends_nothing_again(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    settings = project.settings
    remote = tmp_path / "remote"
    remote.mkdir()
    with TcpProxy(sshd_running.host, sshd_running.port) as proxy:
        ep = dataclasses.replace(sshd_running.endpoint(remote, port=proxy.port), commune="02641", name="y-ty-1")
        commune = commune_with(ep)
        segs = [make_segment(tmp_path, f"m{i}", 400 * KIB) for i in range(4)]
        build_outbox(settings, commune, DAY, segs)
        proxy.cut_after = 900 * KIB  # the first connection dies in the third file
        [d] = push(settings, [ep])
        assert d.status == "delivered" and d.attempts >= 2, d.error
        assert proxy.connections >= 2
        for f in json.loads((remote / f"programs/{DAY}/manifest.json").read_text())["files"]:
            assert (remote / f["path"]).stat().st_size == f["bytes"]
        assert not [p for p in remote.rglob("*") if ".part-" in p.name]
        assert (
            d.files_sent == 7
        )  # each file once (4 media, playlist, signature, manifest): what arrived before the cut was not sent again
        proxy.cut_after = None
        [again] = push(settings, [ep])
        assert again.status == "delivered" and again.bytes_sent == 0


@pytest.mark.sshd
def test_permanent_failure_of_one_endpoint_does_not_stop_the_others(
    project: Project,
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    settings = project.settings
    remote = tmp_path / "remote"
    remote.mkdir()
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    bad = dataclasses.replace(sshd_running.endpoint(remote, host_key=other_key), commune="02641", name="bad-key")
    good = dataclasses.replace(sshd_running.endpoint(remote / "ok"), commune="02641", name="good")
    (remote / "ok").mkdir()
    down = dataclasses.replace(good, name="down", port=1)  # nothing listens: refused, transient
    build_outbox(settings, commune_with(bad, good, down), DAY, [make_segment(tmp_path, "x", KIB)])
    results = {d.endpoint: d for d in push(settings, [bad, good, down])}
    assert results["good"].status == "delivered"
    assert results["bad-key"].status == "failed" and results["bad-key"].attempts == 1
    assert "SHA256:" in (results["bad-key"].error or "")
    assert results["down"].status == "failed" and results["down"].attempts == settings.deliver.retries + 1
    assert not (remote / "programs").exists()


def test_a_whole_endpoint_is_not_listed_again_unless_told_to_check(project: Project, tmp_path: Path) -> None:
    settings = project.settings
    ep = local(tmp_path, "y-ty-loa")
    commune = commune_with(ep)
    build_outbox(settings, commune, DAY, [make_segment(tmp_path, f"w{i}", 4 * KIB) for i in range(2)])
    [first] = push(settings, [ep])
    assert first.status == "delivered" and first.files_sent == 5
    media = sorted((tmp_path / "y-ty-loa" / "media").iterdir())
    media[0].unlink()  # removed on the device behind Loa's back
    [warm] = push(settings, [ep])  # its signed manifest matches: trusted whole, nothing listed or sent
    assert (warm.files_sent, warm.files_skipped) == (0, 5) and not media[0].exists()
    careful = settings.model_copy(
        update={"deliver": settings.deliver.model_copy(update={"trust_remote_manifest": False})}
    )
    [checked] = push(careful, [ep])
    assert checked.files_sent == 1 and media[0].is_file()
