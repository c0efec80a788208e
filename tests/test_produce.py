"""The orchestrator: one chain for nightly, dispatch and preview; units that travel; runs that end."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import manifest as mf
from pipeline.cli import main
from pipeline.models import Program, Segment, Source
from pipeline.produce import Producer, by_message
from pipeline.runner import InProcessRunner, WorkContext
from pipeline.store.runs import recent_runs
from pipeline.units import DeliverUnit, PackageUnit, RenderUnit, UnitResult, from_wire, to_wire
from tests.conftest import REPO, Project, add_bulletin, make_small

pytestmark = [pytest.mark.audio, pytest.mark.slow]
LOA = str(REPO / ".venv" / "bin" / "loa")


def outbox_files(project: Project) -> dict[str, str]:
    root = project.settings.outbox_dir
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".state" not in p.parts
    }


def valid_through(project: Project, bid: int, first: dt.date, last: dt.date) -> None:
    db = project.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bid).values(valid_from=first, valid_until=last))
    db.close()


def test_a_serial_and_a_threaded_runner_make_byte_identical_outboxes(
    tmp_path: Path, voices_with_placeholders: Path
) -> None:
    projects = [make_small(tmp_path / name, voices_with_placeholders) for name in ("serial", "threads")]
    day = dt.datetime.now(projects[0].settings.tz).date() + dt.timedelta(days=1)
    for p in projects:
        bid = add_bulletin(p, "Thôn Tả Phìn họp lúc 7h30 về gia hạn thẻ bảo hiểm y tế năm 2027.")
        valid_through(p, bid, day, day)
    assert main(["--config", str(projects[0].config), "keys", "init"]) == 0
    key = projects[1].settings.signing_key_file
    key.parent.mkdir(parents=True)
    shutil.copy(projects[0].settings.signing_key_file, key)  # one deployment key: signatures must match too
    for project, workers in zip(projects, (1, 4), strict=True):
        db = project.db()
        runner = InProcessRunner(WorkContext(project.settings), workers=workers)
        producer = Producer(settings=project.settings, deployment=project.deployment, db=db, runner=runner)
        _, report, _, status = producer.run_day(day, kind="nightly")
        assert status == "done" and report is not None and report.programs, report
        db.close()
    serial, threaded = (outbox_files(p) for p in projects)
    assert serial == threaded
    assert any(k.endswith("manifest-ed25519.pem") for k in serial) is False  # the key never enters the outbox
    assert sum(k.endswith(".json.sig") for k in serial) == 3  # one signed manifest per endpoint


def test_nightly_dispatch_and_preview_share_one_chain(small: Project) -> None:
    today = dt.datetime.now(small.settings.tz).date()
    day = today + dt.timedelta(days=1)
    body = "Mưa lớn, nguy cơ lũ quét tại các thôn ven suối. Bà con không qua ngầm tràn."
    eid = add_bulletin(small, body, priority="emergency", targets='["02695"]', title="Cảnh báo lũ quét")
    valid_through(small, eid, today, day)
    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:  # replayed every hour until it expires
        conn.execute(t.update().where(t.c.id == eid).values(replay_every_minutes=60))
    producer = Producer(settings=small.settings, deployment=small.deployment, db=db)
    _, report, _, status = producer.run_day(day, kind="nightly")
    assert status == "done", report
    commune = small.deployment.commune("02695")
    assert commune is not None
    # the preview of a slot asks for exactly the units the nightly rendered for it, in order
    _, script = producer.preview_script(day, commune, "morning")
    assert script is not None
    units, errors = producer._units(script, {})
    assert errors == []
    folder = f"programs/{day.isoformat()}"
    nightly = mf.read(small.settings.outbox_dir / "02695" / folder / "manifests" / "ban-lau-loa.json")
    [morning] = [p for p in nightly.programs if p.slot == "morning"]
    assert [f"media/{u.key}.mp3" for u in units] == [i.file for i in morning.items]
    preview = producer.preview_audio(script)
    assert preview.is_file() and preview.stat().st_size > 0
    # the emergency dispatch reuses the very segments of the bulletin's text
    dispatched = producer.dispatch(eid)
    assert dispatched.ok, dispatched.failures
    emergency = mf.read(small.settings.outbox_dir / "02695" / f"emergency/{eid}" / "manifests" / "ban-lau-loa.json")
    assert emergency.emergency is not None and emergency.emergency.bulletin == eid
    replay = emergency.emergency.replay  # in the signed manifest: an offline device keeps replaying
    assert replay and all(b - a == dt.timedelta(minutes=60) for a, b in itertools.pairwise(replay))
    assert replay[-1] < emergency.emergency.expires
    spoken = {i.file: i.sha256 for p in nightly.programs for i in p.items if i.bulletin_id == eid}
    again = {i.file: i.sha256 for p in emergency.programs for i in p.items if i.bulletin_id == eid}
    shared = set(spoken) & set(again)
    assert shared and all(spoken[f] == again[f] for f in shared)
    for f in shared:  # one file in the store, byte for byte what both manifests say
        assert hashlib.sha256((small.settings.outbox_dir / "02695" / str(f)).read_bytes()).hexdigest() == spoken[f]
    kinds = [(r.kind, r.status) for r in recent_runs(db)]
    assert kinds[:2] == [("dispatch", "done"), ("nightly", "done")]
    db.close()


def test_units_and_results_cross_the_wire_unchanged(small: Project) -> None:
    commune = small.deployment.communes[0]
    tz = small.settings.tz
    seg = Segment(
        "a" * 64,
        Path("/data/cache/segments/aa/x.mp3"),
        1200,
        "recording",
        "hmn",
        "Bản tin 3 — Tiếng Mông",
        4096,
        "b" * 64,
        bulletin_id=3,
        engine=None,
        loudness_lufs=-16.1,
        source=Source("recording", recording=9, language="hmn"),
    )
    start = dt.datetime(2026, 12, 2, 5, 30, tzinfo=tz)
    program = Program(
        "02641/2026-12-02/morning", "02641", start.date(), "morning", start, "routine", start.date(), (seg,)
    )
    units = [
        RenderUnit(
            "k" * 64, "speech", "vi", "Kính thưa", "x line 2", text="kính thưa", origin=Source("tts", voice="espeak vi")
        ),
        PackageUnit(commune, "programs/2026-12-02", (program,), "Asia/Ho_Chi_Minh", start, date=start.date()),
        DeliverUnit(commune.endpoints[0], ("programs/2026-12-02",), "2026-12-02", start.date()),
    ]
    for unit in units:
        wire = json.loads(json.dumps(to_wire(unit)))
        assert from_wire(type(unit), wire) == unit
    result = UnitResult("k", "render", "x", True, segment=seg)
    assert from_wire(UnitResult, json.loads(json.dumps(to_wire(result)))) == result


def test_a_dispatch_killed_midway_is_marked_failed_by_the_next_status(small: Project) -> None:
    today = dt.datetime.now(small.settings.tz).date()
    body = " ".join(f"Thông báo số {n}: nước sông Hồng dâng cao, bà con di chuyển đến nơi an toàn." for n in range(30))
    eid = add_bulletin(small, body, priority="emergency", targets='["all"]', title="Nước lên")
    valid_through(small, eid, today, today)
    proc = subprocess.Popen(
        [LOA, "--config", str(small.config), "dispatch", str(eid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    db = small.db()
    deadline = time.monotonic() + 120
    try:
        while not [r for r in recent_runs(db) if r.kind == "dispatch" and r.status == "running"]:
            assert proc.poll() is None, "the dispatch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    [run] = [r for r in recent_runs(db) if r.kind == "dispatch"]
    assert run.status == "running" and run.pid == proc.pid  # the dead process could not say so itself
    out = subprocess.run(
        [LOA, "--config", str(small.config), "status", "--date", today.isoformat(), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    [reported] = [r for r in json.loads(out.stdout)["runs"] if r["id"] == run.id]
    assert reported["status"] == "failed"
    assert f"pid {proc.pid}" in reported["failures"][0]["error"]
    rerun = subprocess.run([LOA, "--config", str(small.config), "dispatch", str(eid)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr  # and a re-run finishes the job
    db.close()


def test_a_run_whose_host_stopped_beating_is_marked_failed_by_another_host(small: Project) -> None:
    """The run's machine is gone for good: `loa status` on any other host marks its run failed."""
    import sqlalchemy as sa

    from pipeline.store.runs import reap_stale_runs

    with small.config.open("a", encoding="utf-8") as f:
        f.write("\n[runner]\nheartbeat_s = 0.5\nheartbeat_timeout_s = 3\n")
    today = dt.datetime.now(small.settings.tz).date()
    body = " ".join(f"Thông báo số {n}: nước sông Hồng dâng cao, bà con di chuyển đến nơi an toàn." for n in range(30))
    eid = add_bulletin(small, body, priority="emergency", targets='["all"]', title="Nước lên")
    valid_through(small, eid, today, today)
    proc = subprocess.Popen(
        [LOA, "--config", str(small.config), "dispatch", str(eid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    db = small.db()
    t = db.table("runs")
    deadline = time.monotonic() + 120
    try:
        while True:  # running, and it has beaten at least once since it started
            runs = [r for r in recent_runs(db) if r.kind == "dispatch" and r.status == "running"]
            beat, started = (runs[0].heartbeat_at, runs[0].started_at) if runs else (None, None)
            if beat is not None and started is not None and beat > started:
                break
            assert proc.poll() is None, "the dispatch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    [run] = [r for r in recent_runs(db) if r.kind == "dispatch"]
    with db.begin() as conn:  # as if it had run on a machine that is now dead: no pid to look at here
        conn.execute(sa.update(t).where(t.c.id == run.id).values(host="may-chu-2", pid=4242))
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            [LOA, "--config", str(small.config), "status", "--date", today.isoformat(), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        [reported] = [r for r in json.loads(out.stdout)["runs"] if r["id"] == run.id]
        if reported["status"] != "running":
            break
        assert time.monotonic() < deadline, "the run of the dead host was never marked failed"
        time.sleep(0.5)
    assert reported["status"] == "failed"
    error = reported["failures"][0]["error"]
    assert "may-chu-2" in error and "heartbeat" in error and "run it again" in error
    # a run of another host that still beats is left alone
    with db.begin() as conn:
        alive = conn.execute(
            t.insert().values(
                kind="nightly",
                date=today,
                status="running",
                started_at=dt.datetime.now(dt.UTC),
                counts={},
                failures=[],
                host="may-chu-3",
                pid=1,
                heartbeat_at=dt.datetime.now(dt.UTC),
            )
        ).inserted_primary_key[0]
    assert alive not in reap_stale_runs(db, heartbeat_timeout_s=30)
    assert [r.status for r in recent_runs(db) if r.id == alive] == ["running"]
    db.close()


def test_a_delivered_program_makes_one_aired_event_for_the_webhooks(small: Project) -> None:
    from pipeline.store import webhooks as webhook_store

    with small.config.open("a", encoding="utf-8") as f:
        f.write('\n[[webhook]]\nurl = "http://127.0.0.1:9/loa"\nsecret_env = "LOA_TEST_HOOK"\n')
    day = dt.datetime.now(small.settings.tz).date() + dt.timedelta(days=1)
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 về gia hạn thẻ bảo hiểm y tế.")
    valid_through(small, bid, day, day)
    db = small.db()
    producer = Producer(settings=small.settings, deployment=small.deployment, db=db)
    for _ in range(2):  # a re-push records nothing new
        _, report, deliveries, _status = producer.run_day(day, kind="nightly")
    aired = webhook_store.list_events(db, kind="program.aired")
    assert report is not None and deliveries
    assert sorted(e.payload["program"]["id"] for e in aired) == sorted(p.id for p in report.programs)
    assert all([b["id"] for b in e.payload["bulletins"]] == [bid] for e in aired)
    db.close()


def test_a_cancelled_emergency_gets_a_signed_cancel_and_devices_stop_replaying(small: Project) -> None:
    from pipeline.dispatch import pending_cancellations
    from pipeline.signing import load_key, public_key
    from pipeline.store import bulletins as bulletin_store

    today = dt.datetime.now(small.settings.tz).date()
    eid = add_bulletin(small, "Lũ quét, bà con tránh xa suối.", priority="emergency", targets='["02695"]', title="Lũ")
    valid_through(small, eid, today, today + dt.timedelta(days=1))
    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == eid).values(replay_every_minutes=60))
    producer = Producer(settings=small.settings, deployment=small.deployment, db=db)
    assert producer.dispatch(eid).ok
    device = small.root / "endpoints" / "ban-lau-loa"
    before = mf.read(device / f"emergency/{eid}" / "manifest.json")
    assert before.emergency is not None and before.emergency.replay and before.programs
    assert pending_cancellations(db, settings=small.settings, deployment=small.deployment) == []
    bulletin_store.end(db, eid, "cancelled")  # a CAP Cancel
    assert pending_cancellations(db, settings=small.settings, deployment=small.deployment) == [eid]
    report = producer.cancel(eid)
    assert report.ok and [d.endpoint for d in report.deliveries] == ["ban-lau-loa"]
    key = public_key(load_key(small.settings.signing_key_file).public_key())
    after = mf.verify_folder(device, f"emergency/{eid}", public_key=key, now=dt.datetime.now(dt.UTC))
    assert after.emergency is not None and after.emergency.cancelled
    assert after.programs == () and after.emergency.replay == () and after.files == ()
    assert pending_cancellations(db, settings=small.settings, deployment=small.deployment) == []
    db.close()


def test_a_message_repeated_in_many_programs_is_reported_once_with_its_count() -> None:
    pairs = [(f"{code}/2026-12-01/morning", "bulletin 3 (Họp thôn): no hmn recording") for code in range(2600, 2605)]
    pairs.append(("02641/2026-12-01/evening", "bulletin 4 (Tiêm chủng): no ium recording"))
    assert by_message(pairs) == (
        "bulletin 3 (Họp thôn): no hmn recording — 5 programs: 2600/2026-12-01/morning, "
        "2601/2026-12-01/morning, 2602/2026-12-01/morning and 2 more",
        "bulletin 4 (Tiêm chủng): no ium recording — 1 program: 02641/2026-12-01/evening",
    )


def test_a_program_in_quiet_hours_is_not_composed_nor_built(small: Project) -> None:
    """The quiet-hours rule is tested in test_guard.py; this holds its use by the orchestrator."""
    schedules = small.root / "schedules" / "small.toml"
    schedules.write_text(schedules.read_text(encoding="utf-8") + '\n[policy]\nquiet_hours = ["05:00", "06:00"]\n')
    add_bulletin(small, "Họp thôn bàn việc làm đường liên thôn vào sáng chủ nhật.", targets='["02695"]')
    day = dt.date(2026, 12, 2)  # a Wednesday: morning 05:30 (in quiet hours) and evening 17:00
    db = small.db()
    producer = Producer(settings=small.settings, deployment=small.deployment, db=db)
    work = producer.compose_day(day, commune="02695")
    slots = sorted(c.name.rsplit("/", 1)[-1] for c in work.composed)
    assert slots == ["evening"]
    [failure] = [f for f in work.failures if f.what == "02695/2026-12-02/morning"]
    assert "quiet_hours" in failure.error
    db.close()
