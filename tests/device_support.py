"""Helpers for the commune player's tests: a small served project, signed programs in its outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from loa_protocol import manifest as mf

from pipeline.bench.children import stop_child
from pipeline.package import manifest_path
from pipeline.signing import load_key, sign
from tests.conftest import REPO, SMALL_DEPLOYMENT, Project
from tests.web_support import standard_users

COMMUNE = "02641"
ENDPOINT = "y-ty-loa"


def device_project(root: Path) -> Project:
    """The small two-commune deployment, its users, no voices or builds: programs are written by ``Outbox``."""
    (root / "schedules").mkdir(parents=True)
    (root / "schedules" / "small.toml").write_text(SMALL_DEPLOYMENT, encoding="utf-8")
    config = root / "loa.toml"
    config.write_text(f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n', encoding="utf-8")
    project = Project(root=root, config=config)
    db = project.db()
    try:
        standard_users(db)
    finally:
        db.close()
    return project


@dataclass(frozen=True)
class Slot:
    name: str
    start: dt.datetime
    audio: bytes
    ms: int
    items: int = 1


@dataclass
class Outbox:
    """Signed manifests and media in a project's outbox, as ``loa build`` leaves them (for one endpoint)."""

    project: Project
    commune: str = COMMUNE
    endpoint: str = ENDPOINT
    timezone: str = "Asia/Ho_Chi_Minh"

    @property
    def root(self) -> Path:
        return self.project.settings.outbox_dir / self.commune

    def media(self, data: bytes) -> mf.FileEntry:
        sha = hashlib.sha256(data).hexdigest()
        rel = f"media/{sha}.mp3"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(data)
        return mf.FileEntry(rel, len(data), sha)

    def _program(
        self, pid: str, kind: str, slot: str, start: dt.datetime, audio: bytes, ms: int, items: int = 1
    ) -> mf.ProgramEntry:
        f = self.media(audio)
        entries = tuple(
            mf.Item(
                title=f"{slot} {start:%H:%M} #{n + 1}",
                kind="speech",
                language="vi",
                duration_ms=ms,
                sha256=f.sha256,
                bytes=f.bytes,
                source=mf.Source(type="tts", engine="espeak-ng"),
                file=f.path,
            )
            for n in range(items)
        )
        return mf.ProgramEntry(
            id=pid,
            kind=kind,
            slot=slot,
            start=start,
            priority="emergency" if kind == "emergency" else "routine",
            valid_until=start.date(),
            duration_ms=ms * items,
            items=entries,
        )

    def write(self, manifest: mf.Manifest) -> Path:
        path = manifest_path(self.project.settings.outbox_dir, self.commune, manifest.folder, self.endpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = manifest.to_bytes()
        key = load_key(self.project.settings.signing_key_file, create=True)
        sig = path.with_name(path.name + ".sig")
        sig.write_bytes(sign(key, data))
        path.write_bytes(data)
        return path

    def day(self, day: dt.date, slots: list[Slot], *, valid_until: dt.datetime | None = None) -> mf.Manifest:
        programs = tuple(
            self._program(
                f"{self.commune}/{day.isoformat()}/{x.name}", "program", x.name, x.start, x.audio, x.ms, x.items
            )
            for x in slots
        )
        files = {f.path: f for f in (self.media(x.audio) for x in slots)}
        m = mf.Manifest(
            endpoint=self.endpoint,
            format="playlist",
            commune=self.commune,
            commune_name="Y Tý",
            folder=f"programs/{day.isoformat()}",
            timezone=self.timezone,
            valid_until=valid_until or max(p.start for p in programs) + dt.timedelta(days=1),
            programs=programs,
            files=tuple(files.values()),
            date=day,
        )
        self.write(m)
        return m

    def emergency(
        self,
        bulletin: int,
        start: dt.datetime,
        audio: bytes,
        *,
        ms: int,
        expires: dt.datetime,
        replay: tuple[dt.datetime, ...] = (),
        cancelled: bool = False,
    ) -> mf.Manifest:
        folder = f"emergency/{bulletin}"
        programs = (
            ()
            if cancelled
            else (self._program(f"{self.commune}/{folder}", "emergency", "emergency", start, audio, ms),)
        )
        m = mf.Manifest(
            endpoint=self.endpoint,
            format="playlist",
            commune=self.commune,
            commune_name="Y Tý",
            folder=folder,
            timezone=self.timezone,
            valid_until=expires,
            programs=programs,
            files=() if cancelled else (self.media(audio),),
            emergency=mf.Emergency(
                bulletin=bulletin, title="Lũ quét", expires=expires, replay=replay, cancelled=cancelled
            ),
        )
        self.write(m)
        return m


# --- a server the test stops and starts, an agent the test kills ------------------------

DEVICE_SRC = REPO / "device"
TIMED_PLAYER = "mpv --ao=null --no-video --really-quiet --no-config"  # plays in real time, without a sound card
#: the interpreter agents run under: LOA_DEVICE_PYTHON=/path/to/python3.9 checks the agent on the oldest Python
AGENT_PYTHON = os.environ.get("LOA_DEVICE_PYTHON") or sys.executable


def agent_env() -> dict[str, str]:
    """The environment of an agent process: the repository's device/ first (a fresh clone installs it too)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(DEVICE_SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("NOTIFY_SOCKET", None)
    return env


class Throttle:
    """ASGI middleware: media files are sent slowly (``delay_s`` per 64 KiB), so a test can kill mid-download."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or "/files/media/" not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return

        async def slow_send(message: Any) -> None:
            if message.get("type") == "http.response.body" and message.get("body"):
                await asyncio.sleep(self.delay_s)
            await send(message)

        await self.app(scope, receive, slow_send)


class ServerCtl:
    """A real uvicorn on a fixed loopback port that a test stops (the link is down) and starts again."""

    def __init__(self, app: Any, port: int, *, tls: tuple[Path, Path] | None = None) -> None:
        self.app, self.port, self.tls = app, port, tls
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=str(self.tls[0]) if self.tls else None,
            ssl_keyfile=str(self.tls[1]) if self.tls else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-device", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "uvicorn did not stop"
        self.server = self.thread = None


class AgentProc:
    """``loa-device run`` as its own process (so it can be SIGKILLed), its log in ``log``."""

    def __init__(self, config: Path, clock: Path, log: Path, *, env: dict[str, str] | None = None) -> None:
        self.config, self.clock, self.log = config, clock, log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        before = self.log.read_text().count("loa-device 0.1.0: endpoint") if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [AGENT_PYTHON, "-m", "loa_device", "--config", str(self.config), "run", "--clock-file", str(self.clock)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**agent_env(), **self.env},
        )
        out.close()
        self.starts += 1
        deadline = time.monotonic() + 60
        while self.log.read_text().count("loa-device 0.1.0: endpoint") <= before:
            assert self.proc.poll() is None, f"the agent exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the agent is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, timeout_s=30)


def wait_for(what: str, check: Callable[[], Any], *, timeout_s: float = 60.0, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)
