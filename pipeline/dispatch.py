"""Emergency dispatch: one bulletin, composed with ``emergency.vi.j2``, pushed now.

It lands on every endpoint of the targeted communes under ``emergency/<bulletin>/`` in
the same shape as a program, with ``"play": "now"`` and ``"expires"`` in the manifest.
The CLI (``loa dispatch``), the web UI and the scheduler (which dispatches an emergency
bulletin as soon as it is approved) call ``dispatch_bulletin``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import Any

from pipeline import compose as compose_stage
from pipeline.config import Settings
from pipeline.deliver import push_folders
from pipeline.errors import LoaError, UsageError
from pipeline.models import Commune, Delivery, Deployment, Program, Script
from pipeline.nightly import Failure, render_setup, today
from pipeline.package import package_programs
from pipeline.render import Job, render_jobs, script_jobs, segments_for
from pipeline.segcache import SegmentCache
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store
from pipeline.store.recordings import current_recordings
from pipeline.voices import load_catalog


@dataclass(frozen=True, slots=True)
class DispatchReport:
    run_id: int
    bulletin_id: int
    programs: tuple[Program, ...]
    failures: tuple[Failure, ...]
    deliveries: tuple[Delivery, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures and all(d.status == "delivered" for d in self.deliveries)


def dispatch_bulletin(bulletin_id: int, *, settings: Settings, deployment: Deployment, db: Database) -> DispatchReport:
    """Emergency: compose, render and push one bulletin now to its communes' endpoints.

    Lands under ``emergency/<bulletin>/`` with ``"play": "now"`` and the expiry in the
    manifest. Idempotent: dispatching again sends only what an endpoint lacks.
    """
    started = time.monotonic()
    b = bulletin_store.get_bulletin(db, bulletin_id)
    if b.priority != "emergency":
        raise UsageError(f"bulletin {bulletin_id}: priority is {b.priority}; only emergency bulletins are dispatched")
    if b.status != "approved":
        raise UsageError(f"bulletin {bulletin_id}: it is {b.status}; approve it first (`loa bulletin approve`)")
    now = dt.datetime.now(settings.tz)
    if now.date() > b.valid_until:
        raise UsageError(f"bulletin {bulletin_id}: it expired on {b.valid_until}; nothing to dispatch")
    run_id = run_store.start_run(db, "dispatch", now.date())
    # The approval time, not the dispatch time, dates the program: dispatching again
    # produces the same manifest, so only what an endpoint lacks is sent.
    issued = (b.approved_at or now).astimezone(settings.tz)
    recordings = current_recordings(db, [bulletin_id])
    templates = compose_stage.TemplateSet.load(settings.templates_dir)
    catalog = load_catalog(settings.voices_dir)
    engines, job_args = render_setup(settings, recordings, catalog)
    failures: list[Failure] = []
    scripts: list[tuple[Commune, Script, list[Job]]] = []
    for commune in deployment.targeted(b.targets):
        try:
            script = compose_stage.compose_emergency(
                b, commune, templates=templates, catalog=catalog, recordings=recordings, on_missing="skip"
            )
            jobs, errors = script_jobs(script, **job_args)
        except LoaError as exc:
            failures.append(Failure(commune.code, str(exc)))
            continue
        failures.extend(Failure(script.name, str(e)) for e in errors)
        if not errors:
            scripts.append((commune, script, jobs))
    result = render_jobs(
        [j for _, _, jobs in scripts for j in jobs],
        engines=engines,
        cache=SegmentCache(settings.cache_dir / "segments"),
        settings=settings,
    )
    run_store.record_segments(db, result.segments.values())
    expires = dt.datetime.combine(b.valid_until, dt.time(23, 59, 59), tzinfo=settings.tz)
    folder = f"emergency/{bulletin_id}"
    programs: list[Program] = []
    targets: list[tuple[Any, list[str]]] = []
    for commune, script, jobs in scripts:
        segments, errors = segments_for(jobs, result)
        if errors:
            failures.extend(Failure(script.name, str(e)) for e in errors)
            continue
        program = Program(
            id=script.name,
            commune=commune.code,
            date=issued.date(),
            slot="emergency",
            start=issued,
            priority="emergency",
            valid_until=b.valid_until,
            items=tuple(segments),
            kind="emergency",
            missing=script.missing,
        )
        extra = {"play": "now", "bulletin": bulletin_id, "title": b.title, "expires": expires.isoformat()}
        package_programs(commune, [program], folder=folder, settings=settings, extra=extra)
        run_store.record_program(db, program)
        programs.append(program)
        targets.extend((e, [folder]) for e in commune.endpoints)
    deliveries = push_folders(
        targets,
        label=folder,
        settings=settings,
        today=now.date(),
        on_done=lambda d: run_store.record_delivery(db, d, run_id=run_id),
    )
    failed = bool(failures) or any(d.status != "delivered" for d in deliveries)
    run_store.finish_run(
        db,
        run_id,
        status="partial" if failed else "done",
        counts={
            "bulletin": bulletin_id,
            "programs": len(programs),
            "endpoints": len(deliveries),
            "delivered": sum(d.status == "delivered" for d in deliveries),
        },
        failures=[asdict(f) for f in failures]
        + [{"what": d.endpoint, "error": d.error} for d in deliveries if d.status != "delivered"],
    )
    return DispatchReport(
        run_id, bulletin_id, tuple(programs), tuple(failures), tuple(deliveries), time.monotonic() - started
    )


def pending_emergencies(db: Database, *, settings: Settings, retry_after_s: float = 60.0) -> list[int]:
    """Approved, unexpired emergency bulletins not yet dispatched to every endpoint.

    A bulletin whose last dispatch was partial is retried once ``retry_after_s`` has passed.
    """
    today_ = today(settings)
    runs = run_store.recent_runs(db, limit=None, kind="dispatch")
    now = dt.datetime.now(dt.UTC)
    pending = []
    for b in bulletin_store.list_bulletins(db, status="approved"):
        if b.priority != "emergency" or not b.valid_on(today_) or b.id is None:
            continue
        mine = [r for r in runs if r["counts"].get("bulletin") == b.id]
        if any(r["status"] == "done" for r in mine):
            continue
        last = max((r["started_at"] for r in mine if r["started_at"]), default=None)
        if last is None or (now - last).total_seconds() >= retry_after_s:
            pending.append(b.id)
    return pending
