"""One measured nightly run, in its own process: ``python -m pipeline.bench.stage CONFIG DATE``.

Runs ``pipeline.nightly.run_nightly`` — the same code as ``loa nightly`` — (or only
``build_day``, with ``--build-only``) and prints one
JSON object: wall time per stage, where the render time went (thread-seconds in TTS,
ingest and master), minutes of audio, segments rendered and reused, bytes sent, and the
peak RSS of this process and of its largest child (ffmpeg, espeak-ng). A fresh process
per run makes the peak memory that run's own.

The stage times come from thin timing wrappers around the orchestrator's steps
(``Producer.build``, ``_render``, ``_package``, ``push``, ``compose_day``) and around
``runner.execute`` per kind of unit; they change no behaviour and are removed when the run
ends. A streaming night's stages overlap: ``render`` is then the span from its first to its
last unit, ``package`` the packaging thread-seconds, and ``deliver`` only the tail after
the last package (the delivery that did not overlap the making).

``cpu_self_s`` is this process's own CPU time during the run (the orchestrator's, without
the interpreter's start and the imports, and without ffmpeg and the other children that
``cpu_s`` counts); ``--no-compose-cache`` composes every program again, as a night did
before composed programs were kept (a benchmark switch, no setting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pipeline import compose as compose_stage
from pipeline import nightly, render
from pipeline import runner as runner_mod
from pipeline.audio import ingest
from pipeline.composecache import CachedProgram, ComposeCache
from pipeline.config import load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Delivery
from pipeline.produce import Producer
from pipeline.store import open_database
from pipeline.tts.chain import EngineChain
from pipeline.units import kind_of


class _Clock:
    """Seconds spent inside wrapped functions, summed over threads, and first-call and last-return times."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def units(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``runner.execute`` timed per kind of unit (``unit:render``…): a streaming night's stages overlap."""

        def timed(unit: Any, *args: Any, **kwargs: Any) -> Any:
            return self.wrap(f"unit:{kind_of(unit)}", fn)(unit, *args, **kwargs)

        return timed

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            with self._lock:
                self.first.setdefault(name, start)
                self.calls[name] = self.calls.get(name, 0) + 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    end = time.monotonic()
                    self.total[name] = self.total.get(name, 0.0) + end - start
                    self.last[name] = max(self.last.get(name, end), end)

        return timed


@contextmanager
def _timed(clock: _Clock) -> Iterator[None]:
    targets: list[tuple[Any, str, str]] = [
        (Producer, "build", "build"),
        (Producer, "_render", "render"),
        (Producer, "_package", "package"),
        (Producer, "push", "deliver"),
        (render, "master_segment", "master"),
        (ingest, "ingest_audio", "ingest"),
        (EngineChain, "synthesize", "tts"),
    ]
    targets.append((Producer, "compose_day", "compose"))
    targets.append((compose_stage, "compose_script", "compose_script"))
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
    for obj, attr, name in targets:
        setattr(obj, attr, clock.wrap(name, getattr(obj, attr)))
    saved.append((runner_mod, "execute", runner_mod.execute))
    runner_mod.execute = clock.units(runner_mod.execute)
    try:
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def steal_s() -> float:
    """Seconds of CPU stolen by the hypervisor so far, all cores (``/proc/stat``; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@contextmanager
def _no_compose_cache() -> Iterator[None]:
    """Every program composed again: ``ComposeCache.get`` finds nothing (this process only; a bench switch)."""
    saved = ComposeCache.get

    def nothing(self: ComposeCache, day: dt.date, key: str) -> CachedProgram | None:
        return None

    ComposeCache.get = nothing  # type: ignore[method-assign]
    try:
        yield
    finally:
        ComposeCache.get = saved  # type: ignore[method-assign]


def measure(
    config: Path,
    day: dt.date,
    *,
    build_only: bool = False,
    workers: int | None = None,
    reconnect: bool = False,
    compose_cache: bool = True,
) -> dict[str, Any]:
    """One nightly run (or only its build) of ``config`` for ``day``, measured.

    ``workers`` overrides ``render.workers``; ``reconnect`` sets ``deliver.recheck_hours = 0``
    (every endpoint is connected to, whatever the delivery records say); without
    ``compose_cache`` every program is composed again, as before composed programs were kept.
    """
    settings = load_settings(config, environ={})
    if workers is not None:
        settings = settings.model_copy(update={"render": settings.render.model_copy(update={"workers": workers})})
    if reconnect:
        settings = settings.model_copy(update={"deliver": settings.deliver.model_copy(update={"recheck_hours": 0})})
    deployment = load_deployment(settings.schedules_dir)
    db = open_database(settings.db_url)
    clock = _Clock()
    steal = steal_s()
    self_cpu = _self_cpu_s()
    started = time.monotonic()
    try:
        with _timed(clock), nullcontext() if compose_cache else _no_compose_cache():
            if build_only:
                build = nightly.build_day(day, settings=settings, deployment=deployment, db=db)
                deliveries: tuple[Delivery, ...] = ()
            else:
                report = nightly.run_nightly(day, settings=settings, deployment=deployment, db=db)
                build, deliveries = report.build, report.deliveries
    finally:
        db.close()
    wall = time.monotonic() - started
    steal = steal_s() - steal
    t = clock.total
    if "build" in clock.first or build_only:  # phase by phase
        plan_compose = clock.first.get("render", started) - clock.first.get("build", started)
        stages = {
            "plan_compose": plan_compose,
            "render": t.get("render", 0.0),
            "package": t.get("package", 0.0),
            "deliver": t.get("deliver", 0.0),
        }
    else:  # streaming: render spans its first to last unit; deliver is the tail after the last package
        first, last = clock.first, clock.last
        made = max(last.get("unit:package", started), last.get("unit:render", started))
        stages = {
            "plan_compose": t.get("compose", 0.0),
            "render": last.get("unit:render", started) - first.get("unit:render", started),
            "package": t.get("unit:package", 0.0),
            "deliver": max(0.0, started + wall - made) if deliveries else 0.0,
        }
    stages["other"] = max(0.0, wall - sum(stages.values()))
    return {
        "date": day.isoformat(),
        "communes": len(deployment.communes),
        "endpoints": len(deliveries),
        "programs": len(build.programs),
        "failures": len(build.failures) + sum(d.status != "delivered" for d in deliveries),
        "failure_examples": [f.error for f in build.failures[:3]]
        + [d.error or "" for d in deliveries if d.status != "delivered"][:3],
        "wall_s": round(wall, 2),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "render_thread_s": {k: round(t.get(k, 0.0), 2) for k in ("tts", "ingest", "master")},
        "audio_minutes": round(build.audio_ms / 60000, 1),
        "segments_rendered": build.segments_rendered,
        "segments_reused": build.segments_reused,
        "programs_composed": clock.calls.get("compose_script", 0),  # not taken from the kept composed programs
        # a streaming night: when the first and the last commune's programs reached all their endpoints
        "first_commune_reached_s": build.summary().get("first_commune_reached_s"),
        "last_commune_reached_s": build.summary().get("last_commune_reached_s"),
        "bytes_sent": sum(d.bytes_sent for d in deliveries),
        "connected": sum(d.attempts > 0 for d in deliveries),
        "files_sent": sum(d.files_sent for d in deliveries),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        # CPU time the hypervisor gave other guests while this run wanted it (a shared host)
        "steal_s": round(steal, 1),
        # this process alone: the orchestrator's own work (with the Celery runner, not the units')
        "cpu_self_s": round(_self_cpu_s() - self_cpu, 2),  # during the run: no interpreter start, no imports
        "compose_cache": compose_cache,
        "cpu_s": round(
            sum(
                resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            ),
            1,
        ),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.stage")
    parser.add_argument("config", type=Path)
    parser.add_argument("date", type=dt.date.fromisoformat)
    parser.add_argument("--build-only", action="store_true", help="build, do not push")
    parser.add_argument("--workers", type=int, help="render.workers for this run")
    parser.add_argument("--reconnect", action="store_true", help="connect to every endpoint (recheck_hours 0)")
    parser.add_argument(
        "--no-compose-cache", action="store_true", help="compose every program again (kept ones are not looked up)"
    )
    a = parser.parse_args(argv)
    result = measure(
        a.config,
        a.date,
        build_only=a.build_only,
        workers=a.workers,
        reconnect=a.reconnect,
        compose_cache=not a.no_compose_cache,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
