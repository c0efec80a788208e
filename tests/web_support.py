"""Helpers for the web tests: users, logging in through the real form, a real uvicorn."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from pipeline.bench.sshd import free_port
from pipeline.config import Settings
from pipeline.intake import parse_bulletin
from pipeline.models import Deployment
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store.users import User, add_user
from pipeline.web.app import create_app
from pipeline.web.auth import hash_password
from tests.conftest import REPO, SMALL_DEPLOYMENT, Project

PASSWORD = "mật-khẩu-thử-1234"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')

BULLETIN = """+++
title = "{title}"
category = "notice"
priority = "{priority}"
source = "UBND xã Y Tý"
reference = "Thông báo số 12/TB-UBND"
valid_from = {start}
valid_until = {end}
targets = {targets}
languages = ["vi", "hmn"]
+++
{body}
"""


def small_project(root: Path, voices: Path, *, segments: Path | None = None) -> Project:
    """The two-commune deployment of conftest (Y Tý with Mông; Bản Lầu), local endpoints.

    ``segments``: a segment cache shared by the tests of a session (content-addressed, so
    sharing it only saves rendering the same greeting and chimes again).
    """
    (root / "schedules").mkdir(parents=True)
    if segments is not None:
        segments.mkdir(parents=True, exist_ok=True)
        (root / "data" / "cache").mkdir(parents=True)
        (root / "data" / "cache" / "segments").symlink_to(segments, target_is_directory=True)
    (root / "schedules" / "small.toml").write_text(SMALL_DEPLOYMENT, encoding="utf-8")
    shutil.copytree(voices, root / "voices")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n[deliver]\nbackoff_s = 0.01\nretries = 0\n',
        encoding="utf-8",
    )
    return Project(root=root, config=config)


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # once per session: hashing is slow on purpose


def make_user(db: Database, name: str, role: str, *, group: str | None = None, commune: str | None = None) -> User:
    return add_user(db, name, password_hash=_password_hash(), role=role, group=group, commune=commune)


def standard_users(db: Database) -> None:
    """editor and approver of Bát Xát, operators of Y Tý (02641) and Bản Lầu (02695), an admin."""
    make_user(db, "bientap", "editor", group="bat-xat")
    make_user(db, "duyet", "approver")
    make_user(db, "dai-yty", "operator", commune="02641")
    make_user(db, "dai-banlau", "operator", commune="02695")
    make_user(db, "quantri", "admin")


def add_bulletin(
    db: Database,
    deployment: Deployment,
    settings: Settings,
    *,
    title: str = "Họp thôn về gia hạn thẻ BHYT",
    targets: str = '["02641"]',
    priority: str = "routine",
    approve: bool = True,
    body: str = "Thôn Tả Phìn họp lúc 7h30 về gia hạn thẻ bảo hiểm y tế.",
) -> int:
    today = dt.datetime.now(settings.tz).date()
    text = BULLETIN.format(
        title=title,
        priority=priority,
        targets=targets,
        body=body,
        start=today.isoformat(),
        end=(today + dt.timedelta(days=14)).isoformat(),
    )
    [(b, _)] = bulletin_store.save_bulletins(db, [parse_bulletin(text, where="t.md", deployment=deployment).bulletin])
    assert b.id is not None
    if approve:
        bulletin_store.approve(db, b.id, by="test")
    return b.id


def csrf_of(html: str) -> str:
    m = _CSRF_RE.search(html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf_of(page.text), "next": "/"}
    )


def logged_in_csrf(client: httpx.Client, path: str = "/") -> str:
    """The session's CSRF token, read from a page the user can open."""
    return csrf_of(client.get(path, follow_redirects=True).text)


@contextlib.contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """A real uvicorn serving ``app`` on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", proxy_headers=False)
    server = uvicorn.Server(config)  # as `loa serve`: forwarded headers are the app's to judge
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Web:
    """A project served by a real uvicorn, with httpx clients that are closed at the end."""

    project: Project
    db: Database
    app: FastAPI
    url: str
    clients: list[httpx.Client]

    def client(self, user: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=120)
        self.clients.append(client)
        if user is not None:
            assert login(client, user).status_code == 303
        return client


@contextlib.contextmanager
def serve_project(project: Project) -> Iterator[Web]:
    db = project.db()
    app = create_app(project.settings, deployment=project.deployment, db=db)
    with running(app) as url:
        web = Web(project, db, app, url, [])
        try:
            yield web
        finally:
            for client in web.clients:
                client.close()
            db.close()


@dataclass
class Built:
    """A small project whose programs for tomorrow are built and pushed (Bản Lầu's endpoint is missing)."""

    project: Project
    day: dt.date
    bulletin: int
    emergency: int | None


def shared_segments(factory: pytest.TempPathFactory) -> Path:
    """One segment cache for every build of the test session."""
    return factory.getbasetemp() / "shared-segments"


def build_small(
    root: Path,
    voices: Path,
    wav: Path,
    *,
    segments: Path | None = None,
    emergency: bool = True,
    commune: str | None = None,
) -> Built:
    """Users, an approved bulletin for all with a Mông recording, tomorrow built and pushed."""
    from pipeline.intake import prepare_recording
    from pipeline.nightly import build_day, push_day
    from pipeline.store.recordings import save_recording

    project = small_project(root, voices, segments=segments)
    (root / "endpoints").mkdir()
    (root / "endpoints" / "ban-lau-loa").write_text("not a directory: this endpoint fails\n")
    settings, deployment = project.settings, project.deployment
    db = project.db()
    try:
        standard_users(db)
        bid = add_bulletin(db, deployment, settings, targets='["all"]', body="Thôn Tả Phìn họp lúc 7h30 ngày mai.")
        save_recording(db, prepare_recording(bulletin_store.get_bulletin(db, bid), "hmn", wav, settings=settings))
        day = dt.datetime.now(settings.tz).date() + dt.timedelta(days=1)
        report = build_day(day, settings=settings, deployment=deployment, db=db, commune=commune)
        assert not report.failures, report.failures
        push_day(day, settings=settings, deployment=deployment, db=db)
        eid = None
        if emergency:
            from pipeline.dispatch import dispatch_bulletin

            eid = add_bulletin(
                db,
                deployment,
                settings,
                title="Cảnh báo lũ quét",
                priority="emergency",
                targets='["02641"]',
                body="Mưa lớn, nguy cơ lũ quét tại các thôn ven suối. Không qua ngầm tràn.",
            )
            dispatch_bulletin(eid, settings=settings, deployment=deployment, db=db)
    finally:
        db.close()
    return Built(project, day, bid, eid)


@pytest.fixture(scope="module")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path
) -> Built:
    """``build_small`` once per test module: a 1 s Mông recording, tomorrow built and pushed
    (for the commune named by the module's ``BUILD_COMMUNE``, else every commune)."""
    from tests import audio_fixtures as fx

    tmp = tmp_path_factory.mktemp("built")
    wav = fx.sine(tmp / "hmn.wav", seconds=1.0)
    commune = getattr(request.module, "BUILD_COMMUNE", None)
    return build_small(
        tmp / "p", voices_with_placeholders, wav, segments=shared_segments(tmp_path_factory), commune=commune
    )


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    """A small project with the standard users, served by uvicorn on 127.0.0.1."""
    project = small_project(tmp_path / "p", voices_with_placeholders)
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as served:
        yield served
