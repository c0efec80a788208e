"""One measured nightly run, in its own process: ``python -m pipeline.bench.stage CONFIG DATE``.

Runs ``pipeline.nightly.run_nightly`` — the same code as ``loa nightly`` — (or only
``build_day``, with ``--build-only``) and prints one
JSON object: wall time per stage, where the render time went (thread-seconds in TTS,
ingest and master), minutes of audio, segments rendered and reused, bytes sent, and the
peak RSS of this process and of its largest child (ffmpeg, espeak-ng). A fresh process
per run makes the peak memory that run's own.

The stage times come from thin timing wrappers around the orchestrator's steps
(``Producer.build``, ``_render``, ``_package``, ``push``); they change no behaviour and
are removed when the run ends.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import nightly, render
from pipeline.audio import ingest
from pipeline.config import load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Delivery
from pipeline.produce import Producer
from pipeline.store import open_database
from pipeline.tts.chain import EngineChain


class _Clock:
    """Seconds spent inside wrapped functions, summed over threads, and first-call times."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            with self._lock:
                self.first.setdefault(name, start)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.total[name] = self.total.get(name, 0.0) + time.monotonic() - start

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
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
    for obj, attr, name in targets:
        setattr(obj, attr, clock.wrap(name, getattr(obj, attr)))
    try:
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def steal_s() -> float:
    """Seconds of CPU stolen by the hypervisor so far, all cores (``/proc/stat``; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(
    config: Path, day: dt.date, *, build_only: bool = False, workers: int | None = None, reconnect: bool = False
) -> dict[str, Any]:
    """One nightly run (or only its build) of ``config`` for ``day``, measured.

    ``workers`` overrides ``render.workers``; ``reconnect`` sets ``deliver.recheck_hours = 0``
    (every endpoint is connected to, whatever the delivery records say).
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
    started = time.monotonic()
    try:
        with _timed(clock):
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
    plan_compose = clock.first.get("render", started) - clock.first.get("build", started)
    stages = {
        "plan_compose": plan_compose,
        "render": t.get("render", 0.0),
        "package": t.get("package", 0.0),
        "deliver": t.get("deliver", 0.0),
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
        "bytes_sent": sum(d.bytes_sent for d in deliveries),
        "connected": sum(d.attempts > 0 for d in deliveries),
        "files_sent": sum(d.files_sent for d in deliveries),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        # CPU time the hypervisor gave other guests while this run wanted it (a shared host)
        "steal_s": round(steal, 1),
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
    a = parser.parse_args(argv)
    result = measure(a.config, a.date, build_only=a.build_only, workers=a.workers, reconnect=a.reconnect)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
