"""The commune's player, piece by piece: what is due when, the folder an SFTP push fills,
enrollment from the command line (refusals in Vietnamese, TLS), systemd's watchdog, and
that it never imports the server."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from loa_device import schedule
from loa_device.clock import FileClock
from loa_protocol import manifest as mf
from loa_protocol import receipts as rc

from pipeline import devices
from pipeline.broadcast.collect_receipts import collect_from_endpoints
from pipeline.broadcast.receipts import endpoint_key, load_receipt_secret
from pipeline.package import manifest_path
from pipeline.signing import load_key, public_key
from pipeline.store import receipts as receipt_store
from tests import audio_fixtures as fx
from tests.device_support import (
    AGENT_PYTHON,
    COMMUNE,
    ENDPOINT,
    TIMED_PLAYER,
    AgentProc,
    Outbox,
    Slot,
    agent_env,
    device_project,
    wait_for,
)
from tests.web_support import Web, serve_project

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = dt.datetime(2026, 12, 8, 5, 0, tzinfo=TZ)


# --- what is due ----------------------------------------------------------------------


def _emergency(replay: tuple[dt.datetime, ...], *, expires: dt.datetime, cancelled: bool = False) -> mf.Manifest:
    item = mf.Item("c", "speech", "vi", 1000, "0" * 64, 10, mf.Source("tts"), file="media/x.mp3")
    program = mf.ProgramEntry("02641/emergency/7", "emergency", "emergency", T0, "emergency", T0.date(), 1000, (item,))
    return mf.Manifest(
        endpoint=ENDPOINT, format="playlist", commune=COMMUNE, commune_name="Y Tý", folder="emergency/7",
        timezone="Asia/Ho_Chi_Minh", valid_until=expires, programs=(program,), files=(),
        emergency=mf.Emergency(7, "Lũ", expires, replay=replay, cancelled=cancelled),
    )  # fmt: skip


GRACE = {"late_grace": dt.timedelta(minutes=10), "replay_grace": dt.timedelta(minutes=15)}


def test_an_emergency_plays_once_then_at_its_latest_replay_time_and_never_after_cancel_or_expiry() -> None:
    h = dt.timedelta(hours=1)
    m = _emergency((T0 + h, T0 + 2 * h), expires=T0 + 3 * h)
    [first] = schedule.due([m], T0, set(), **GRACE)
    assert first.keys == ("em:7:first",)
    assert schedule.due([m], T0 + dt.timedelta(minutes=5), {"em:7:first"}, **GRACE) == []
    assert schedule.next_time([m], T0 + dt.timedelta(minutes=5), {"em:7:first"}) == T0 + h
    [replay] = schedule.due([m], T0 + h, {"em:7:first"}, **GRACE)
    assert replay.note == f"replay {(T0 + h).isoformat()}" and replay.keys == ("em:7:20261207T230000Z",)
    # off during the first replay and back at the second: one showing, the latest
    [late] = schedule.due([m], T0 + 2 * h + dt.timedelta(minutes=1), {"em:7:first"}, **GRACE)
    assert late.keys == ("em:7:20261208T000000Z",)
    assert schedule.due([_emergency((T0 + h,), expires=T0 + h)], T0 + h, {"em:7:first"}, **GRACE) == []
    assert schedule.due([_emergency((T0 + h,), expires=T0 + 3 * h, cancelled=True)], T0 + h, set(), **GRACE) == []


def test_emergencies_come_before_programs_and_a_missed_slot_plays_late_within_the_grace() -> None:
    outbox_item = mf.Item("p", "speech", "vi", 1000, "1" * 64, 10, mf.Source("tts"), file="media/p.mp3")
    slot = T0 + dt.timedelta(minutes=30)
    program = mf.ProgramEntry("02641/2026-12-08/morning", "program", "morning", slot, "routine", slot.date(), 1000,
                              (outbox_item,))  # fmt: skip
    day = mf.Manifest(ENDPOINT, "playlist", COMMUNE, "Y Tý", "programs/2026-12-08", "Asia/Ho_Chi_Minh",
                      T0 + dt.timedelta(days=1), (program,), (), date=slot.date())  # fmt: skip
    em = _emergency((), expires=T0 + dt.timedelta(hours=3))
    events = schedule.due([day, em], slot + dt.timedelta(seconds=30), set(), **GRACE)
    assert [e.priority for e in events] == [schedule.EMERGENCY, schedule.PROGRAM]
    assert events[1].note == "late by 30 s"
    assert schedule.due([day], slot + dt.timedelta(minutes=11), set(), **GRACE) == []
    assert schedule.due([day], slot - dt.timedelta(seconds=1), set(), **GRACE) == []


# --- the folder an SFTP push fills --------------------------------------------------------


def _config(path: Path, project_key: str, receipt_key: bytes, **extra: object) -> None:
    doc = {
        "server": "",
        "endpoint": ENDPOINT,
        "commune": COMMUNE,
        "token": "",
        "public_key_pem": project_key,
        "receipt_key_hex": receipt_key.hex(),
        **extra,
    }
    path.write_text(json.dumps(doc))


def _push(outbox: Outbox, folder: str, dest: Path, *, sig: bool = True, endpoint: str = ENDPOINT) -> None:
    """What ``loa push`` leaves on an endpoint: media first, the signature, the manifest last."""
    src = manifest_path(outbox.project.settings.outbox_dir, COMMUNE, folder, endpoint)
    manifest = mf.read(src)
    for f in manifest.files:
        (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(outbox.root / f.path, dest / f.path)
    (dest / folder).mkdir(parents=True, exist_ok=True)
    if sig:
        shutil.copyfile(src.with_name(src.name + ".sig"), dest / folder / mf.SIG_FILE)
    shutil.copyfile(src, dest / folder / mf.FILE)


@pytest.mark.audio
@pytest.mark.slow
def test_folder_mode_plays_what_a_push_left_refuses_what_is_not_its_own_and_leaves_receipts(tmp_path: Path) -> None:
    project = device_project(tmp_path / "p")
    outbox = Outbox(project)
    settings, deployment = project.settings, project.deployment
    endpoint = deployment.endpoint(ENDPOINT)
    assert endpoint is not None and endpoint.path is not None
    pushed = endpoint.path if endpoint.path.is_absolute() else project.root / endpoint.path
    pushed.mkdir(parents=True)
    tone = fx.mp3_bytes(1.0)
    other = fx.mp3_bytes(1.5)
    day = T0.date()
    outbox.day(day, [Slot("morning", T0 + dt.timedelta(minutes=30), tone, 1000)])
    _push(outbox, f"programs/{day}", pushed)
    pub = public_key(load_key(settings.signing_key_file).public_key())
    secret = load_receipt_secret(settings.data_dir)
    clock = FileClock(tmp_path / "clock.json")
    clock.set(T0)
    config = tmp_path / "device.json"
    _config(config, pub.pem, endpoint_key(secret, ENDPOINT), mode="folder", folder=str(pushed),
            state_dir=str(tmp_path / "state"), player=TIMED_PLAYER, scan_interval_s=0.5)  # fmt: skip
    agent = AgentProc(config, tmp_path / "clock.json", tmp_path / "agent.log")
    agent.start()
    try:
        wait_for("the pushed day", lambda: (tmp_path / "state" / "manifests" / f"programs_{day}.json").exists())
        # the next day: unsigned; then another endpoint's manifest; then tampered
        d2, d3, d4 = (day + dt.timedelta(days=n) for n in (1, 2, 3))
        outbox.day(d2, [Slot("morning", T0 + dt.timedelta(days=1, minutes=30), other, 1500)])
        _push(outbox, f"programs/{d2}", pushed, sig=False)
        radio = Outbox(project, endpoint="y-ty-radio")
        radio.day(d3, [Slot("morning", T0 + dt.timedelta(days=2, minutes=30), other, 1500)])
        _push(radio, f"programs/{d3}", pushed, endpoint="y-ty-radio")
        outbox.day(d4, [Slot("morning", T0 + dt.timedelta(days=3, minutes=30), other, 1500)])
        _push(outbox, f"programs/{d4}", pushed)
        raw = (pushed / f"programs/{d4}" / mf.FILE).read_bytes()
        (pushed / f"programs/{d4}" / mf.FILE).write_bytes(raw.replace(b"T05:30:00", b"T05:31:00"))
        log = tmp_path / "agent.log"
        wait_for("three refusals", lambda: all(
            s in log.read_text() for s in (f"programs/{d2}: the manifest is unsigned", "is for y-ty-radio",
                                           f"programs/{d4}: the signature does not match")))  # fmt: skip
        slot = T0 + dt.timedelta(minutes=30)
        clock.set(slot - dt.timedelta(seconds=3))
        left = wait_for("a receipt in reports/", lambda: list((pushed / "reports").glob("*.json")))
        receipt = rc.parse(left[0].read_bytes())
        assert receipt.source == "sftp" and receipt.completed
        assert 0 <= (receipt.items[0].start - slot).total_seconds() <= 2  # type: ignore[operator]
        for n in (1, 2, 3):  # nothing refused ever plays
            clock.set(slot + dt.timedelta(days=n, seconds=-3))
            time.sleep(4)
        assert len(list((pushed / "reports").glob("*.json"))) == 1
    finally:
        agent.stop()
    db = project.db()
    try:
        [report] = collect_from_endpoints([endpoint], db=db, secret=secret, tz=settings.tz, settings=settings.deliver)
        assert report.collected == [receipt.id] and not report.refused, report
        assert receipt_store.count_receipts(db) == 1
    finally:
        db.close()


# --- enrollment from the command line ------------------------------------------------------


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with serve_project(device_project(tmp_path / "p")) as web:
        yield web


def enroll_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT_PYTHON, "-m", "loa_device", *args], capture_output=True, text=True, env=agent_env(), timeout=120,
        check=False,
    )  # fmt: skip


def test_enroll_in_one_command_and_refusals_in_vietnamese(web: Web, tmp_path: Path) -> None:
    code = devices.issue_enrollment_code(web.db, web.project.deployment, ENDPOINT, by="test")
    cfg = tmp_path / "etc" / "config.json"
    state = str(tmp_path / "state")
    wrong = enroll_cli("--config", str(cfg), "enroll", "--server", web.url, "--code", "AAAA-BBBB-CCCC", "--allow-http")
    assert wrong.returncode == 2 and "Mã đăng ký không đúng" in wrong.stderr and not cfg.exists()
    plain = enroll_cli("--config", str(cfg), "enroll", "--server", web.url, "--code", code)
    assert plain.returncode == 2 and "must be https://" in plain.stderr
    far = enroll_cli("--config", str(cfg), "enroll", "--server", "http://192.0.2.10", "--code", code, "--allow-http")
    assert far.returncode == 2 and "only for a server on this machine" in far.stderr
    ok = enroll_cli("--config", str(cfg), "enroll", "--server", web.url, "--code", code, "--allow-http",
                    "--state-dir", state)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert cfg.stat().st_mode & 0o777 == 0o600
    doc = json.loads(cfg.read_text())
    assert doc["endpoint"] == ENDPOINT and doc["allow_http"] is True and doc["token"]
    again = enroll_cli("--config", str(tmp_path / "other.json"), "enroll", "--server", web.url, "--code", code,
                       "--allow-http")  # fmt: skip
    assert again.returncode == 2 and "đã được dùng" in again.stderr
    status = enroll_cli("--config", str(cfg), "status")
    assert status.returncode == 0 and json.loads(status.stdout)["endpoint"] == ENDPOINT


def test_enroll_over_tls_trusts_the_deployments_own_ca_and_nothing_else(tmp_path: Path) -> None:
    from pipeline.web.app import create_app
    from tests.device_support import ServerCtl
    from tests.test_statistics import _tls_files
    from tests.web_support import free_port

    project = device_project(tmp_path / "p")
    (tmp_path / "tls").mkdir()
    ca, cert, key = _tls_files(tmp_path / "tls")
    db = project.db()
    server = ServerCtl(create_app(project.settings, deployment=project.deployment, db=db), free_port(), tls=(cert, key))
    server.start()
    try:
        code = devices.issue_enrollment_code(db, project.deployment, ENDPOINT, by="test")
        cfg = tmp_path / "config.json"
        untrusted = enroll_cli("--config", str(cfg), "enroll", "--server", server.url, "--code", code)
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr and not cfg.exists()
        ok = enroll_cli("--config", str(cfg), "enroll", "--server", server.url, "--code", code, "--ca-file", str(ca),
                        "--state-dir", str(tmp_path / "state"))  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        doc = json.loads(cfg.read_text())
        assert doc["server"].startswith("https://") and doc["ca_file"] == str(ca) and doc["allow_http"] is False
    finally:
        server.stop()
        db.close()


# --- systemd -----------------------------------------------------------------------------------


def test_the_agent_tells_systemd_it_is_ready_and_pings_the_watchdog(tmp_path: Path) -> None:
    project = device_project(tmp_path / "p")
    pub = public_key(load_key(project.settings.signing_key_file, create=True).public_key())
    (tmp_path / "push").mkdir()
    config = tmp_path / "device.json"
    _config(config, pub.pem, b"k" * 32, mode="folder", folder=str(tmp_path / "push"), state_dir=str(tmp_path / "s"))
    FileClock(tmp_path / "clock.json").set(T0)
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(30)
        agent = AgentProc(config, tmp_path / "clock.json", tmp_path / "agent.log",
                          env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1500000"})  # fmt: skip
        agent.start()
        try:
            got = [sock.recv(1024).decode() for _ in range(3)]
        finally:
            agent.stop()
    assert got[0] == "READY=1" and got[1:] == ["WATCHDOG=1", "WATCHDOG=1"]


# --- the agent never imports the server ----------------------------------------------------------


def test_importing_the_agent_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, loa_device.cli, loa_device.sync, loa_device.agent, loa_protocol.client; "
        "bad = sorted(m for m in sys.modules if m == 'pipeline' or m.startswith('pipeline.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = agent_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(Path(__file__).resolve().parents[1])])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_heartbeat_is_what_its_schema_says(tmp_path: Path) -> None:
    import jsonschema
    from loa_device import config as cfg
    from loa_device.agent import Agent

    project = device_project(tmp_path / "p")
    pub = public_key(load_key(project.settings.signing_key_file, create=True).public_key())
    path = tmp_path / "device.json"
    _config(path, pub.pem, b"k" * 32, state_dir=str(tmp_path / "s"), server="https://loa.example.vn", token="t")
    agent = Agent(cfg.load(path), clock=FileClock(tmp_path / "clock.json"))
    agent.note_refused("programs/2026-12-09: the manifest is unsigned; refused")
    agent.state.update(last_program="02641/2026-12-08/morning", last_played_at=T0.isoformat())
    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "heartbeat-1.schema.json").read_text())
    doc = agent.heartbeat_doc()
    jsonschema.validate(doc, schema)
    assert doc["refused"] and doc["pending_receipts"] == 0 and doc["free_bytes"] > 0


# --- power cuts: what is left on the card ------------------------------------------------------


def test_a_journal_line_cut_by_a_power_cut_is_skipped_and_the_next_starts_clean(tmp_path: Path) -> None:
    from loa_device.journal import Journal

    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append({"op": "start", "keys": ["prog:a"], "receipt": "r1", "at": T0.isoformat()})
    with path.open("ab") as f:
        f.write(b'{"op":"end","rece')  # the power went here
    j2 = Journal(path)
    assert j2.played == {"prog:a"} and [r["receipt"] for r in j2.unfinished()] == ["r1"]
    j2.append({"op": "end", "receipt": "r1"})
    assert Journal(path).unfinished() == [] and path.read_bytes().count(b"\n") == 3


def test_a_local_copy_changed_on_the_card_is_refused_and_a_refused_manifest_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    import base64

    from loa_device.library import Library
    from loa_protocol.errors import ManifestError

    project = device_project(tmp_path / "p")
    outbox = Outbox(project)
    m = outbox.day(T0.date(), [Slot("morning", T0 + dt.timedelta(minutes=30), b"ID3 not really audio", 1000)])
    src = manifest_path(project.settings.outbox_dir, COMMUNE, m.folder, ENDPOINT)
    raw, sig = src.read_bytes(), src.with_name(src.name + ".sig").read_bytes()
    pub = public_key(load_key(project.settings.signing_key_file).public_key())
    lib = Library(tmp_path / "state", key=pub, endpoint=ENDPOINT)
    lib.accept(m.folder, raw, sig, now=T0)
    with pytest.raises(ManifestError, match="signature does not match"):
        lib.accept(m.folder, raw.replace(b"05:30", b"05:31"), sig, now=T0)
    with pytest.raises(ManifestError, match="unsigned"):
        lib.accept(m.folder, raw, None, now=T0)
    with pytest.raises(ManifestError, match="expired"):
        lib.accept(m.folder, raw, sig, now=T0 + dt.timedelta(days=3))
    assert Library(tmp_path / "state", key=pub, endpoint=ENDPOINT).raw_of(m.folder) == raw  # the last good one
    copy = next((tmp_path / "state" / "manifests").glob("*.json"))
    doc = json.loads(copy.read_text())
    doc["manifest"] = base64.b64encode(raw.replace(b"05:30", b"04:30")).decode()
    copy.write_text(json.dumps(doc))
    assert Library(tmp_path / "state", key=pub, endpoint=ENDPOINT).all() == {}  # changed on the card: not played
    other = Library(tmp_path / "other", key=pub, endpoint="y-ty-radio")
    with pytest.raises(ManifestError, match="is for y-ty-loa"):
        other.accept(m.folder, raw, sig, now=T0)
