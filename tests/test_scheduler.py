"""The scheduler: job store, triggers, misfire coalescing, retry window, emergency poll, SIGTERM.

Real SQLite files (the job store is the project's database), real local endpoints and the
real ``push_day`` / ``run_nightly``. The clock is controlled by passing ``now`` and by
choosing the configured nightly time relative to the real clock. The one stand-in is
``pipeline.dispatch.dispatch_bulletin`` in the emergency-poll test (rendering speech
there would cost more than this file's whole budget; ``tests/test_dispatch.py`` covers
it); ``pending_emergencies`` and the bulletin store are real.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent

from pipeline import scheduler as sched
from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.dispatch import DispatchReport
from pipeline.intake import parse_bulletin
from pipeline.models import Delivery, Deployment
from pipeline.nightly import push_day
from pipeline.store import Database, open_database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store
from tests.conftest import package_day

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = dt.date(2026, 12, 1)  # a Tuesday

DEPLOYMENT = """
timezone = "Asia/Ho_Chi_Minh"

[defaults]
slots = [{{ name = "morning", start = "05:30", max_minutes = 10, days = {days} }}]

[[commune]]
code = "02641"
name = "Y Tý"
languages = ["vi"]

  [[commune.endpoint]]
  name = "y-ty-loa"
  transport = "local"
  path = "endpoints/y-ty-loa"

  [[commune.endpoint]]
  name = "y-ty-usb"
  transport = "local"
  path = "endpoints/y-ty-usb"

[[commune]]
code = "02695"
name = "Bản Lầu"
languages = ["vi"]
slots = [
  {{ name = "noon", start = "11:00", max_minutes = 10, days = {days} }},
  {{ name = "evening", start = "17:00", max_minutes = 10, days = {days} }},
]

  [[commune.endpoint]]
  name = "ban-lau-loa"
  transport = "local"
  path = "endpoints/ban-lau-loa"
"""


def make_project(root: Path, *, nightly: str = "", days: tuple[str, ...] = WEEKDAYS) -> Path:
    """A loa.toml + schedules/ under ``root``; every slot runs on ``days``. Returns the config path."""
    (root / "schedules").mkdir(parents=True)
    listed = "[" + ", ".join(f'"{d}"' for d in days) + "]"
    (root / "schedules" / "test.toml").write_text(DEPLOYMENT.format(days=listed), encoding="utf-8")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\nvoices_dir = "{REPO / "voices"}"\n'
        f"[deliver]\nretries = 0\nbackoff_s = 0.01\n[nightly]\n{nightly}\n",
        encoding="utf-8",
    )
    return config


def loaded(config: Path) -> tuple[Settings, Deployment]:
    settings = load_settings(config, environ={})
    return settings, load_deployment(settings.schedules_dir, default_timezone=settings.timezone)


def local(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=TZ)


def failed(endpoint: str, commune: str) -> Delivery:
    return Delivery(endpoint=endpoint, commune=commune, program=DAY.isoformat(), status="failed", error="down")


def delivered(endpoint: str, commune: str) -> Delivery:
    return Delivery(endpoint=endpoint, commune=commune, program=DAY.isoformat(), status="delivered")


# --- pure rules -------------------------------------------------------------------------


def test_retry_window_closes_at_each_communes_first_slot(tmp_path: Path) -> None:
    _, deployment = loaded(make_project(tmp_path, days=("mon", "tue")))
    starts = sched.first_slot_starts(deployment, DAY, TZ)
    assert starts == {"02641": local(DAY, "05:30"), "02695": local(DAY, "11:00")}
    # Y Tý has no slot on a Wednesday: its window runs to the end of the day
    wed = DAY + dt.timedelta(days=1)
    assert sched.first_slot_starts(deployment, wed, TZ)["02641"] == local(wed + dt.timedelta(days=1), "00:00")

    latest = [
        failed("y-ty-usb", "02641"),
        delivered("y-ty-loa", "02641"),
        failed("ban-lau-loa", "02695"),
        failed("gone", "99999"),  # commune removed from the deployment: left alone
    ]
    last_chance = local(DAY, "05:30") - dt.timedelta(microseconds=1)
    assert sched.due_retries(latest, starts, local(DAY, "01:15")) == ["y-ty-usb", "ban-lau-loa"]
    assert sched.due_retries(latest, starts, last_chance) == ["y-ty-usb", "ban-lau-loa"]
    assert sched.due_retries(latest, starts, local(DAY, "05:30")) == ["ban-lau-loa"]
    assert sched.due_retries(latest, starts, local(DAY, "11:00")) == []
    assert [d.endpoint for d in sched.missed_deliveries(latest, starts, local(DAY, "05:30"))] == ["y-ty-usb"]
    assert [d.endpoint for d in sched.missed_deliveries(latest, starts, last_chance)] == []
    assert sched.due_retries([delivered("y-ty-loa", "02641")], starts, local(DAY, "01:00")) == []


def test_nightly_builds_tomorrow_and_catches_up_an_unbuilt_today(tmp_path: Path) -> None:
    _, deployment = loaded(make_project(tmp_path))
    tomorrow = DAY + dt.timedelta(days=1)
    assert sched.nightly_days(local(DAY, "01:00"), deployment, {DAY}) == [tomorrow]
    # the machine was off for days: today never built, its slots still ahead → today first
    assert sched.nightly_days(local(DAY, "09:00"), deployment, set()) == [DAY, tomorrow]
    # …but once every slot of today has begun, building today is pointless
    assert sched.nightly_days(local(DAY, "17:00"), deployment, set()) == [tomorrow]
    # the clock may come in UTC: the deployment's zone decides what "today" is
    utc = local(DAY, "06:00").astimezone(dt.UTC)
    assert utc.date() == DAY - dt.timedelta(days=1)
    assert sched.nightly_days(utc, deployment, set()) == [DAY, tomorrow]


# --- the job store and triggers -----------------------------------------------------------


def test_jobs_are_stored_as_references_with_plain_args(tmp_path: Path) -> None:
    config = make_project(tmp_path, nightly='time = "01:30"\nretry_every_minutes = 20')
    settings, deployment = loaded(config)
    now = local(DAY, "12:00")
    scheduler = sched.build_scheduler(settings, deployment=deployment, now=lambda: now)
    scheduler.shutdown(wait=False)

    # a second scheduler on the same SQLite file (as after a restart) sees the same jobs
    again = sched.build_scheduler(settings, deployment=deployment, now=lambda: now)
    try:
        jobs = {j.id: j for j in again.get_jobs()}
    finally:
        again.shutdown(wait=False)
    assert set(jobs) == {
        sched.NIGHTLY_ID,
        sched.RETRY_ID,
        sched.EMERGENCY_ID,
        sched.PURGE_ID,
        sched.WEBHOOKS_ID,
        sched.OPS_ID,
    }
    assert jobs[sched.OPS_ID].func_ref == "pipeline.scheduler.ops_jobs:ops_job"
    assert jobs[sched.WEBHOOKS_ID].func_ref == "pipeline.scheduler:webhooks_job"
    assert jobs[sched.PURGE_ID].func_ref == "pipeline.feedback.consultation:purge_job"
    assert jobs[sched.PURGE_ID].next_run_time == local(DAY + dt.timedelta(days=1), "03:00")
    nightly, retry, emergency = jobs[sched.NIGHTLY_ID], jobs[sched.RETRY_ID], jobs[sched.EMERGENCY_ID]
    assert nightly.func_ref == "pipeline.scheduler:nightly_job"
    assert retry.func_ref == "pipeline.scheduler:retry_job"
    assert emergency.func_ref == "pipeline.scheduler:emergency_job"
    assert all(j.args == (str(config.resolve()),) for j in jobs.values())
    assert nightly.next_run_time == local(DAY + dt.timedelta(days=1), "01:30")
    assert nightly.next_run_time.utcoffset() == dt.timedelta(hours=7)
    assert retry.next_run_time == now + dt.timedelta(minutes=20)
    assert emergency.next_run_time == now + dt.timedelta(seconds=sched.EMERGENCY_POLL_SECONDS)
    assert nightly.coalesce and nightly.misfire_grace_time == 20 * 3600
    assert retry.misfire_grace_time == 20 * 60
    assert emergency.executor == "emergency" and nightly.executor == retry.executor == "default"
    assert (tmp_path / "data" / "loa.db").is_file()
    assert nightly.trigger.get_next_fire_time(None, local(DAY, "01:29")) == local(DAY, "01:30")


def _nightly_runs(settings: Settings) -> list[dict[str, object]]:
    db = open_database(settings.db_url)
    try:
        return [r for r in run_store.recent_runs(db) if r.kind == "nightly"]
    finally:
        db.close()


def _off_for_three_nights(config: Path) -> tuple[Settings, Deployment, dt.datetime]:
    """Install the jobs as on a day three days ago; the machine then was 'off' until now."""
    settings, deployment = loaded(config)
    real_now = dt.datetime.now(TZ)
    first = sched.build_scheduler(settings, deployment=deployment, now=lambda: real_now - dt.timedelta(days=3))
    first.shutdown(wait=False)
    return settings, deployment, real_now


def test_nights_missed_while_off_run_once_on_start(tmp_path: Path) -> None:
    now = dt.datetime.now(TZ)
    tomorrow = now.date() + dt.timedelta(days=1)
    # no slot runs today or tomorrow, so the real run_nightly builds no audio (fast); its
    # pushes fail for want of a manifest, which is fine here
    quiet = tuple(d for d in WEEKDAYS if d not in (WEEKDAYS[now.weekday()], WEEKDAYS[tomorrow.weekday()]))
    config = make_project(tmp_path, nightly=f'time = "{(now - dt.timedelta(minutes=30)):%H:%M}"', days=quiet)
    settings, deployment, real_now = _off_for_three_nights(config)

    scheduler = sched.build_scheduler(settings, deployment=deployment)
    job = scheduler.get_job(sched.NIGHTLY_ID)
    assert job.next_run_time < real_now - dt.timedelta(days=2)  # three nights due
    ran = threading.Event()
    events: list[JobExecutionEvent] = []

    def on_executed(event: JobExecutionEvent) -> None:
        if event.job_id == sched.NIGHTLY_ID:
            events.append(event)
            ran.set()

    scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)
    scheduler.resume()
    try:
        assert ran.wait(15), "the missed nightly job did not run"
        after = scheduler.get_job(sched.NIGHTLY_ID).next_run_time
    finally:
        scheduler.shutdown(wait=True)
    assert len(events) == 1
    runs = _nightly_runs(settings)
    assert len(runs) == 1  # once, not once per missed night
    assert runs[0].date == tomorrow
    assert after > dt.datetime.now(TZ)  # back on its daily time


def test_a_run_missed_beyond_the_grace_time_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = dt.datetime.now(TZ)
    config = make_project(tmp_path, nightly=f'time = "{(now - dt.timedelta(hours=3)):%H:%M}"\nmisfire_grace_hours = 1')
    settings, deployment, _ = _off_for_three_nights(config)
    scheduler = sched.build_scheduler(settings, deployment=deployment)
    missed = threading.Event()
    scheduler.add_listener(lambda e: e.job_id == sched.NIGHTLY_ID and missed.set(), EVENT_JOB_MISSED)
    with caplog.at_level(logging.WARNING, logger="pipeline.scheduler"):
        scheduler.resume()
        try:
            assert missed.wait(10), "the stale nightly run was not reported as missed"
            after = scheduler.get_job(sched.NIGHTLY_ID).next_run_time
        finally:
            scheduler.shutdown(wait=True)
    assert _nightly_runs(settings) == []
    assert after > dt.datetime.now(TZ)
    assert any("loa-nightly" in r.message and "missed" in r.message for r in caplog.records)


# --- the jobs -------------------------------------------------------------------------------


def _all_deliveries(db: Database) -> list[str]:
    t = db.table("deliveries")
    with db.begin() as conn:
        return [row.endpoint for row in conn.execute(t.select())]


def test_retry_pushes_only_failed_endpoints_until_their_first_slot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, deployment = loaded(make_project(tmp_path))
    day = dt.datetime.now(TZ).date() + dt.timedelta(days=1)  # old days would be pruned on push
    db = open_database(settings.db_url)
    endpoints = tmp_path / "endpoints"
    endpoints.mkdir()

    def unplug(name: str) -> None:  # a file where the endpoint's directory should be
        shutil.rmtree(endpoints / name, ignore_errors=True)
        (endpoints / name).write_bytes(b"")

    unplug("y-ty-usb")
    unplug("ban-lau-loa")
    for commune in deployment.communes:  # an outbox for day (no programs: a manifest only)
        package_day(settings, commune, [], day)
    first = {d.endpoint: d.status for d in push_day(day, settings=settings, deployment=deployment, db=db)}
    assert first == {"y-ty-loa": "delivered", "y-ty-usb": "failed", "ban-lau-loa": "failed"}

    # 01:15: the USB stick is back; Bản Lầu still down
    (endpoints / "y-ty-usb").unlink()
    report = sched.retry_deliveries(day, settings=settings, deployment=deployment, db=db, now=local(day, "01:15"))
    assert {d.endpoint: d.status for d in report.retried} == {"y-ty-usb": "delivered", "ban-lau-loa": "failed"}
    assert (endpoints / "y-ty-usb" / "programs" / str(day) / "manifest.json").is_file()
    assert _all_deliveries(db).count("y-ty-loa") == 1  # delivered: never pushed again
    assert report.missed == ()

    # 05:30: Y Tý's first slot began; Bản Lầu (first slot 11:00) is still retried
    unplug("y-ty-usb")
    push_day(day, settings=settings, deployment=deployment, db=db, endpoint="y-ty-usb")
    with caplog.at_level(logging.ERROR, logger="pipeline.scheduler"):
        at_slot = sched.retry_deliveries(day, settings=settings, deployment=deployment, db=db, now=local(day, "05:30"))
        again = sched.retry_deliveries(day, settings=settings, deployment=deployment, db=db, now=local(day, "05:45"))
    assert [d.endpoint for d in at_slot.retried] == ["ban-lau-loa"]
    assert [d.endpoint for d in at_slot.missed] == ["y-ty-usb"]
    assert again.missed == ()  # said once
    errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "y-ty-usb" in errors[0] and "Y Tý" in errors[0] and "05:30" in errors[0]
    usb_pushes = _all_deliveries(db).count("y-ty-usb")

    # 11:00: Bản Lầu's window closed too; nothing is pushed any more
    late = sched.retry_deliveries(day, settings=settings, deployment=deployment, db=db, now=local(day, "11:00"))
    assert late.retried == ()
    assert [d.endpoint for d in late.missed] == ["ban-lau-loa"]
    assert _all_deliveries(db).count("y-ty-usb") == usb_pushes
    kinds = [(r.kind, r.status) for r in run_store.recent_runs(db)]
    assert kinds.count(("missed", "failed")) == 2
    assert ("retry", "partial") in kinds
    db.close()


def test_a_failing_nightly_job_is_logged_and_recorded_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_project(tmp_path)
    settings, _ = loaded(config)
    (tmp_path / "schedules" / "test.toml").write_text("[[commune]]\ncode = 1\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="pipeline.scheduler"):
        sched.nightly_job(str(config))  # returns; the scheduler would go on
        sched.retry_job(str(config))
        sched.nightly_job(str(tmp_path / "nowhere.toml"))
    assert any(r.exc_info and "cannot load the deployment" in r.message for r in caplog.records)
    assert any("nowhere.toml" in r.message for r in caplog.records)
    db = open_database(settings.db_url)
    runs = run_store.recent_runs(db)
    db.close()
    assert [(r.kind, r.status) for r in runs] == [("retry", "failed"), ("nightly", "failed")]
    assert "test.toml" in runs[1].failures[0]["error"]
    assert runs[1].date == dt.datetime.now(TZ).date() + dt.timedelta(days=1)


EMERGENCY = """+++
title = "{title}"
category = "emergency"
priority = "{priority}"
source = "UBND xã"
valid_from = {today}
valid_until = {today}
targets = ["all"]
languages = ["vi"]
+++
Lũ quét có thể xảy ra trong đêm nay; bà con không qua suối.
"""


def test_emergency_poll_dispatches_each_approved_emergency_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in ONLY for dispatch_bulletin (records the call and a finished dispatch run, as
    the real one does); pending_emergencies, the bulletins and the runs are real."""
    config = make_project(tmp_path)
    settings, deployment = loaded(config)
    db = open_database(settings.db_url)
    today = dt.datetime.now(settings.tz).date()

    def store(title: str, priority: str, approve: bool) -> int:
        text = EMERGENCY.format(title=title, priority=priority, today=today)
        [(b, _)] = bulletin_store.save_bulletins(
            db, [parse_bulletin(text, where="t.md", deployment=deployment).bulletin]
        )
        assert b.id is not None
        if approve:
            bulletin_store.approve(db, b.id)
        return b.id

    flood = store("Cảnh báo lũ quét", "emergency", approve=True)
    store("Cảnh báo sạt lở (chưa duyệt)", "emergency", approve=False)
    store("Thông báo họp thôn", "routine", approve=True)
    dispatched: list[int] = []

    def stand_in(bulletin_id: int, *, settings: Settings, deployment: Deployment, db: Database) -> DispatchReport:
        dispatched.append(bulletin_id)
        run_id = run_store.start_run(db, "dispatch", today)
        run_store.finish_run(db, run_id, status="done", counts={"bulletin": bulletin_id}, failures=[])
        return DispatchReport(run_id, bulletin_id, (), (), (), 0.0)

    monkeypatch.setattr("pipeline.dispatch.dispatch_bulletin", stand_in)
    sched.emergency_job(str(config))
    sched.emergency_job(str(config))
    db.close()
    assert dispatched == [flood]


# --- the command ----------------------------------------------------------------------------


def test_loa_scheduler_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    loa = Path(sys.executable).parent / "loa"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    with subprocess.Popen(
        [str(loa), "--config", str(config), "scheduler"], stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stderr is not None
        try:
            started = time.monotonic()
            line = ""
            while "scheduler started" not in line:
                line = proc.stderr.readline()
                assert line or proc.poll() is None, "loa scheduler exited before it started"
                assert time.monotonic() - started < 15, "no 'scheduler started' line"
            assert "Asia/Ho_Chi_Minh" in line
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            rest = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
    assert "scheduler stopped" in rest
