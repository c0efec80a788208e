"""Run the whole benchmark in one temporary directory and return the figures as a dict.

Order: workload → cold nightly → warm re-run → warm runs on ⅓ and ⅔ of the communes
(memory against commune count) → the limit → the naive way on a sample → the next day
of the campaign (one bulletin added, one expired). Every nightly and the naive way run in
child processes; the loopback sshd is the benchmark's own and is stopped at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.audio import ffmpeg_version
from pipeline.bench import limit as limit_mod
from pipeline.bench.sshd import BenchSshd
from pipeline.bench.workload import FULL, QUICK, Size, add_bulletins, copy_voices, make_project, schedules_toml
from pipeline.config import AudioSettings
from pipeline.deployment import load_deployment
from pipeline.errors import LoaError

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    quick: bool = False
    endpoints_per_commune: int | None = None
    communes: int | None = None  # a smaller province, e.g. for the test suite
    keep: Path | None = None  # keep the workload here instead of a temporary directory
    custom: Size | None = None  # a size of one's own (tests)

    def size(self) -> Size:
        size = self.custom or (QUICK if self.quick else FULL)
        if self.endpoints_per_commune is not None:
            size = replace(size, endpoints_per_commune=self.endpoints_per_commune)
        if self.communes is not None:
            size = replace(size, communes=self.communes, groups=min(size.groups, self.communes))
        return size


class BenchError(LoaError):
    """A measured run failed; the message says which and where its output is."""


def _child(module: str, *args: str, say: Say) -> dict[str, Any]:
    cmd = [sys.executable, "-m", module, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("failures"):
        say(f"warning: {result['failures']} failures in this run, e.g. {result['failure_examples'][:2]}")
    return result


def _machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        mem_gb = int(meminfo.read_text().split()[1]) / 1024 / 1024
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "ffmpeg": ffmpeg_version(AudioSettings()),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def run_bench(options: BenchOptions, *, repo: Path, say: Say = lambda _m: None) -> dict[str, Any]:
    """Build the workload, run every measurement, return the figures (see ``report``)."""
    size = options.size()
    machine = _machine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as tmp_name:
        tmp = options.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        server = BenchSshd(tmp / "sshd")
        server.start()
        try:
            result = _measure(size, tmp, server, repo=repo, say=say)
        finally:
            server.stop()
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


def _measure(size: Size, tmp: Path, server: BenchSshd, *, repo: Path, say: Say) -> dict[str, Any]:
    day = dt.date.today() + dt.timedelta(days=1)
    voices = copy_voices(repo, tmp / "voices")
    project = make_project(tmp / "project", size, server_toml=server.toml(), repo=repo, voices=voices)
    settings = project.settings
    t0 = time.monotonic()
    say(f"workload: {size.communes} communes, {size.bulletins} bulletins, recordings…")
    add_bulletins(project, size, range(size.bulletins), day=day, expiring=0, work=tmp / "incoming")
    workload_s = time.monotonic() - t0
    config = str(project.config)

    say("cold nightly…")
    cold = _child("pipeline.bench.stage", config, day.isoformat(), say=say)
    say(f"  {cold['wall_s']} s; warm re-run…")
    warm = _child("pipeline.bench.stage", config, day.isoformat(), say=say)

    say("memory against commune count (warm runs on ⅓ and ⅔ of the communes)…")
    rss = []
    for part in sorted({max(1, size.communes // 3), max(1, 2 * size.communes // 3)}):
        sub = tmp / f"project-{part}"
        sub_project = make_project(sub, size, server_toml=server.toml(), repo=repo, voices=voices, communes=part)
        r = _child("pipeline.bench.stage", str(sub_project.config), day.isoformat(), say=say)
        rss.append({"communes": part, "peak_rss_mb": r["peak_rss_mb"], "wall_s": r["wall_s"]})
    rss.append({"communes": size.communes, "peak_rss_mb": warm["peak_rss_mb"], "wall_s": warm["wall_s"]})

    say("limit: the unique audio spoken and encoded once…")
    deployment = load_deployment(settings.schedules_dir)
    jobs = limit_mod.unique_jobs(day, settings=settings, deployment=deployment)
    limit = limit_mod.encode_once_limit(jobs, settings=settings, work=tmp / "limit")
    floor_cold = limit_mod.bytes_floor(settings, deployment, day)

    sample = [c.code for c in deployment.communes[: size.naive_communes]]
    say(f"naive way on {len(sample)} communes…")
    naive = _child("pipeline.bench.naive", config, day.isoformat(), *sample, say=say)

    say("next day of the campaign: one bulletin added, one expired…")
    next_day = day + dt.timedelta(days=1)
    add_bulletins(
        project, size, range(size.bulletins, size.bulletins + 1), day=next_day, expiring=None, work=tmp / "incoming"
    )
    nxt = _child("pipeline.bench.stage", config, next_day.isoformat(), say=say)
    floor_next = limit_mod.bytes_floor(settings, deployment, next_day, before=day)

    # the naive way scaled from its sample to the whole day by minutes of audio
    scale = cold["audio_minutes"] * 60000 / naive["audio_ms"] if naive["audio_ms"] else 0.0
    naive_day = {
        "sample_communes": len(sample),
        "scaled_by": round(scale, 2),
        "sample": naive,
        "wall_s": round(naive["wall_s"] * scale, 1),
        "wall_s_ideal_parallel": round(naive["make_s"] * scale / (os.cpu_count() or 1) + naive["send_s"] * scale, 1),
        "bytes_sent": int(naive["bytes_sent"] * scale),
    }
    return {
        "size": {
            "name": size.name,
            "communes": size.communes,
            "groups": size.groups,
            "bulletins": size.bulletins,
            "endpoints": len(deployment.endpoints()),
            "speech_s": list(size.speech_s),
            "recording_s": list(size.recording_s),
            "slots_per_day": 2,
        },
        "date": day.isoformat(),
        "workload_s": round(workload_s, 1),
        "cold": cold,
        "warm": warm,
        "next_day": nxt,
        "rss_by_communes": rss,
        "limit": {**limit.as_dict(), "bytes_floor_cold": floor_cold, "bytes_floor_next_day": floor_next},
        "naive": naive_day,
        "ratios": _ratios(cold, warm, nxt, limit, naive_day, floor_cold, floor_next),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _ratios(
    cold: dict[str, Any],
    warm: dict[str, Any],
    nxt: dict[str, Any],
    limit: limit_mod.Limit,
    naive: dict[str, Any],
    floor_cold: int,
    floor_next: int,
) -> dict[str, Any]:
    return {
        "cold_vs_limit": _ratio(cold["wall_s"], limit.total_s),
        "cold_vs_encode_only": _ratio(cold["wall_s"], limit.encode_s),
        "naive_vs_cold": _ratio(naive["wall_s"], cold["wall_s"]),
        "naive_parallel_vs_cold": _ratio(naive["wall_s_ideal_parallel"], cold["wall_s"]),
        "warm_s": warm["wall_s"],
        "warm_bytes_sent": warm["bytes_sent"],
        "next_day_bytes_vs_naive": _ratio(nxt["bytes_sent"], naive["bytes_sent"]),
        "cold_bytes_vs_floor": _ratio(cold["bytes_sent"], floor_cold),
        "next_day_bytes_vs_floor": _ratio(nxt["bytes_sent"], floor_next),
        "peak_rss_mb": max(cold["peak_rss_mb"], warm["peak_rss_mb"], nxt["peak_rss_mb"]),
    }


__all__ = ["BenchError", "BenchOptions", "run_bench", "schedules_toml"]
