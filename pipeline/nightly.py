"""The nightly job: build and push a day through the orchestrator, with a run record and a report.

``run_nightly`` is what ``loa nightly`` and the scheduler run. ``build_day`` and
``push_day`` are the two halves (``loa build``, ``loa push``, the retry job). All of
them are requests to ``pipeline.produce.Producer``; none chains stages itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.models import Delivery, Deployment
from pipeline.produce import BuildReport, Failure, Producer, Progress, today, tomorrow
from pipeline.runner import Runner
from pipeline.store import Database

__all__ = [
    "BuildReport",
    "Failure",
    "NightlyReport",
    "build_day",
    "push_day",
    "run_nightly",
    "today",
    "tomorrow",
    "write_report",
]


def build_day(
    day: dt.date,
    *,
    settings: Settings,
    deployment: Deployment,
    db: Database,
    commune: str | None = None,
    progress: Progress | None = None,
    runner: Runner | None = None,
) -> BuildReport:
    """Compose, render, master and package every program of ``day`` into the outbox (one run)."""
    producer = Producer(settings=settings, deployment=deployment, db=db, runner=runner, progress=progress)
    _, report, _, _ = producer.run_day(day, kind="build", push=False, commune=commune)
    assert report is not None
    return report


def push_day(
    day: dt.date,
    *,
    settings: Settings,
    deployment: Deployment,
    db: Database,
    endpoint: str | None = None,
    run_id: int | None = None,
    on_done: Callable[[Delivery], None] | None = None,
    runner: Runner | None = None,
    recheck: bool = False,
) -> list[Delivery]:
    """Deliver the outbox of ``day`` to every endpoint (or one) and record each attempt.

    With ``run_id`` the deliveries belong to that (caller's) run; without, to a new push run.
    ``recheck`` reconnects even to endpoints the records say already hold the outbox's copy.
    """
    producer = Producer(settings=settings, deployment=deployment, db=db, runner=runner)
    if run_id is not None:
        return producer.push(day, endpoint=endpoint, run_id=run_id, on_delivery=on_done, recheck=recheck)
    _, _, deliveries, _ = producer.run_day(
        day, kind="push", build=False, endpoint=endpoint, on_delivery=on_done, recheck=recheck
    )
    return deliveries


@dataclass(frozen=True, slots=True)
class NightlyReport:
    run_id: int
    build: BuildReport
    deliveries: tuple[Delivery, ...]
    report_file: Path

    @property
    def ok(self) -> bool:
        return not self.build.failures and all(d.status == "delivered" for d in self.deliveries)


def run_nightly(
    day: dt.date,
    *,
    settings: Settings,
    deployment: Deployment,
    db: Database,
    progress: Progress | None = None,
    on_delivery: Callable[[Delivery], None] | None = None,
    runner: Runner | None = None,
    recheck: bool = False,
) -> NightlyReport:
    """Build and push ``day``; keep a run record and a JSON report under data_dir/reports/."""
    producer = Producer(settings=settings, deployment=deployment, db=db, runner=runner, progress=progress)
    run_id, build, deliveries, status = producer.run_day(day, kind="nightly", on_delivery=on_delivery, recheck=recheck)
    assert build is not None
    report_file = write_report(settings, run_id, day, build, deliveries, status)
    return NightlyReport(run_id, build, tuple(deliveries), report_file)


def write_report(
    settings: Settings,
    run_id: int,
    day: dt.date,
    build: BuildReport | None,
    deliveries: list[Delivery],
    status: str,
) -> Path:
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = settings.reports_dir / f"nightly-{day.isoformat()}-run{run_id}.json"
    data = {
        "run": run_id,
        "status": status,
        "build": build.summary() if build else None,
        # a streaming night: per commune, seconds from the start until its programs reached every endpoint
        "reached": {r.commune: r.seconds for r in build.reached} if build else {},
        "deliveries": [asdict(d) for d in deliveries],
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path
