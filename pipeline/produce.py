"""The orchestrator: the one place that chains the stages.

    request (a day / an emergency / a preview)
       └─ plan + compose ──► RenderUnits ──► Runner ──► segments
                         ──► PackageUnits ──► Runner ──► signed manifests per endpoint
                         ──► DeliverUnits ──► Runner ──► deliveries ──► records, report

``Producer`` takes the request; ``loa build|push|nightly|dispatch``, the scheduler, the
web preview and the benchmark all call it, never their own copy of the chain. Planning
and composing are quick and happen here; the heavy work goes out as units to a
``Runner`` (``pipeline.runner``), which may be this process or many machines. Every
unit has its own guard: a failure is recorded against its script line, commune or
endpoint and the rest go on. Every run (build, push, nightly, dispatch, retry) is
recorded and ends as done, partial or failed — a run whose process died is marked
failed by the next start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import compose as compose_stage
from pipeline import manifest as mf
from pipeline import plan as plan_stage
from pipeline.audio.joined import joined_cache
from pipeline.audio.types import Id3Tags
from pipeline.broadcast import guard
from pipeline.broadcast.replay import bulletin_replays
from pipeline.composecache import CachedProgram, ComposeCache, Digests, digest, files_digest
from pipeline.config import Settings
from pipeline.deliver import day_targets, outbox_state
from pipeline.errors import LoaError, NotFoundError, RenderError, UsageError
from pipeline.flow import Arrivals, Reached, Waiting, effort
from pipeline.models import (
    PRIORITIES,
    Bulletin,
    Commune,
    Delivery,
    Deployment,
    Endpoint,
    Program,
    ProgramPlan,
    Recording,
    Script,
    Segment,
)
from pipeline.package import day_valid_until, manifest_path
from pipeline.render import audio_identity, script_units
from pipeline.runner import Runner, make_runner
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import decisions as decision_store
from pipeline.store import runs as run_store
from pipeline.store.db import utcnow
from pipeline.store.recordings import current_recordings
from pipeline.textnorm import load_lexicon, normalize
from pipeline.tts.chain import EngineChain, build_engine_chain
from pipeline.units import DeliverUnit, PackageUnit, RenderUnit, Unit, UnitResult
from pipeline.voices import Catalog, effective_catalog, load_catalog

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total)
#: A bulletin in one of these no longer airs; an emergency's devices get a signed cancel.
ENDED = ("withdrawn", "cancelled", "superseded")
OnDelivery = Callable[[Delivery], None]


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
    policy_notes: tuple[str, ...] = ()
    reached: tuple[Reached, ...] = ()  # a streaming night: when each commune's programs reached its endpoints

    @property
    def audio_ms(self) -> int:
        return sum(p.duration_ms for p in self.programs)

    @property
    def placeholders(self) -> dict[str, list[str]]:
        """Placeholder clip (catalog key) → the programs it airs in: a stand-in never airs silently."""
        out: dict[str, list[str]] = {}
        for p in self.programs:
            for seg in p.items:
                src = seg.source
                if src is not None and src.placeholder and src.clip and p.id not in out.get(src.clip, []):
                    out.setdefault(src.clip, []).append(p.id)
        return dict(sorted(out.items()))

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
            "placeholders": self.placeholders,
            "deferred": list(self.deferred),
            "policy": list(self.policy_notes),
            "failures": [asdict(f) for f in self.failures],
        } | reached_summary(self.reached)


@dataclass(frozen=True, slots=True)
class DispatchReport:
    run_id: int
    bulletin_id: int
    programs: tuple[Program, ...]
    failures: tuple[Failure, ...]
    deliveries: tuple[Delivery, ...]
    seconds: float
    segments_rendered: int = 0
    segments_reused: int = 0
    reached: tuple[Reached, ...] = ()  # when each commune's program reached all its endpoints

    @property
    def ok(self) -> bool:
        return not self.failures and all(d.status == "delivered" for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class Composed:
    """One program planned and composed: the keys of the units its audio needs, in order.

    The script itself is not kept (a day holds thousands): its units go into the day's one
    table of distinct units, and only their keys stay here, so memory does not grow with
    the text of every commune's programs.
    """

    commune: Commune
    name: str  # the script's name: the program id, or the emergency's
    keys: tuple[str, ...]
    missing: tuple[str, ...] = ()
    plan: ProgramPlan | None = None


@dataclass(frozen=True, slots=True)
class DayPlan:
    """A day planned: the communes, the airable bulletins and their recordings, the plans.

    ``violations``: the broadcast policy's findings on the plans (``plan_day`` fills them); a
    program with a refusing violation is not built. Views of what will air read all of this.
    """

    date: dt.date
    communes: tuple[Commune, ...]
    bulletins: tuple[Bulletin, ...]
    recordings: dict[tuple[int, str], Recording]
    plans: tuple[ProgramPlan, ...]
    violations: tuple[guard.Violation, ...] = ()

    def refused(self) -> dict[str, guard.Violation]:
        """Program id → the violation that keeps it from being built (the first one)."""
        out: dict[str, guard.Violation] = {}
        for v in guard.refused(self.violations):
            out.setdefault(v.what, v)
        return out


@dataclass(frozen=True, slots=True)
class DayWork:
    """A day planned and composed, before any audio is made."""

    date: dt.date
    communes: tuple[Commune, ...]
    plans: tuple[ProgramPlan, ...]
    composed: tuple[Composed, ...]
    units: dict[str, RenderUnit]  # every distinct render unit of the day, first occurrence of each key
    failures: tuple[Failure, ...]
    missing: tuple[str, ...]
    policy_notes: tuple[str, ...] = ()  # rules broken but not refused (a required language missing)
    recomposed: tuple[str, ...] = ()  # the programs composed this time; the others' inputs had not changed

    def unique_units(self) -> list[RenderUnit]:
        """Every distinct render unit of the day, first occurrence of each key."""
        return list(self.units.values())


@dataclass
class _Rendered:
    segments: dict[str, Segment] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rendered: int = 0
    reused: int = 0

    def add(self, result: UnitResult) -> None:
        if result.segment is not None:
            self.segments[result.key] = result.segment
            if result.segment.reused:
                self.reused += 1
            else:
                self.rendered += 1
        else:
            self.errors[result.key] = result.error or "failed"
            log.error("%s", result.error)


@dataclass(frozen=True, slots=True)
class _Job:
    """One commune's part of a streaming run: its composed programs and how they are packaged."""

    commune: Commune
    composed: tuple[Composed, ...]
    package: Callable[[list[tuple[Composed, list[Segment]]]], PackageUnit]
    folders: tuple[str, ...]
    failure: str  # what a packaging failure is prefixed with
    always_deliver: bool  # a night pushes an endpoint even when its commune's packaging failed
    rank: int = 0  # how urgent its programs are (lower first)


@dataclass
class _Streamed:
    rendered: _Rendered = field(default_factory=_Rendered)
    failures: list[Failure] = field(default_factory=list)
    programs: list[Program] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    reached: list[Reached] = field(default_factory=list)


class Producer:
    """Turns requests into units, runs them, and records what happened."""

    def __init__(
        self,
        *,
        settings: Settings,
        deployment: Deployment,
        db: Database,
        runner: Runner | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.db = db
        self.runner = runner or make_runner(settings)
        self.progress = progress or (lambda phase, done, total: None)

    # --- shared parts ---------------------------------------------------------------

    @functools.cached_property
    def normalize(self) -> Callable[[str], str]:
        return spoken_form(self.settings)

    @functools.cached_property
    def catalog(self) -> Catalog:
        """voices/catalog.toml with the standard phrases approved on the web in place (docs/phrases.md)."""
        return effective_catalog(load_catalog(self.settings.voices_dir), self.db)

    @functools.cached_property
    def engines(self) -> EngineChain:
        return build_engine_chain(self.settings.tts, outbound=self.settings.outbound)

    @functools.cached_property
    def templates(self) -> compose_stage.TemplateSet:
        return compose_stage.TemplateSet.load(self.settings.templates_dir)

    @functools.cached_property
    def compose_inputs(self) -> str:
        """The digest of what every program's composition depends on besides its plan and recordings:
        the templates, the voice catalogue, its clips and the lexicon, the engine chain, the audio
        settings, and the code that composes (pipeline/composecache.py)."""
        import pipeline
        from pipeline import render, textnorm

        code = [
            Path(compose_stage.__file__),
            Path(render.__file__),
            *sorted(Path(textnorm.__file__).parent.glob("*.py")),
        ]
        voices = [self.settings.voices_dir / "catalog.toml", self.settings.voices_dir / "lexicon.vi.toml"]
        templates = sorted(p for p in self.settings.templates_dir.rglob("*") if p.is_file())
        clips = [self.catalog.clip_paths()[k] for k in sorted(self.catalog.clip_paths())]
        return digest(
            pipeline.__version__,
            files_digest(code + voices + templates + clips),
            self.engines.identity(),
            audio_identity(self.settings),
            self.settings.render.on_missing_recording,
            self.settings.tts.variant,
        )

    def _program_inputs(self, plan: ProgramPlan, recordings: dict[tuple[int, str], Recording], digests: Digests) -> str:
        """The digest of one program's inputs: its plan, the recordings it may use, the shared inputs."""
        ids = {i.bulletin.id for i in plan.items}
        used = sorted(
            (r for (bid, lang), r in recordings.items() if bid in ids and lang in plan.commune.languages),
            key=lambda r: (r.bulletin_id, r.language),
        )
        return digests(plan, used, self.compose_inputs)

    def _units(
        self, script: Script, recordings: dict[tuple[int, str], Recording]
    ) -> tuple[list[RenderUnit], list[str]]:
        units, errors = script_units(
            script,
            engines=self.engines,
            settings=self.settings,
            normalize=self.normalize,
            clips=self.catalog.clip_paths(),
            recordings=recordings,
            placeholders={c.key for c in self.catalog.clips if c.placeholder},
        )
        return units, [str(e) for e in errors]

    def _composed(
        self,
        commune: Commune,
        script: Script,
        recordings: dict[tuple[int, str], Recording],
        table: dict[str, RenderUnit],
        plan: ProgramPlan | None = None,
    ) -> tuple[Composed | None, list[str]]:
        """The script composed, its units entered in ``table`` (first of each key kept); or its errors."""
        units, errors = self._units(script, recordings)
        if errors:
            return None, errors
        keys = tuple(table.setdefault(u.key, u).key for u in units)  # one key string for every program
        return Composed(commune, script.name, keys, tuple(map(str, script.missing)), plan), []

    def _render(self, units: Iterable[RenderUnit], *, urgent: bool = False) -> _Rendered:
        """Run each distinct render unit once; the segments and the errors by key."""
        unique: dict[str, RenderUnit] = {}
        for u in units:
            unique.setdefault(u.key, u)
        out = _Rendered()
        done = 0

        def record(result: UnitResult) -> None:
            nonlocal done
            done += 1
            self.progress("render", done, len(unique))

        parallel = self.settings.render.workers or None
        for result in self.runner.run(list(unique.values()), parallel=parallel, urgent=urgent, on_result=record):
            out.add(result)
        run_store.record_segments(self.db, out.segments.values())
        return out

    @staticmethod
    def _segments(keys: Sequence[str], rendered: _Rendered) -> tuple[list[Segment], list[str]]:
        """The segments of the units ``keys`` in order, and the errors among them."""
        segments = [rendered.segments[k] for k in keys if k in rendered.segments]
        errors = [rendered.errors[k] for k in keys if k in rendered.errors]
        return segments, errors

    def _package(self, units: Sequence[PackageUnit], *, urgent: bool = False) -> dict[str, str | None]:
        """Run package units; the error of each commune (None when it was packaged)."""
        out: dict[str, str | None] = {}
        done = 0

        def record(result: UnitResult) -> None:
            nonlocal done
            done += 1
            self.progress("package", done, len(units))

        packaged: list[Program] = []
        for unit, result in zip(units, self.runner.run(units, urgent=urgent, on_result=record), strict=True):
            out[unit.commune.code] = None if result.ok else (result.error or "failed")
            if result.ok:
                packaged.extend(unit.programs)
        run_store.record_programs(self.db, packaged)
        return out

    def _deliver(
        self,
        targets: Sequence[tuple[Endpoint, Sequence[str]]],
        *,
        label: str,
        run_id: int | None,
        urgent: bool = False,
        on_delivery: OnDelivery | None = None,
        recheck: bool = False,
        reconnect: bool = False,
    ) -> list[Delivery]:
        """Deliver ``targets``; ``reconnect`` even where the records say the endpoint holds them,
        ``recheck`` also compares every file (neither the records nor the device's manifest trusted)."""

        def record(d: Delivery) -> None:
            run_store.record_delivery(self.db, d, run_id=run_id)
            if on_delivery:
                on_delivery(d)

        day = today(self.settings)
        # an emergency always connects: someone pressed "dispatch now", and a device may have lost it
        held = {} if recheck or reconnect or urgent else self._held(targets, label=label, day=day)
        for d in held.values():
            record(d)
        sent = push_folders(
            [(e, folders) for e, folders in targets if e.name not in held],
            label=label,
            settings=self.settings,
            today=day,
            runner=self.runner,
            urgent=urgent,
            on_done=record,
            check_files=recheck,
        )
        by_name = {d.endpoint: d for d in sent} | held
        deliveries = [by_name[e.name] for e, _ in targets if e.name in by_name]
        self._aired(targets, sent)
        return deliveries

    def _held(
        self, targets: Sequence[tuple[Endpoint, Sequence[str]]], *, label: str, day: dt.date
    ) -> dict[str, Delivery]:
        """Endpoints that, by the delivery records, already hold exactly what the outbox has for them.

        A delivery that connected less than ``deliver.recheck_hours`` ago and left the endpoint
        with the same signed manifests (and the same retention day) makes a reconnection
        pointless: the endpoint gets a record with 0 attempts instead. Emergencies, ``loa push
        --recheck``, ``--endpoint`` and ``trust_remote_manifest = false`` always connect.
        """
        cfg = self.settings.deliver
        if not cfg.recheck_hours or not cfg.trust_remote_manifest or not targets:
            return {}
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=cfg.recheck_hours)
        states = run_store.held_states(self.db, [e.name for e, _ in targets], since=since)
        held: dict[str, Delivery] = {}
        for endpoint, folders in targets:
            state = states.get(endpoint.name)
            expected = state and outbox_state(
                self.settings.outbox_dir, endpoint, folders, today=day, retention_days=cfg.retention_days
            )
            if state and state == expected:
                held[endpoint.name] = Delivery(
                    endpoint=endpoint.name,
                    commune=endpoint.commune,
                    program=label,
                    status="delivered",
                    attempts=0,
                    finished_at=utcnow(),
                    state=state,
                )
        return held

    def _aired(self, targets: Sequence[tuple[Endpoint, Sequence[str]]], deliveries: Sequence[Delivery]) -> None:
        """A ``program.aired`` webhook event for each program that reached an endpoint (once per program)."""
        if not self.settings.webhook:
            return
        from pipeline.publish.webhooks import program_aired

        delivered = {d.endpoint for d in deliveries if d.status == "delivered"}
        reached: dict[tuple[str, str], list[str]] = {}  # (commune, folder) → endpoints
        for endpoint, folders in targets:
            if endpoint.name in delivered:
                for folder in folders:
                    reached.setdefault((endpoint.commune, folder), []).append(endpoint.name)
        for (commune, folder), names in reached.items():
            try:
                manifest = mf.read(manifest_path(self.settings.outbox_dir, commune, folder, names[0]))
                for p in manifest.programs:
                    ids = [i.bulletin_id for i in p.items if i.bulletin_id is not None]
                    program_aired(
                        self.db, program_id=p.id, commune=commune, start=p.start, bulletin_ids=ids, endpoints=names
                    )
            except LoaError as exc:  # the delivery stands; the event is logged as lost
                log.error("%s %s: no program.aired event: %s", commune, folder, exc)

    def _stream(
        self,
        jobs: Sequence[_Job],
        units: dict[str, RenderUnit],
        *,
        label: str,
        run_id: int | None,
        started: float,
        urgent: bool = False,
        on_delivery: OnDelivery | None = None,
        recheck: bool = False,
    ) -> _Streamed:
        """Render, package and deliver as a dependency graph: each commune goes on the moment
        its own segments exist, while the others still render (``Runner.stream``)."""
        out = _Streamed()
        waiting = Waiting(
            {j.commune.code: [k for c in j.composed for k in c.keys] for j in jobs},
            {j.commune.code: j.rank for j in jobs},
        )
        jobs_by_code = {j.commune.code: j for j in jobs}
        packages: dict[str, PackageUnit] = {}
        arrivals = Arrivals()
        targets: list[tuple[Endpoint, Sequence[str]]] = []
        sent: list[Delivery] = []
        day = today(self.settings)
        counts = {"render": 0, "package": 0}

        def record(d: Delivery) -> None:
            out.deliveries.append(d)
            run_store.record_delivery(self.db, d, run_id=run_id)
            arrivals.arrived(d.commune, ok=d.status == "delivered", at=time.monotonic() - started)
            if on_delivery:
                on_delivery(d)

        def deliver(job: _Job) -> list[Unit]:
            mine = [(e, job.folders) for e in job.commune.endpoints]
            targets.extend(mine)
            arrivals.expect(job.commune.code, len(mine))
            held = {} if recheck or urgent else self._held(mine, label=label, day=day)
            for d in held.values():
                record(d)
            return [
                DeliverUnit(e, tuple(folders), label, day, recheck, collect_receipts=not urgent)
                for e, folders in mine
                if e.name not in held
            ]

        def package(code: str) -> list[Unit]:
            job = jobs_by_code[code]
            ready: list[tuple[Composed, list[Segment]]] = []
            for c in job.composed:
                segments, errors = self._segments(c.keys, out.rendered)
                if errors:
                    out.failures.extend(Failure(program_id(c.plan) if c.plan else c.name, e) for e in errors)
                else:
                    ready.append((c, segments))
            if not ready:
                return deliver(job) if job.always_deliver else []
            unit = job.package(ready)
            packages[unit.key] = unit
            return [unit]

        def then(result: UnitResult) -> list[Unit]:
            if result.kind == "render":
                out.rendered.add(result)
                counts["render"] += 1
                self.progress("render", counts["render"], len(units))
                return [u for code in waiting.done(result.key) for u in package(code)]
            if result.kind == "package":
                unit = packages[result.key]
                job = jobs_by_code[unit.commune.code]
                counts["package"] += 1
                self.progress("package", counts["package"], len(packages))
                if result.ok:
                    out.programs.extend(unit.programs)
                    run_store.record_programs(self.db, unit.programs)
                else:
                    out.failures.append(Failure(unit.commune.code, f"{job.failure}{result.error or 'failed'}"))
                return deliver(job) if result.ok or job.always_deliver else []
            if result.delivery is not None:
                sent.append(result.delivery)
                record(result.delivery)
            return []

        first: list[Unit] = [units[k] for k in waiting.order(units, lambda k: effort(units[k]))]
        first += [u for code in waiting.ready() for u in package(code)]
        limits = {"render": self.settings.render.workers, "deliver": self.settings.deliver.parallel}
        self.runner.stream(first, then=then, limits=limits, urgent=urgent)
        run_store.record_segments(self.db, out.rendered.segments.values())
        order = {e.name: i for i, e in enumerate(self.deployment.endpoints())}
        out.deliveries.sort(key=lambda d: order.get(d.endpoint, len(order)))
        out.reached = arrivals.reached
        self._aired(targets, sent)
        return out

    @contextmanager
    def _run(self, kind: str, day: dt.date | None) -> Iterator[_RunRecord]:
        """A run record that always ends: done, partial, or failed with the reason."""
        r = self.settings.runner
        run_store.reap_stale_runs(self.db, heartbeat_timeout_s=r.heartbeat_timeout_s)
        record = _RunRecord(run_store.start_run(self.db, kind, day))
        try:
            with run_store.RunHeartbeat(self.db, record.id, interval_s=r.heartbeat_s):
                yield record
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, LoaError) else f"{exc.__class__.__name__}: {exc}"
            run_store.finish_run(
                self.db, record.id, status="failed", counts=record.counts, failures=[{"what": kind, "error": reason}]
            )
            raise
        run_store.finish_run(self.db, record.id, status=record.status, counts=record.counts, failures=record.failures)

    # --- a day's programs -------------------------------------------------------------

    def plan_day(self, day: dt.date, *, commune: str | None = None, drafts: bool = False) -> DayPlan:
        """The programs ``day`` would air (every commune, or one), with operators' decisions honoured
        and the broadcast policy's findings (``DayPlan.violations``): what the build will do.
        ``drafts``: as if every draft were approved too (what readers must record for); the
        plans then carry drafts as approved, ``DayPlan.bulletins`` their true state."""
        communes = self._communes(commune)
        statuses = ("approved", "draft") if drafts else ("approved",)
        bulletins = bulletin_store.airable_bulletins(self.db, day, statuses=statuses)
        planned = self._plan(day, communes, [dataclasses.replace(b, status="approved") for b in bulletins])
        planned = dataclasses.replace(planned, bulletins=tuple(bulletins))
        violations = guard.check_plans(planned.plans, self.deployment, tz=self.settings.tz)
        return dataclasses.replace(planned, violations=tuple(violations))

    def _plan(self, day: dt.date, communes: tuple[Commune, ...], bulletins: Sequence[Bulletin]) -> DayPlan:
        ids = [b.id for b in bulletins if b.id is not None]
        recordings = current_recordings(self.db, ids)
        plans = plan_stage.plan_day(
            day,
            communes,
            bulletins=bulletins,
            recordings=recordings,
            spoken=self.normalize,
            decisions=decision_store.decisions(self.db, ids),
        )
        return DayPlan(day, communes, tuple(bulletins), recordings, tuple(plans))

    def compose_day(self, day: dt.date, *, commune: str | None = None) -> DayWork:
        """Plan and compose every program of ``day``: the scripts and the units their audio needs.

        A program the broadcast policy refuses (quiet hours, too long) is not composed; it is
        a failure naming the rule. A missing required language is reported, not refused.
        """
        planned = self.plan_day(day, commune=commune)
        communes, recordings = planned.communes, planned.recordings
        violations = planned.violations
        refused = {v.what: v for v in guard.refused(violations)}
        plans = [p for p in planned.plans if program_id(p) not in refused]
        composed: list[Composed] = []
        table: dict[str, RenderUnit] = {}
        failures = [
            Failure(v.what, f"refused by the broadcast policy ({v.rule}): {v.message}") for v in refused.values()
        ]
        missing: list[tuple[str, str]] = []  # (program, what is missing)
        cache = ComposeCache(self.settings.data_dir / "cache" / "composed")
        cache.prune(day)
        recomposed: list[str] = []
        digests = Digests()
        for plan in plans:
            pid = program_id(plan)
            key = self._program_inputs(plan, recordings, digests)
            kept = cache.get(day, key)
            found = cache.units(day, kept.keys, table) if kept is not None else None
            if kept is not None and found is not None:  # nothing it depends on changed: as it was
                table.update(found)
                keys = tuple(table[k].key for k in kept.keys)  # one key string for every program
                composed.append(Composed(plan.commune, kept.name, keys, kept.missing, plan))
                missing.extend((pid, m) for m in kept.missing)
                continue
            recomposed.append(pid)
            try:
                script = compose_stage.compose_script(
                    plan,
                    templates=self.templates,
                    catalog=self.catalog,
                    recordings=recordings,
                    on_missing=self.settings.render.on_missing_recording,
                )
                units, errors = self._units(script, recordings)
            except LoaError as exc:
                failures.append(Failure(pid, str(exc)))
                continue
            missing.extend((pid, str(m)) for m in script.missing)
            failures.extend(Failure(pid, e) for e in errors)
            if not errors:
                keys = tuple(table.setdefault(u.key, u).key for u in units)
                gaps = tuple(map(str, script.missing))
                composed.append(Composed(plan.commune, script.name, keys, gaps, plan))
                cache.put(day, key, CachedProgram(script.name, gaps, keys), units)
        notes = tuple(v.message for v in violations if not v.refuse)
        return DayWork(
            day,
            communes,
            tuple(plans),
            tuple(composed),
            table,
            tuple(failures),
            by_message(missing),
            notes,
            tuple(recomposed),
        )

    def build(self, day: dt.date, *, commune: str | None = None) -> BuildReport:
        """Compose, render, master and package every program of ``day`` into the outbox."""
        started = time.monotonic()
        work = self.compose_day(day, commune=commune)
        communes, plans, composed = work.communes, work.plans, work.composed
        failures, missing = list(work.failures), work.missing
        rendered = self._render(work.units.values())
        by_commune: dict[str, list[Program]] = {}
        for c in composed:
            assert c.plan is not None
            segments, errors = self._segments(c.keys, rendered)
            if errors:
                failures.extend(Failure(program_id(c.plan), e) for e in errors)
                continue
            by_commune.setdefault(c.commune.code, []).append(self._program(c.plan, segments, c.missing))
        folder = f"programs/{day.isoformat()}"
        package_units = [
            PackageUnit(
                commune=cm,
                folder=folder,
                programs=tuple(by_commune[cm.code]),
                timezone=self.deployment.timezone,
                valid_until=day_valid_until(day, self.settings.tz),
                date=day,
            )
            for cm in communes
            if by_commune.get(cm.code)
        ]
        programs: list[Program] = []
        errors_by_commune = self._package(package_units)
        for unit in package_units:
            error = errors_by_commune.get(unit.commune.code)
            if error is None:
                programs.extend(unit.programs)
            else:
                failures.append(
                    Failure(unit.commune.code, f"packaging {unit.commune.code} ({unit.commune.name}): {error}")
                )
        return BuildReport(
            date=day,
            programs=tuple(programs),
            failures=tuple(failures),
            deferred=deferral_lines(plans),
            missing=missing,
            segments_rendered=rendered.rendered,
            segments_reused=rendered.reused,
            seconds=time.monotonic() - started,
            policy_notes=work.policy_notes,
        )

    def _stream_day(
        self, day: dt.date, *, run_id: int, on_delivery: OnDelivery | None, recheck: bool
    ) -> tuple[BuildReport, list[Delivery]]:
        """Build and push ``day`` as one graph (``_stream``): the same bytes as ``build`` then ``push``.

        Communes whose programs carry the most urgent bulletins go first.
        """
        started = time.monotonic()
        work = self.compose_day(day)
        mine: dict[str, list[Composed]] = {}
        for c in work.composed:
            mine.setdefault(c.commune.code, []).append(c)

        def rank(commune: Commune) -> int:
            plans = [c.plan for c in mine.get(commune.code, ()) if c.plan is not None]
            return min((PRIORITIES.index(program_priority(p)) for p in plans), default=len(PRIORITIES))

        folder = f"programs/{day.isoformat()}"
        jobs = [
            _Job(
                commune=cm,
                composed=tuple(mine.get(cm.code, ())),
                package=functools.partial(self._day_package, day, folder, cm),
                folders=(folder,),
                failure=f"packaging {cm.code} ({cm.name}): ",
                always_deliver=True,
                rank=rank(cm),
            )
            for cm in sorted(work.communes, key=rank)
        ]
        out = self._stream(
            jobs, work.units, label=day.isoformat(), run_id=run_id, started=started,
            on_delivery=on_delivery, recheck=recheck,
        )  # fmt: skip
        report = BuildReport(
            date=day,
            programs=tuple(out.programs),
            failures=tuple(work.failures) + tuple(out.failures),
            deferred=deferral_lines(work.plans),
            missing=work.missing,
            segments_rendered=out.rendered.rendered,
            segments_reused=out.rendered.reused,
            seconds=time.monotonic() - started,
            policy_notes=work.policy_notes,
            reached=tuple(out.reached),
        )
        return report, out.deliveries

    def _day_package(
        self, day: dt.date, folder: str, commune: Commune, ready: list[tuple[Composed, list[Segment]]]
    ) -> PackageUnit:
        programs = []
        for c, segments in ready:
            assert c.plan is not None
            programs.append(self._program(c.plan, segments, c.missing))
        return PackageUnit(
            commune=commune,
            folder=folder,
            programs=tuple(programs),
            timezone=self.deployment.timezone,
            valid_until=day_valid_until(day, self.settings.tz),
            date=day,
        )

    def push(
        self,
        day: dt.date,
        *,
        endpoint: str | None = None,
        run_id: int | None = None,
        on_delivery: OnDelivery | None = None,
        recheck: bool = False,
    ) -> list[Delivery]:
        """Deliver the outbox of ``day`` to every endpoint (or one) and record each attempt.

        An endpoint that already holds the outbox's copy by its delivery records is not
        reconnected unless one endpoint is named; ``recheck`` connects to every endpoint and
        compares every file.
        """
        targets = day_targets(self.deployment, day, endpoint=endpoint)
        if endpoint is not None and not targets:
            raise NotFoundError(f"endpoint {endpoint}: not in the deployment; see `loa communes`")
        return self._deliver(
            targets,
            label=day.isoformat(),
            run_id=run_id,
            on_delivery=on_delivery,
            recheck=recheck,
            reconnect=endpoint is not None,
        )

    def run_day(
        self,
        day: dt.date,
        *,
        kind: str,
        build: bool = True,
        push: bool = True,
        commune: str | None = None,
        endpoint: str | None = None,
        on_delivery: OnDelivery | None = None,
        recheck: bool = False,
    ) -> tuple[int, BuildReport | None, list[Delivery], str]:
        """Build and/or push ``day`` inside one run record; (run id, build, deliveries, status)."""
        report: BuildReport | None = None
        deliveries: list[Delivery] = []
        with self._run(kind, day) as run:
            if build and push and commune is None and endpoint is None and self.settings.runner.streaming:
                report, deliveries = self._stream_day(day, run_id=run.id, on_delivery=on_delivery, recheck=recheck)
                push = build = False
            if build:
                report = self.build(day, commune=commune)
            if push:
                deliveries = self.push(day, endpoint=endpoint, run_id=run.id, on_delivery=on_delivery, recheck=recheck)
            failed = (report.failures if report else ()) or [d for d in deliveries if d.status != "delivered"]
            run.status = "partial" if failed else "done"
            run.counts = run_counts(report, deliveries)
            run.failures = ([asdict(f) for f in report.failures] if report else []) + [
                {"what": d.endpoint, "error": d.error} for d in deliveries if d.status != "delivered"
            ]
        return run.id, report, deliveries, run.status

    # --- an emergency ---------------------------------------------------------------

    def dispatch(self, bulletin_id: int) -> DispatchReport:
        """Emergency: compose, render, package and push one bulletin now to its communes' endpoints.

        Lands under ``emergency/<bulletin>/`` with ``"play": "now"``, the expiry and the
        replay times in each endpoint's manifest. Idempotent: dispatching again sends
        only what an endpoint lacks.
        """
        started = time.monotonic()
        b = bulletin_store.get_bulletin(self.db, bulletin_id)
        if b.priority != "emergency":
            raise UsageError(
                f"bulletin {bulletin_id}: priority is {b.priority}; only emergency bulletins are dispatched"
            )
        if b.status != "approved":
            raise UsageError(f"bulletin {bulletin_id}: it is {b.status}; approve it first (`loa bulletin approve`)")
        now = dt.datetime.now(self.settings.tz)
        if now.date() > b.valid_until:
            raise UsageError(f"bulletin {bulletin_id}: it expired on {b.valid_until}; nothing to dispatch")
        with self._run("dispatch", now.date()) as run:
            run.counts = {"bulletin": bulletin_id}
            report = self._dispatch(b, now, run, started)
        return dataclasses.replace(report, seconds=time.monotonic() - started)

    def _dispatch(self, b: Bulletin, now: dt.datetime, run: _RunRecord, started: float) -> DispatchReport:
        assert b.id is not None
        # The approval time, not the dispatch time, dates the program: dispatching again
        # produces the same manifest, so only what an endpoint lacks is sent.
        issued = (b.approved_at or now).astimezone(self.settings.tz)
        expires = dt.datetime.combine(b.valid_until + dt.timedelta(days=1), dt.time(0, 0), tzinfo=self.settings.tz)
        recordings = current_recordings(self.db, [b.id])
        failures: list[Failure] = []
        composed: list[Composed] = []
        table: dict[str, RenderUnit] = {}
        for commune in self.deployment.targeted(b.targets):
            try:
                script = compose_stage.compose_emergency(
                    b, commune, templates=self.templates, catalog=self.catalog, recordings=recordings, on_missing="skip"
                )
                done, errors = self._composed(commune, script, recordings, table)
            except LoaError as exc:
                failures.append(Failure(commune.code, str(exc)))
                continue
            failures.extend(Failure(script.name, e) for e in errors)
            if done is not None:
                composed.append(done)
        folder = f"emergency/{b.id}"
        package = functools.partial(self._emergency_package, b, issued, expires, folder)
        reached: tuple[Reached, ...] = ()
        if self.settings.runner.streaming:
            mine: dict[str, list[Composed]] = {}
            for c in composed:
                mine.setdefault(c.commune.code, []).append(c)
            jobs = [
                _Job(cm, tuple(cs), functools.partial(package, cm), (folder,), f"packaging {cm.code}: ", False)
                for cm, cs in ((cs[0].commune, cs) for cs in mine.values())
            ]
            out = self._stream(jobs, table, label=folder, run_id=run.id, started=started, urgent=True)
            rendered, programs, deliveries, reached = out.rendered, out.programs, out.deliveries, tuple(out.reached)
            failures.extend(out.failures)
        else:
            rendered = self._render(table.values(), urgent=True)
            package_units: list[PackageUnit] = []
            for c in composed:
                segments, errors = self._segments(c.keys, rendered)
                if errors:
                    failures.extend(Failure(c.name, e) for e in errors)
                    continue
                package_units.append(package(c.commune, [(c, segments)]))
            errors_by_commune = self._package(package_units, urgent=True)
            programs = []
            targets: list[tuple[Endpoint, list[str]]] = []
            for unit in package_units:
                error = errors_by_commune.get(unit.commune.code)
                if error is not None:
                    failures.append(Failure(unit.commune.code, f"packaging {unit.commune.code}: {error}"))
                    continue
                programs.extend(unit.programs)
                targets.extend((e, [folder]) for e in unit.commune.endpoints)
            deliveries = self._deliver(targets, label=folder, run_id=run.id, urgent=True)
        failed = bool(failures) or any(d.status != "delivered" for d in deliveries)
        run.status = "partial" if failed else "done"
        run.counts = {
            "bulletin": b.id,
            "segments_rendered": rendered.rendered,
            "segments_reused": rendered.reused,
            "programs": len(programs),
            "endpoints": len(deliveries),
            "delivered": sum(d.status == "delivered" for d in deliveries),
        }
        run.failures = [asdict(f) for f in failures] + [
            {"what": d.endpoint, "error": d.error} for d in deliveries if d.status != "delivered"
        ]
        return DispatchReport(
            run.id,
            b.id,
            tuple(programs),
            tuple(failures),
            tuple(deliveries),
            0.0,
            rendered.rendered,
            rendered.reused,
            reached,
        )

    def _emergency_package(
        self,
        b: Bulletin,
        issued: dt.datetime,
        expires: dt.datetime,
        folder: str,
        commune: Commune,
        ready: list[tuple[Composed, list[Segment]]],
    ) -> PackageUnit:
        programs = tuple(
            Program(
                id=c.name,
                commune=commune.code,
                date=issued.date(),
                slot="emergency",
                start=issued,
                priority="emergency",
                valid_until=b.valid_until,
                items=tuple(segments),
                kind="emergency",
                missing=c.missing,
            )
            for c, segments in ready
        )
        return PackageUnit(
            commune=commune,
            folder=folder,
            programs=programs,
            timezone=self.deployment.timezone,
            valid_until=expires,
            emergency_bulletin=b.id,
            emergency_title=b.title,
            replay=bulletin_replays(
                b,
                issued,
                tz=self.settings.tz,
                max_per_day=guard.policy_for(commune, self.deployment).max_replays_per_day,
            ),
        )

    def cancel(self, bulletin_id: int) -> DispatchReport:
        """A signed cancel of a dispatched emergency that was withdrawn, cancelled or superseded.

        Every endpoint that holds ``emergency/<bulletin>/`` gets a manifest with no programs, no
        replays and ``cancelled: true``, signed like any other, so a device that keeps replaying
        while offline stops at its next pull or push. Idempotent like a dispatch.
        """
        started = time.monotonic()
        b = bulletin_store.get_bulletin(self.db, bulletin_id)
        if b.priority != "emergency" or b.status not in ENDED:
            raise UsageError(
                f"bulletin {bulletin_id}: it is a {b.priority} bulletin, {b.status}; only a withdrawn, cancelled "
                "or superseded emergency is cancelled on the devices"
            )
        folder = f"emergency/{bulletin_id}"
        expires = dt.datetime.combine(b.valid_until + dt.timedelta(days=1), dt.time(0, 0), tzinfo=self.settings.tz)
        with self._run("cancel", dt.datetime.now(self.settings.tz).date()) as run:
            units = [
                PackageUnit(
                    commune=c,
                    folder=folder,
                    programs=(),
                    timezone=self.deployment.timezone,
                    valid_until=expires,
                    emergency_bulletin=bulletin_id,
                    emergency_title=b.title,
                    cancelled=True,
                )
                for c in self.deployment.communes
                if (self.settings.outbox_dir / c.code / folder).is_dir()
            ]
            errors = self._package(units, urgent=True)
            failures = [Failure(code, f"cancel of {folder}: {e}") for code, e in errors.items() if e is not None]
            targets = [(e, [folder]) for u in units if errors.get(u.commune.code) is None for e in u.commune.endpoints]
            deliveries = self._deliver(targets, label=folder, run_id=run.id, urgent=True)
            run.status = "partial" if failures or any(d.status != "delivered" for d in deliveries) else "done"
            run.counts = {"bulletin": bulletin_id, "cancelled": True, "endpoints": len(deliveries)}
            run.failures = [asdict(f) for f in failures] + [
                {"what": d.endpoint, "error": d.error} for d in deliveries if d.status != "delivered"
            ]
        return DispatchReport(run.id, bulletin_id, (), tuple(failures), tuple(deliveries), time.monotonic() - started)

    # --- a preview ------------------------------------------------------------------

    def preview_script(
        self, day: dt.date, commune: Commune, slot: str, *, draft: Bulletin | None = None
    ) -> tuple[ProgramPlan | None, Script | None]:
        """The plan and cue sheet one slot would air (None when the slot does not run that day).

        ``draft`` is planned as if it were approved, for previews before approval.
        """
        bulletins = [b for b in bulletin_store.airable_bulletins(self.db, day) if draft is None or b.id != draft.id]
        if draft is not None and draft.status != "withdrawn":
            bulletins.append(dataclasses.replace(draft, status="approved"))
        planned = self._plan(day, (commune,), bulletins)
        recordings, plans = planned.recordings, planned.plans
        plan = next((p for p in plans if p.slot.name == slot), None)
        if plan is None:
            return None, None
        script = compose_stage.compose_script(
            plan,
            templates=self.templates,
            catalog=self.catalog,
            recordings=recordings,
            on_missing=self.settings.render.on_missing_recording,
        )
        return plan, script

    def preview_audio(self, script: Script) -> Path:
        """Render the script's units (reusing the segment store) and join them into one MP3."""
        ids = sorted({c.bulletin_id for c in script.cues if c.bulletin_id is not None})
        recordings = current_recordings(self.db, ids)
        units, errors = self._units(script, recordings)
        if errors:
            raise RenderError(errors[0])
        segments, errors = self._segments([u.key for u in units], self._render(units))
        if errors:
            raise RenderError(errors[0])
        if not segments:
            raise RenderError(f"{script.name}: nothing to play")
        return joined_cache(self.settings).join(
            [s.path for s in segments],
            part_sha256=[s.sha256 for s in segments],
            tags=Id3Tags(title=f"Nghe thử {script.name}", album="Loa — nghe thử", language="vi"),
        )

    # --- helpers --------------------------------------------------------------------

    def _communes(self, code: str | None) -> tuple[Commune, ...]:
        if code is None:
            return self.deployment.communes
        found = self.deployment.commune(code)
        if found is None:
            raise NotFoundError(f"commune {code}: not in the deployment; see `loa communes`")
        return (found,)

    def _program(self, plan: ProgramPlan, segments: list[Segment], missing: tuple[str, ...]) -> Program:
        return Program(
            id=program_id(plan),
            commune=plan.commune.code,
            date=plan.date,
            slot=plan.slot.name,
            start=dt.datetime.combine(plan.date, plan.slot.start, tzinfo=self.settings.tz),
            priority=program_priority(plan),
            valid_until=plan.date,
            items=tuple(segments),
            kind=plan.kind,
            missing=missing,
        )


@dataclass
class _RunRecord:
    id: int
    status: str = "failed"
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[Any] = field(default_factory=list)


def push_folders(
    targets: Sequence[tuple[Endpoint, Sequence[str]]],
    *,
    label: str,
    settings: Settings,
    today: dt.date,
    runner: Runner | None = None,
    urgent: bool = False,
    on_done: OnDelivery | None = None,
    sleep: Callable[[float], None] = time.sleep,
    check_files: bool = False,
) -> list[Delivery]:
    """Deliver folders to endpoints, one ``DeliverUnit`` each, ``deliver.parallel`` at once.

    An ``urgent`` delivery (an emergency) leaves the devices' receipts for the next push.
    """
    units = [
        DeliverUnit(e, tuple(folders), label, today, check_files, collect_receipts=not urgent) for e, folders in targets
    ]

    def record(result: UnitResult) -> None:
        if result.delivery is not None and on_done:
            on_done(result.delivery)

    runner = runner or make_runner(settings, sleep=sleep)
    results = runner.run(units, parallel=settings.deliver.parallel, urgent=urgent, on_result=record)
    return [r.delivery for r in results if r.delivery is not None]


def spoken_form(settings: Settings) -> Callable[[str], str]:
    """Vietnamese text → its spoken form, with the deployment's lexicon; memoised."""
    path = settings.voices_dir / "lexicon.vi.toml"
    lexicon = load_lexicon(path) if path.is_file() else None
    variant = settings.tts.variant

    @functools.lru_cache(maxsize=8192)
    def run(text: str) -> str:  # the same bulletin is estimated and keyed for every commune
        return normalize(text, variant=variant, lexicon=lexicon)

    return run


def by_message(pairs: Iterable[tuple[str, str]], *, named: int = 3) -> tuple[str, ...]:
    """``(program, message)`` pairs as one line per message, naming the first few programs.

    A night of hundreds of communes repeats the same deferral or missing recording in every
    one: the report says it once, with how many programs it concerns.
    """
    programs: dict[str, list[str]] = {}
    for program, message in pairs:
        programs.setdefault(message, []).append(program)
    lines = []
    for message, ids in programs.items():
        more = f" and {len(ids) - named} more" if len(ids) > named else ""
        lines.append(f"{message} — {len(ids)} program{'s' if len(ids) > 1 else ''}: {', '.join(ids[:named])}{more}")
    return tuple(lines)


def deferral_lines(plans: Iterable[ProgramPlan]) -> tuple[str, ...]:
    """The day's deferrals, one line per bulletin and where it goes (the first program's reason)."""
    first: dict[tuple[int | None, str], str] = {}
    pairs: list[tuple[str, str]] = []
    for p in plans:
        for d in p.deferred:
            until = d.until_slot or "will not air again"
            key = (d.bulletin.id, until)
            message = first.setdefault(key, f"bulletin {d.bulletin.id} {d.bulletin.title} → {until} ({d.reason})")
            pairs.append((program_id(p), message))
    return by_message(pairs)


def program_priority(plan: ProgramPlan) -> str:
    """The most urgent priority among a program's bulletins ("normal" when it has none)."""
    return min([i.bulletin.priority for i in plan.items] or ["normal"], key=PRIORITIES.index)


def reached_summary(reached: Sequence[Reached]) -> dict[str, Any]:
    """A streaming run's arrivals in a report: first, median and last commune, and those not reached."""
    times = sorted(r.seconds for r in reached if r.seconds is not None)
    if not reached:
        return {}
    return {
        "communes_reached": len(times),
        "first_commune_reached_s": times[0] if times else None,
        "median_commune_reached_s": times[len(times) // 2] if times else None,
        "last_commune_reached_s": times[-1] if times else None,
        "communes_not_reached": sorted(r.commune for r in reached if r.seconds is None),
    }


def program_id(plan: ProgramPlan) -> str:
    return f"{plan.commune.code}/{plan.date.isoformat()}/{plan.slot.name}"


def run_counts(build: BuildReport | None, deliveries: Sequence[Delivery]) -> dict[str, Any]:
    counts: dict[str, Any] = build.summary() if build else {}
    counts.pop("failures", None)
    counts.update(
        endpoints=len(deliveries),
        delivered=sum(d.status == "delivered" for d in deliveries),
        bytes_sent=sum(d.bytes_sent for d in deliveries),
        files_sent=sum(d.files_sent for d in deliveries),
    )
    return counts


def today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.tz).date()


def tomorrow(settings: Settings) -> dt.date:
    return today(settings) + dt.timedelta(days=1)
