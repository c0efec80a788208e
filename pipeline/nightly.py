"""The one place that puts the stages in order: plan → compose → render → master → package → deliver.

The CLI (``loa build|push|nightly|dispatch``), the scheduler and the web UI call these
functions. Every run is idempotent (a second run renders nothing, encodes nothing and
sends nothing) and resumable (work is kept in the segment cache, the outbox and the
database as it is done; a killed run is finished by the next). One commune's failure is
recorded and reported; the others go on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import compose as compose_stage
from pipeline import plan as plan_stage
from pipeline.config import Settings
from pipeline.deliver import day_targets, push_folders
from pipeline.errors import LoaError, NotFoundError
from pipeline.models import PRIORITIES, Bulletin, Commune, Delivery, Deployment, Program, ProgramPlan, Recording, Script
from pipeline.package import package_programs
from pipeline.render import Job, render_jobs, script_jobs, segments_for
from pipeline.segcache import SegmentCache
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import decisions as decision_store
from pipeline.store import runs as run_store
from pipeline.store.recordings import current_recordings
from pipeline.textnorm import load_lexicon, normalize
from pipeline.tts.chain import EngineChain, build_engine_chain
from pipeline.voices import Catalog, load_catalog

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True, slots=True)
class Failure:
    what: str  # program id, commune code or endpoint name
    error: str


@dataclass(frozen=True, slots=True)
class BuildReport:
    date: dt.date
    programs: tuple[Program, ...]
    failures: tuple[Failure, ...]
    deferred: tuple[str, ...]
    missing: tuple[str, ...]
    segments_rendered: int
    segments_reused: int
    seconds: float

    @property
    def audio_ms(self) -> int:
        return sum(p.duration_ms for p in self.programs)

    def summary(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "programs": len(self.programs),
            "failed": len(self.failures),
            "segments_rendered": self.segments_rendered,
            "segments_reused": self.segments_reused,
            "audio_minutes": round(self.audio_ms / 60000, 1),
            "seconds": round(self.seconds, 1),
            "missing_recordings": list(self.missing),
            "deferred": list(self.deferred),
            "failures": [asdict(f) for f in self.failures],
        }


@dataclass
class _Work:
    plan: ProgramPlan
    script: Script | None = None
    jobs: list[Job] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def normalizer(settings: Settings) -> Callable[[str], str]:
    path = settings.voices_dir / "lexicon.vi.toml"
    lexicon = load_lexicon(path) if path.is_file() else None
    variant = settings.tts.variant

    @functools.lru_cache(maxsize=8192)
    def run(text: str) -> str:  # the same bulletin is estimated and keyed for every commune
        return normalize(text, variant=variant, lexicon=lexicon)

    return run


def build_day(
    day: dt.date,
    *,
    settings: Settings,
    deployment: Deployment,
    db: Database,
    commune: str | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Compose, render, master and package every program of ``day`` into the outbox."""
    started = time.monotonic()
    communes = _communes(deployment, commune)
    bulletins = bulletin_store.airable_bulletins(db, day)
    recordings = current_recordings(db, [b.id for b in bulletins if b.id is not None])
    templates = compose_stage.TemplateSet.load(settings.templates_dir)
    catalog = load_catalog(settings.voices_dir)
    engines, job_args = render_setup(settings, recordings, catalog)
    decisions = decision_store.decisions(db, [b.id for b in bulletins if b.id is not None])
    plans = plan_stage.plan_day(
        day, communes, bulletins=bulletins, recordings=recordings, spoken=job_args["normalize"], decisions=decisions
    )
    work: list[_Work] = []
    failures: list[Failure] = []
    for plan in plans:
        item = _Work(plan)
        try:
            item.script = compose_stage.compose_script(
                plan,
                templates=templates,
                catalog=catalog,
                recordings=recordings,
                on_missing=settings.render.on_missing_recording,
            )
            item.jobs, errors = script_jobs(item.script, **job_args)
            item.errors = [str(e) for e in errors]
        except LoaError as exc:
            item.errors = [str(exc)]
        work.append(item)
    all_jobs = [j for w in work for j in w.jobs if not w.errors]
    done = 0

    def on_done(_job: Job, _reused: bool) -> None:
        nonlocal done
        done += 1
        if progress:
            progress("render", done, len({j.key for j in all_jobs}))

    result = render_jobs(
        all_jobs,
        engines=engines,
        cache=SegmentCache(settings.cache_dir / "segments"),
        settings=settings,
        on_done=on_done,
    )
    run_store.record_segments(db, result.segments.values())
    programs: list[Program] = []
    by_commune: dict[str, list[Program]] = {}
    for item in work:
        pid = _program_id(item.plan)
        if not item.errors:
            segments, errors = segments_for(item.jobs, result)
            item.errors = [str(e) for e in errors]
        if item.errors:
            failures.extend(Failure(pid, e) for e in item.errors)
            continue
        assert item.script is not None
        program = _program(item.plan, segments, item.script, settings)
        programs.append(program)
        by_commune.setdefault(program.commune, []).append(program)
    for c in communes:
        mine = by_commune.get(c.code, [])
        if not mine:
            continue
        try:
            package_programs(
                c,
                mine,
                folder=f"programs/{day.isoformat()}",
                settings=settings,
                extra={"date": day.isoformat(), "timezone": deployment.timezone},
            )
            for p in mine:
                run_store.record_program(db, p)
        except (LoaError, OSError) as exc:
            failures.append(Failure(c.code, f"packaging {c.code} ({c.name}): {exc}"))
            programs = [p for p in programs if p.commune != c.code]
        if progress:
            progress("package", len(programs), len(plans))
    return BuildReport(
        date=day,
        programs=tuple(programs),
        failures=tuple(failures),
        deferred=tuple(
            f"{_program_id(p)}: {d.bulletin.title} → {d.until_slot or 'will not air again'} ({d.reason})"
            for p in plans
            for d in p.deferred
        ),
        missing=tuple(f"{_program_id(w.plan)}: {m}" for w in work if w.script for m in w.script.missing),
        segments_rendered=result.rendered,
        segments_reused=result.reused,
        seconds=time.monotonic() - started,
    )


def render_setup(
    settings: Settings, recordings: Mapping[tuple[int, str], Recording], catalog: Catalog | None = None
) -> tuple[EngineChain, dict[str, Any]]:
    """The speech engines and the keyword arguments ``render.script_jobs`` needs."""
    catalog = catalog or load_catalog(settings.voices_dir)
    engines = build_engine_chain(settings.tts)
    return engines, {
        "engines": engines,
        "settings": settings,
        "normalize": normalizer(settings),
        "clips": catalog.clip_paths(),
        "recordings": recordings,
    }


def preview_script(
    day: dt.date, commune: Commune, slot: str, *, settings: Settings, db: Database, draft: Bulletin | None = None
) -> tuple[ProgramPlan | None, Script | None]:
    """The plan and cue sheet one slot would air (None when the slot does not run that day).

    ``draft`` is planned as if it were approved, for previews before approval.
    """
    bulletins = [b for b in bulletin_store.airable_bulletins(db, day) if draft is None or b.id != draft.id]
    if draft is not None and draft.status != "withdrawn":
        bulletins.append(dataclasses.replace(draft, status="approved"))
    recordings = current_recordings(db, [b.id for b in bulletins if b.id is not None])
    plans = plan_stage.plan_commune_day(
        day,
        commune,
        bulletins=bulletins,
        recordings=recordings,
        spoken=normalizer(settings),
        decisions=decision_store.decisions(db, [b.id for b in bulletins if b.id is not None]),
    )
    plan = next((p for p in plans if p.slot.name == slot), None)
    if plan is None:
        return None, None
    script = compose_stage.compose_script(
        plan,
        templates=compose_stage.TemplateSet.load(settings.templates_dir),
        catalog=load_catalog(settings.voices_dir),
        recordings=recordings,
        on_missing=settings.render.on_missing_recording,
    )
    return plan, script


def _communes(deployment: Deployment, code: str | None) -> tuple[Commune, ...]:
    if code is None:
        return deployment.communes
    found = deployment.commune(code)
    if found is None:
        raise NotFoundError(f"commune {code}: not in the deployment; see `loa communes`")
    return (found,)


def _program_id(plan: ProgramPlan) -> str:
    return f"{plan.commune.code}/{plan.date.isoformat()}/{plan.slot.name}"


def _program(plan: ProgramPlan, segments: list[Any], script: Script, settings: Settings) -> Program:
    priorities = [i.bulletin.priority for i in plan.items] or ["normal"]
    priority = min(priorities, key=PRIORITIES.index)
    return Program(
        id=_program_id(plan),
        commune=plan.commune.code,
        date=plan.date,
        slot=plan.slot.name,
        start=dt.datetime.combine(plan.date, plan.slot.start, tzinfo=settings.tz),
        priority=priority,
        valid_until=plan.date,
        items=tuple(segments),
        kind=plan.kind,
        missing=script.missing,
    )


def push_day(
    day: dt.date,
    *,
    settings: Settings,
    deployment: Deployment,
    db: Database,
    endpoint: str | None = None,
    run_id: int | None = None,
    on_done: Callable[[Delivery], None] | None = None,
) -> list[Delivery]:
    """Deliver the outbox of ``day`` to every endpoint (or one) and record each attempt."""
    targets = day_targets(deployment, day, endpoint=endpoint)
    if endpoint is not None and not targets:
        raise NotFoundError(f"endpoint {endpoint}: not in the deployment; see `loa communes`")

    def record(d: Delivery) -> None:
        run_store.record_delivery(db, d, run_id=run_id)
        if on_done:
            on_done(d)

    return push_folders(targets, label=day.isoformat(), settings=settings, today=today(settings), on_done=record)


def today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.tz).date()


def tomorrow(settings: Settings) -> dt.date:
    return today(settings) + dt.timedelta(days=1)


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
) -> NightlyReport:
    """Build and push ``day``; keep a run record and a JSON report under data_dir/reports/."""
    run_id = run_store.start_run(db, "nightly", day)
    status = "failed"
    build: BuildReport | None = None
    deliveries: list[Delivery] = []
    try:
        build = build_day(day, settings=settings, deployment=deployment, db=db, progress=progress)
        deliveries = push_day(day, settings=settings, deployment=deployment, db=db, run_id=run_id, on_done=on_delivery)
        failed = build.failures or [d for d in deliveries if d.status != "delivered"]
        status = "partial" if failed else "done"
    finally:
        counts = _counts(build, deliveries)
        failures = ([asdict(f) for f in build.failures] if build else []) + [
            {"what": d.endpoint, "error": d.error} for d in deliveries if d.status != "delivered"
        ]
        run_store.finish_run(db, run_id, status=status, counts=counts, failures=failures)
    report_file = write_report(settings, run_id, day, build, deliveries, status)
    return NightlyReport(run_id, build, tuple(deliveries), report_file)


def _counts(build: BuildReport | None, deliveries: list[Delivery]) -> dict[str, Any]:
    counts: dict[str, Any] = build.summary() if build else {}
    counts.pop("failures", None)
    counts.update(
        endpoints=len(deliveries),
        delivered=sum(d.status == "delivered" for d in deliveries),
        bytes_sent=sum(d.bytes_sent for d in deliveries),
        files_sent=sum(d.files_sent for d in deliveries),
    )
    return counts


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
        "deliveries": [asdict(d) for d in deliveries],
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path
