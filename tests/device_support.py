"""Helpers for the commune player's tests: a small served project, signed programs in its outbox."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from loa_protocol import manifest as mf

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

    def _program(self, pid: str, kind: str, slot: str, start: dt.datetime, audio: bytes, ms: int) -> mf.ProgramEntry:
        f = self.media(audio)
        item = mf.Item(
            title=f"{slot} {start:%H:%M}",
            kind="speech",
            language="vi",
            duration_ms=ms,
            sha256=f.sha256,
            bytes=f.bytes,
            source=mf.Source(type="tts", engine="espeak-ng"),
            file=f.path,
        )
        return mf.ProgramEntry(
            id=pid,
            kind=kind,
            slot=slot,
            start=start,
            priority="emergency" if kind == "emergency" else "routine",
            valid_until=start.date(),
            duration_ms=ms,
            items=(item,),
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

    def day(
        self,
        day: dt.date,
        slots: list[tuple[str, dt.datetime]],
        audio: bytes,
        *,
        ms: int,
        valid_until: dt.datetime | None = None,
    ) -> mf.Manifest:
        programs = tuple(
            self._program(f"{self.commune}/{day.isoformat()}/{name}", "program", name, start, audio, ms)
            for name, start in slots
        )
        m = mf.Manifest(
            endpoint=self.endpoint,
            format="playlist",
            commune=self.commune,
            commune_name="Y Tý",
            folder=f"programs/{day.isoformat()}",
            timezone=self.timezone,
            valid_until=valid_until or max(p.start for p in programs) + dt.timedelta(days=1),
            programs=programs,
            files=tuple({f.path: f for f in (self.media(audio),)}.values()),
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
