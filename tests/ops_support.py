"""A night to look at: a small project whose nightly ran with Bản Lầu's endpoint down."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.bench.children import stop_child
from pipeline.dispatch import dispatch_bulletin
from pipeline.nightly import run_nightly
from tests.conftest import Project
from tests.web_support import add_bulletin, small_project

DOWN = "ban-lau-loa"


@dataclass
class Night:
    project: Project
    day: dt.date
    bulletin: int
    emergency: int


def scripted_night(
    root: Path, voices: Path, *, segments: Path | None = None, extra_config: str = "", database_url: str = ""
) -> Night:
    """Tomorrow's nightly run with ``ban-lau-loa`` down (a file where its directory should be), and an
    emergency for Y Tý dispatched to its two endpoints."""
    project = small_project(root, voices, segments=segments)
    text = project.config.read_text(encoding="utf-8") + extra_config
    if database_url:
        text = f'database_url = "{database_url}"\n' + text
    project.config.write_text(text, encoding="utf-8")
    (root / "endpoints").mkdir()
    (root / "endpoints" / DOWN).write_text("not a directory: this endpoint is down\n")
    settings, deployment = project.settings, project.deployment
    db = project.db()
    try:
        bid = add_bulletin(db, deployment, settings, targets='["all"]', body="Thôn Tả Phìn họp lúc 7h30 ngày mai.")
        day = dt.datetime.now(settings.tz).date() + dt.timedelta(days=1)
        report = run_nightly(day, settings=settings, deployment=deployment, db=db)
        assert not report.ok and not report.build.failures
        eid = add_bulletin(
            db,
            deployment,
            settings,
            title="Cảnh báo lũ quét",
            priority="emergency",
            targets='["02641"]',
            body="Mưa lớn, nguy cơ lũ quét tại các thôn ven suối.",
        )
        dispatch_bulletin(eid, settings=settings, deployment=deployment, db=db)
    finally:
        db.close()
    return Night(project, day, bid, eid)


def bring_back(night: Night) -> None:
    """The endpoint that was down comes back (its directory can be made)."""
    (night.project.root / "endpoints" / DOWN).unlink()


@contextmanager
def scheduler(project: Project, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`loa scheduler` of ``project`` in its own process (output appended to ``log``), stopped
    on leaving as a service manager stops it: SIGTERM, SIGKILL after a minute."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    loa = str(Path(sys.executable).parent / "loa")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [loa, "--config", str(project.config), "scheduler"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        yield proc
    finally:
        stop_child(proc, timeout_s=60)
