"""Alerts at a local SMTP server (aiosmtpd) and a local signed-webhook receiver: a failed night, a
silent commune, a full disk; each fired once, repeated, resolved, never twice across a restart."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from pipeline.cli import main
from pipeline.deployment import load_deployment
from pipeline.ops.alerts import Notice, run_alerts
from pipeline.publish.webhooks import deliver_webhooks, verify_signature
from pipeline.scheduler.ops_jobs import ops_job
from pipeline.store import ops as ops_store
from tests.conftest import Project
from tests.fake_http import FakeHttp, status
from tests.ops_support import DOWN, Night, bring_back, scheduler, scripted_night
from tests.web_support import free_port, shared_segments, small_project

pytestmark = [pytest.mark.audio]
SECRET = "khóa-bí-mật-cảnh-báo"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.content  # type: ignore[attr-defined]
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        return [m.get_body(("plain", "html")).get_content() for m in self.messages]  # type: ignore[union-attr]


@dataclass
class Channels:
    inbox: Inbox
    smtp_port: int
    hook: FakeHttp
    hook_url: str
    secret_file: Path

    def config(self, *, repeat_minutes: int = 30, extra: str = "") -> str:
        mailto = (
            f"mailto://127.0.0.1:{self.smtp_port}?smtp=127.0.0.1&mode=insecure"
            "&from=loa@laocai.example&to=truc-ban@laocai.example"
        )
        return (
            f'[alerts]\nurls = ["{mailto}"]\nrepeat_minutes = {repeat_minutes}\n{extra}'
            "[outbound]\nallow_loopback = true\n"  # the webhook receiver is on 127.0.0.1
            f'[[webhook]]\nurl = "{self.hook_url}"\nsecret_file = "{self.secret_file}"\n'
            'events = ["alert.fired", "alert.resolved"]\nbackoff_s = 0\ntimeout_s = 5\n'
        )

    def events(self) -> list[dict[str, object]]:
        out = []
        for seen in self.hook.requests:
            assert verify_signature(SECRET.encode(), seen.headers["loa-signature"], seen.body)
            out.append(json.loads(seen.body))
        return out


@pytest.fixture
def channels(tmp_path: Path) -> Iterator[Channels]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    hook = FakeHttp(status(200))
    secret = tmp_path / "hook-secret"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0o600)
    try:
        yield Channels(inbox, port, hook, f"{hook.url}/alerts", secret)
    finally:
        hook.close()
        controller.stop()


def wait_for(what: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _deliver(project: Project) -> None:
    db = project.db()
    try:
        deliver_webhooks(db, project.settings)
    finally:
        db.close()


def _alerts(project: Project, now: dt.datetime) -> list[str]:
    db = project.db()
    try:
        sent = run_alerts(project.settings, project.deployment, db, now=now)
    finally:
        db.close()
    return [f"{n.state}:{n.key}" for n in sent]


def test_a_failed_night_fires_repeats_and_resolves_once(
    tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path, channels: Channels
) -> None:
    root = tmp_path_factory.mktemp("alerts-night") / "p"
    night = scripted_night(
        root, voices_with_placeholders, segments=shared_segments(tmp_path_factory), extra_config=channels.config()
    )
    project, day = night.project, night.day
    config = str(project.config)

    ops_job(config)  # the scheduler's job: heartbeat, then the alerts
    wait_for(lambda: len(channels.inbox.messages) == 1)
    [subject], [body] = channels.inbox.subjects(), channels.inbox.bodies()
    assert subject.startswith("[Loa] CẢNH BÁO") and f"{day:%d/%m/%Y}" in subject
    assert DOWN in body and "Bản Lầu" in body and "chưa trọn vẹn" in body
    db = project.db()
    assert ops_store.heartbeat(db, "scheduler") is not None
    db.close()

    ops_job(config)  # a minute later, or after a restart of the scheduler: not again
    now = dt.datetime.now(dt.UTC)
    assert _alerts(project, now + dt.timedelta(minutes=10)) == []
    assert _alerts(project, now + dt.timedelta(minutes=31)) == [f"repeat:nightly:{day.isoformat()}"]
    wait_for(lambda: len(channels.inbox.messages) == 2)
    assert channels.inbox.subjects()[1].startswith("[Loa] NHẮC LẠI")
    ops_job(config)  # restarted: the repeat was recorded, nothing is sent twice

    bring_back(night)
    assert main(["--config", config, "push", "--date", day.isoformat()]) == 0  # the retry reaches Bản Lầu
    assert _alerts(project, now + dt.timedelta(minutes=32)) == [f"resolved:nightly:{day.isoformat()}"]
    wait_for(lambda: len(channels.inbox.messages) == 3)
    assert channels.inbox.subjects()[2].startswith("[Loa] ĐÃ KHẮC PHỤC")
    ops_job(config)
    assert _alerts(project, now + dt.timedelta(hours=10)) == []
    time.sleep(1)
    assert len(channels.inbox.messages) == 3

    _deliver(project)
    events = channels.events()
    assert [(e["type"], e["data"]["state"]) for e in events] == [  # type: ignore[index]
        ("alert.fired", "fired"),
        ("alert.fired", "repeat"),
        ("alert.resolved", "resolved"),
    ]
    assert all(e["data"]["key"] == f"nightly:{day.isoformat()}" for e in events)  # type: ignore[index]
    _deliver(project)
    assert len(channels.hook.requests) == 3


def test_a_silent_commune_fires_and_resolves(
    tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path, channels: Channels
) -> None:
    root = tmp_path_factory.mktemp("alerts-silent") / "p"
    night: Night = scripted_night(
        root,
        voices_with_placeholders,
        segments=shared_segments(tmp_path_factory),
        extra_config=channels.config(extra="silent_commune_hours = 1\n"),
    )
    project, config = night.project, str(night.project.config)
    bring_back(night)
    assert main(["--config", config, "push", "--date", night.day.isoformat()]) == 0  # no nightly alert now
    # Y Tý's endpoints stop answering (their directories are gone), and two hours pass
    endpoints = project.root / "endpoints"
    for name in ("y-ty-loa", "y-ty-radio"):
        shutil.move(endpoints / name, endpoints / f"{name}.away")
        (endpoints / name).write_text("stopped\n")
    db = project.db()
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE deliveries SET finished_at = :at"), {"at": dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)}
        )
    db.close()
    assert main(["--config", config, "push", "--date", night.day.isoformat(), "--recheck"]) == 3  # Y Tý down
    now = dt.datetime.now(dt.UTC)
    nightly = f"nightly:{night.day.isoformat()}"  # Y Tý's latest delivery of the night failed too
    assert sorted(_alerts(project, now)) == [f"fired:{nightly}", "fired:silent:02641"]
    wait_for(lambda: len(channels.inbox.messages) == 2)
    [body] = [b for b in channels.inbox.bodies() if "không liên lạc" in b]
    assert "Y Tý (02641)" in body and "y-ty-loa" in body and "2 giờ" in body
    assert _alerts(project, now + dt.timedelta(minutes=5)) == []
    for name in ("y-ty-loa", "y-ty-radio"):
        (endpoints / name).unlink()
        shutil.move(endpoints / f"{name}.away", endpoints / name)
    assert main(["--config", config, "push", "--date", night.day.isoformat(), "--recheck"]) == 0
    assert sorted(_alerts(project, dt.datetime.now(dt.UTC))) == [f"resolved:{nightly}", "resolved:silent:02641"]
    wait_for(lambda: len(channels.inbox.messages) == 4)
    assert sum(s.startswith("[Loa] ĐÃ KHẮC PHỤC") for s in channels.inbox.subjects()) == 2


@pytest.fixture
def small_disk(tmp_path: Path, voices_with_placeholders: Path, channels: Channels) -> Iterator[Project]:
    """A project whose data directory is a 48 MiB tmpfs of its own (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.fail("needs root to mount a small tmpfs as data_dir")
    project = small_project(tmp_path / "p", voices_with_placeholders)
    data = project.root / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)], check=True)
    project.config.write_text(
        project.config.read_text(encoding="utf-8")
        + "[health]\nmin_free_mb = 24\nscheduler_stale_s = 0\n"
        + channels.config(extra="min_free_mb = 24\n"),
        encoding="utf-8",
    )
    try:
        yield project
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_a_full_disk_fires_once_and_resolves(small_disk: Project, channels: Channels) -> None:
    project = small_disk
    assert load_deployment(project.settings.schedules_dir).communes
    now = dt.datetime.now(dt.UTC)
    assert _alerts(project, now) == []
    assert main(["--config", str(project.config), "health"]) == 0
    filler = project.settings.data_dir / "filler.bin"
    filler.write_bytes(b"\0" * (30 * 1024 * 1024))
    assert _alerts(project, now) == ["fired:disk"]
    assert _alerts(project, now + dt.timedelta(minutes=1)) == []
    assert main(["--config", str(project.config), "health", "--json"]) == 1  # /readyz: below [health] min_free_mb
    wait_for(lambda: len(channels.inbox.messages) == 1)
    assert "MB trống" in channels.inbox.bodies()[0] and str(project.settings.data_dir) in channels.inbox.bodies()[0]
    filler.unlink()
    assert _alerts(project, now + dt.timedelta(minutes=2)) == ["resolved:disk"]
    wait_for(lambda: len(channels.inbox.messages) == 2)
    _deliver(project)
    assert [json.loads(r.body)["type"] for r in channels.hook.requests] == ["alert.fired", "alert.resolved"]


def test_alerts_test_sends_one_message(small: Project, channels: Channels) -> None:
    small.config.write_text(small.config.read_text(encoding="utf-8") + channels.config(), encoding="utf-8")
    assert main(["--config", str(small.config), "alerts", "test"]) == 0
    wait_for(lambda: len(channels.inbox.messages) == 1)
    assert "Thử cảnh báo" in channels.inbox.subjects()[0]


def test_an_unconfirmed_emergency_failing_webhooks_and_an_unreadable_key(
    tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path
) -> None:
    root = tmp_path_factory.mktemp("alerts-more") / "p"
    refusing = FakeHttp(status(500))
    secret = root.parent / "hook-secret"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0o600)
    try:
        night = scripted_night(
            root,
            voices_with_placeholders,
            segments=shared_segments(tmp_path_factory),
            extra_config=(
                "[outbound]\nallow_loopback = true\n"
                f'[[webhook]]\nurl = "{refusing.url}/hook"\nsecret_file = "{secret}"\n'
                'events = ["bulletin.approved"]\nbackoff_s = 0\ntimeout_s = 5\nmax_attempts = 50\n'
            ),
        )
        project = night.project
        settings, deployment = project.settings, project.deployment
        sent: list[str] = []
        messages: dict[str, str] = {}

        def notify(notice: Notice) -> bool:
            sent.append(f"{notice.state}:{notice.key}")
            messages[notice.key] = notice.message
            return True

        db = project.db()
        try:
            from pipeline.dispatch import dispatch_bulletin
            from tests.web_support import add_bulletin

            eid = add_bulletin(
                db, deployment, settings, title="Sạt lở đất", priority="emergency", targets='["02695"]',
                body="Nguy cơ sạt lở đất tại thôn Bản Lầu.",
            )  # fmt: skip
            dispatch_bulletin(eid, settings=settings, deployment=deployment, db=db)  # Bản Lầu's endpoint is down
            deliver_webhooks(db, settings)  # the receiver answers 500
            now = dt.datetime.now(dt.UTC)
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=5), notify=notify)
            assert f"fired:emergency:{eid}" not in sent  # 15 minutes are given
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=16), notify=notify)
            assert f"fired:emergency:{eid}" in sent
            assert DOWN in messages[f"emergency:{eid}"] and "Sạt lở đất" in messages[f"emergency:{eid}"]
            assert not any(s.startswith("fired:webhook") for s in sent)
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=61), notify=notify)
            [hook] = [s for s in sent if s.startswith("fired:webhook:")]
            assert hook == f"fired:webhook:{refusing.url}" and "500" in messages[hook.removeprefix("fired:")]

            key = settings.signing_key_file
            key.chmod(0o644)  # readable by others: Loa refuses to sign with it
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=62), notify=notify)
            assert sent[-1] == "fired:signing-key" and str(key) in messages["signing-key"]
            key.chmod(0o600)
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=63), notify=notify)
            assert sent[-1] == "resolved:signing-key"
        finally:
            db.close()
    finally:
        refusing.close()


def _heartbeat(project: Project) -> dt.datetime | None:
    db = project.db()
    try:
        return ops_store.heartbeat(db, "scheduler")
    finally:
        db.close()


def test_a_real_scheduler_restart_sends_nothing_twice(small: Project, channels: Channels, tmp_path: Path) -> None:
    """`loa scheduler` twice: the alert (a disk threshold no disk meets) arrives once."""
    small.config.write_text(
        small.config.read_text(encoding="utf-8") + channels.config(extra="min_free_mb = 100000000\n"),
        encoding="utf-8",
    )
    log = tmp_path / "scheduler.log"
    with scheduler(small, log):
        wait_for(lambda: len(channels.inbox.messages) == 1, timeout=180)
        assert "Ổ đĩa" in channels.inbox.bodies()[0]
    restarted = dt.datetime.now(dt.UTC)
    with scheduler(small, log):
        wait_for(lambda: (_heartbeat(small) or restarted) > restarted, timeout=180)
        time.sleep(5)  # the same job run evaluates the alerts right after its heartbeat
    assert len(channels.inbox.messages) == 1, channels.inbox.subjects()


def test_workers_alive_is_read_from_the_heartbeats_not_a_ping(tmp_path: Path) -> None:
    from pipeline.config import RunnerSettings, Settings
    from pipeline.ops.alerts import runner_conditions
    from pipeline.ops.metrics import alive_workers

    settings = Settings(data_dir=tmp_path, runner=RunnerSettings(kind="celery"))
    late = {"name": "w1@a", "host": "a", "pid": 1, "last_seen": 1.0, "age_s": 99.0, "alive": False}
    status = {"broker": "redis://x", "workers": [{"name": "w1@a", "active": 0}], "heartbeats": [late]}
    assert alive_workers(status) == []
    assert [c.key for c in runner_conditions(settings, status)] == ["workers"]
    status["heartbeats"] = [{**late, "age_s": 2.0, "alive": True}]
    status["workers"] = []  # no ping answered: the heartbeat still says it is alive
    assert alive_workers(status) == ["w1@a"]
    assert runner_conditions(settings, status) == []
