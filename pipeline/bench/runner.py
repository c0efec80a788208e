"""Run the whole benchmark in one temporary directory and return the figures as a dict.

Order: workload → cold nightly → its byte floor sent once by OpenSSH's sftp → warm
re-run (trusting the delivery records) → warm re-run connecting to every endpoint → the
limit → the naive way on a sample → the next day of the campaign (one bulletin added, one
expired) with its own limit and send → memory against commune count (warm builds of ⅓, 1
and 5× the communes; the largest built warm again composing every program anew) → render
on 1 and 2 workers, in process and through Celery with real Redis and ``loa worker``
processes → a cold emergency dispatch to every commune, N times, each on a fresh
deployment → the same once after the night's build. Every run of Loa happens in a child
process; the loopback sshd, redis-server and the workers are the benchmark's own and are
stopped at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.audio.ffmpeg import ffmpeg_version
from pipeline.bench import limit as limit_mod
from pipeline.bench.celery import loa_workers, process_cpu_s, redis_server
from pipeline.bench.emergency import measure_dispatch, measure_dispatches
from pipeline.bench.errors import BenchError
from pipeline.bench.send_limit import send_once_limit
from pipeline.bench.sshd import BenchSshd, bench_dir
from pipeline.bench.workload import FULL, QUICK, Size, add_bulletins, copy_voices, make_project, schedules_toml
from pipeline.config import AudioSettings
from pipeline.deployment import load_deployment

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    quick: bool = False
    endpoints_per_commune: int | None = None
    communes: int | None = None  # a smaller province, e.g. for the test suite
    keep: Path | None = None  # keep the workload here instead of a temporary directory
    custom: Size | None = None  # a size of one's own (tests)
    emergency_runs: int | None = None  # cold emergency dispatches, each on a fresh deployment (10; quick: 2)

    def dispatch_runs(self) -> int:
        if self.emergency_runs is not None:
            return self.emergency_runs
        return 2 if self.quick or self.custom is not None else 10

    def size(self) -> Size:
        size = self.custom or (QUICK if self.quick else FULL)
        if self.endpoints_per_commune is not None:
            size = replace(size, endpoints_per_commune=self.endpoints_per_commune)
        if self.communes is not None:
            size = replace(size, communes=self.communes, groups=min(size.groups, self.communes))
        return size


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
    with bench_dir(options.keep, prefix="loa-bench-") as (tmp, server):
        result = _measure(size, tmp, server, repo=repo, say=say, emergency_runs=options.dispatch_runs())
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


def _stage(config: str | Path, day: dt.date, *flags: str, say: Say) -> dict[str, Any]:
    return _child("pipeline.bench.stage", str(config), day.isoformat(), *flags, say=say)


def _measure(size: Size, tmp: Path, server: BenchSshd, *, repo: Path, say: Say, emergency_runs: int) -> dict[str, Any]:
    day = dt.date.today() + dt.timedelta(days=1)
    next_day = day + dt.timedelta(days=1)
    voices = copy_voices(repo, tmp / "voices")
    project = make_project(tmp / "project", size, server_toml=server.toml(), repo=repo, voices=voices)
    settings = project.settings
    deployment = load_deployment(settings.schedules_dir)
    t0 = time.monotonic()
    say(f"workload: {size.communes} communes, {size.bulletins} bulletins, recordings…")
    add_bulletins(project, size, range(size.bulletins), day=day, expiring=0, work=tmp / "incoming")
    workload_s = time.monotonic() - t0
    config = project.config

    say("cold nightly…")
    cold = _stage(config, day, say=say)
    say(f"  {cold['wall_s']} s; sending the same floor once with OpenSSH's sftp…")
    send_cold = send_once_limit(settings, deployment, day, work=tmp / "send-limit")
    say(f"  {send_cold.seconds:.1f} s; warm re-run…")
    warm = _stage(config, day, say=say)
    say(f"  {warm['wall_s']} s; warm re-run connecting to every endpoint…")
    warm_connected = _stage(config, day, "--reconnect", say=say)

    say("limit: the unique audio spoken and encoded once…")
    jobs = limit_mod.unique_jobs(day, settings=settings, deployment=deployment)
    limit = limit_mod.encode_once_limit(jobs, settings=settings, work=tmp / "limit", one_core_too=True)
    floor_cold = limit_mod.bytes_floor(settings, deployment, day)

    say("the cold making alone: the same day built (no delivery) on an empty segment store, composing again…")
    making = _cold_making(size, tmp, server, repo=repo, voices=voices, day=day, say=say)

    sample = [c.code for c in deployment.communes[: size.naive_communes]]
    say(f"naive way on {len(sample)} communes…")
    naive = _child("pipeline.bench.naive", str(config), day.isoformat(), *sample, say=say)

    say("next day of the campaign: one bulletin added, one expired…")
    add_bulletins(
        project, size, range(size.bulletins, size.bulletins + 1), day=next_day, expiring=None, work=tmp / "incoming"
    )
    known = {j.key for j in jobs}
    changed = [
        j for j in limit_mod.unique_jobs(next_day, settings=settings, deployment=deployment) if j.key not in known
    ]
    limit_next = limit_mod.encode_once_limit(changed, settings=settings, work=tmp / "limit-next")
    say("  its making (a build, no delivery)…")
    nxt_making = _stage(config, next_day, "--build-only", say=say)
    say(f"  {nxt_making['wall_s']} s; its night (the programs made, delivered)…")
    nxt = _stage(config, next_day, say=say)
    floor_next = limit_mod.bytes_floor(settings, deployment, next_day, before=day)
    send_next = send_once_limit(settings, deployment, next_day, before=day, work=tmp / "send-limit-next")

    say("memory against commune count (warm builds)…")
    rss = _rss_by_communes(size, tmp, server, repo=repo, voices=voices, day=day, say=say)

    say("render on 1 and on 2 workers (cold builds of a few communes)…")
    scaling = _workers_scaling(size, tmp, server, repo=repo, voices=voices, day=day, say=say)
    say("the same through Celery: real Redis, 1 and 2 `loa worker` processes…")
    celery = _celery_scaling(size, tmp, server, repo=repo, voices=voices, day=day, say=say)

    say(f"emergency dispatch to {size.communes} communes (one endpoint each, cold), {emergency_runs} runs…")
    emergency_runs_ = measure_dispatches(
        tmp / "emergency",
        emergency_runs,
        communes=size.communes,
        server_toml=server.toml(),
        repo=repo,
        voices=voices,
        say=say,
    )
    emergency = emergency_runs_["runs"][0]
    say("emergency dispatch after the night's build (the greetings already made)…")
    emergency_after_night = measure_dispatch(
        tmp / "emergency-night",
        communes=size.communes,
        server_toml=server.toml(),
        repo=repo,
        voices=voices,
        after_night=True,
    )

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
    result = {
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
        "warm_connected": warm_connected,
        "next_day": nxt,
        "cold_making": making,
        "next_day_making": nxt_making,
        "rss_by_communes": rss,
        "workers_scaling": scaling,
        "celery_scaling": celery,
        "emergency": emergency,  # the first of the cold runs
        "emergency_runs": emergency_runs_,
        "emergency_after_night": emergency_after_night,
        "limit": {**limit.as_dict(), "bytes_floor_cold": floor_cold, "bytes_floor_next_day": floor_next},
        "limit_next_day": limit_next.as_dict(),
        "send_limit": {"cold": send_cold.as_dict(), "next_day": send_next.as_dict()},
        "naive": naive_day,
    }
    result["ratios"] = _ratios(result)
    return result


def _rss_by_communes(
    size: Size, tmp: Path, server: BenchSshd, *, repo: Path, voices: Path, day: dt.date, say: Say
) -> list[dict[str, Any]]:
    """Peak RSS of a warm ``loa build`` of ⅓, all and many more communes (sharing the data directory).

    The larger deployment (``size.many_communes``, 500 for the full workload) is built once
    first: its new communes' greetings are rendered, the bulletins come from the segment store.
    """
    out = []
    many = size.many_communes if size.many_communes > size.communes else 5 * size.communes
    for part in sorted({max(1, size.communes // 3), size.communes, many}):
        sub = make_project(
            tmp / f"project-{part}", size, server_toml=server.toml(), repo=repo, voices=voices, communes=part
        )
        if part > size.communes:
            say(f"  {part} communes: first build (their greetings)…")
            _stage(sub.config, day, "--build-only", say=say)
        r = _stage(sub.config, day, "--build-only", say=say)
        say(f"  {part} communes: {r['peak_rss_mb']} MB, {r['wall_s']} s")
        row = {
            "communes": part,
            "peak_rss_mb": r["peak_rss_mb"],
            "wall_s": r["wall_s"],
            "plan_compose_s": r["stages_s"]["plan_compose"],
            "cpu_self_s": r["cpu_self_s"],
            "programs": r["programs"],
            "programs_composed": r["programs_composed"],
        }
        if part == many:  # the same warm build composing every program again, as before composed programs were kept
            u = _stage(sub.config, day, "--build-only", "--no-compose-cache", say=say)
            say(f"  {part} communes composed again: plan+compose {u['stages_s']['plan_compose']} s")
            row |= {
                "uncached_plan_compose_s": u["stages_s"]["plan_compose"],
                "uncached_wall_s": u["wall_s"],
                "uncached_cpu_self_s": u["cpu_self_s"],
                "uncached_peak_rss_mb": u["peak_rss_mb"],
                "uncached_programs_composed": u["programs_composed"],
            }
        out.append(row)
    return out


def _cold_making(
    size: Size, tmp: Path, server: BenchSshd, *, repo: Path, voices: Path, day: dt.date, say: Say
) -> dict[str, Any]:
    """The cold night's making without its delivery: a ``loa build`` of the same day on an empty
    segment store, composing every program again. In a streaming night delivery runs beside
    the making and, over loopback, takes its share of the same cores (both ends of every SSH
    session); this run is the making a real uplink would leave."""
    sub = make_project(tmp / "project-making", size, server_toml=server.toml(), repo=repo, voices=voices)
    with sub.config.open("a", encoding="utf-8") as f:
        f.write(f'[runner]\nsegments_dir = "{tmp / "segments-making"}"\n')
    r = _stage(sub.config, day, "--build-only", "--no-compose-cache", say=say)
    say(f"  {r['wall_s']} s, {r['segments_rendered']} segments")
    return r


def _workers_scaling(
    size: Size, tmp: Path, server: BenchSshd, *, repo: Path, voices: Path, day: dt.date, say: Say
) -> list[dict[str, Any]]:
    """A cold ``loa build`` of a tenth of the communes on 1 and on 2 render workers, each on an empty segment store."""
    part = max(1, size.communes // 10)
    out = []
    for workers in (1, 2):
        sub = make_project(
            tmp / f"project-w{workers}", size, server_toml=server.toml(), repo=repo, voices=voices, communes=part
        )
        with sub.config.open("a", encoding="utf-8") as f:
            f.write(f'[runner]\nsegments_dir = "{tmp / f"segments-w{workers}"}"\n')
        r = _stage(sub.config, day, "--build-only", "--workers", str(workers), say=say)
        say(f"  {workers} worker(s): {r['wall_s']} s, {r['cpu_s']} CPU s")
        out.append(
            {
                "workers": workers,
                "communes": part,
                "wall_s": r["wall_s"],
                "render_s": r["stages_s"]["render"],
                "cpu_s": r["cpu_s"],
                "segments_rendered": r["segments_rendered"],
            }
        )
    return out


def _celery_scaling(
    size: Size, tmp: Path, server: BenchSshd, *, repo: Path, voices: Path, day: dt.date, say: Say
) -> list[dict[str, Any]]:
    """The same cold build as ``_workers_scaling`` through the Celery runner: real Redis, 1 then 2 ``loa worker``.

    Each worker runs one unit at a time; each run has its own redis-server and an empty
    segment store. ``cpu_self_s`` is the orchestrator's own CPU, ``redis_cpu_s`` Redis's and
    ``workers_cpu_s`` the workers' with their children (ffmpeg, espeak-ng).
    """
    part = max(1, size.communes // 10)
    out = []
    for workers in (1, 2):
        with redis_server(tmp / f"redis-c{workers}") as redis:
            sub = make_project(
                tmp / f"project-c{workers}", size, server_toml=server.toml(), repo=repo, voices=voices, communes=part
            )
            with sub.config.open("a", encoding="utf-8") as f:
                f.write(
                    f'[runner]\nkind = "celery"\nbroker_url = "{redis.url}"\n'
                    f'segments_dir = "{tmp / f"segments-c{workers}"}"\n'
                )
            with loa_workers(sub.config, workers) as procs:
                redis_cpu = process_cpu_s(redis.pid)
                r = _stage(sub.config, day, "--build-only", say=say)
                redis_cpu = process_cpu_s(redis.pid) - redis_cpu
        say(f"  Celery, {workers} worker(s): {r['wall_s']} s, orchestrator {r['cpu_self_s']} CPU s")
        out.append(
            {
                "workers": workers,
                "communes": part,
                "wall_s": r["wall_s"],
                "render_s": r["stages_s"]["render"],
                "cpu_self_s": r["cpu_self_s"],
                "redis_cpu_s": round(redis_cpu, 1),
                "workers_cpu_s": procs.cpu_s,
                "segments_rendered": r["segments_rendered"],
                "failures": r["failures"],
            }
        )
    return out


def _emergency_ratios(em: dict[str, Any]) -> dict[str, Any]:
    """Shares of the cold emergency runs that met each target, and how the report shows them."""
    n = em["n"]

    def span(lo: float | None, hi: float | None) -> str:
        return "n/a" if lo is None or hi is None else f"{lo:.1f}–{hi:.1f} s"

    return {
        "emergency_runs_under_target": _ratio(em["under_target"], n),
        "emergency_runs_first_under_target": _ratio(em["first_under_target"], n),
        "shown": {
            "emergency_runs_under_target": (
                f"{em['under_target']} of {n} (range {span(em['wall_min_s'], em['wall_max_s'])})"
            ),
            "emergency_runs_first_under_target": (
                f"{em['first_under_target']} of {n} (range {span(em['first_min_s'], em['first_max_s'])})"
            ),
        },
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _ratios(r: dict[str, Any]) -> dict[str, Any]:
    cold, warm, nxt, naive = r["cold"], r["warm"], r["next_day"], r["naive"]
    limit, limit_next, send = r["limit"], r["limit_next_day"], r["send_limit"]
    making = r["cold_making"]["wall_s"]
    nxt_making = r["next_day_making"]["wall_s"]
    rss = [x["peak_rss_mb"] for x in r["rss_by_communes"]]  # by commune count, ascending
    scaling = {x["workers"]: x for x in r["workers_scaling"]}
    celery = {x["workers"]: x for x in r.get("celery_scaling", [])}
    first = cold.get("first_commune_reached_s")
    many = r["rss_by_communes"][-1]
    return {
        "cold_vs_limit": _ratio(cold["wall_s"], limit["total_s"]),
        "cold_vs_limit_one_core": _ratio(cold["wall_s"], limit["total_one_core_s"] or 0.0),
        "cold_making_vs_limit": _ratio(making, limit["total_s"]),
        "cold_streamed_making_vs_limit": _ratio(cold["wall_s"] - cold["stages_s"]["deliver"], limit["total_s"]),
        "cold_vs_limit_and_send": _ratio(cold["wall_s"], limit["total_s"] + send["cold"]["seconds"]),
        "cold_deliver_vs_send": _ratio(cold["wall_s"] - making, send["cold"]["seconds"]),
        "naive_vs_cold": _ratio(naive["wall_s"], cold["wall_s"]),
        "naive_parallel_vs_cold": _ratio(naive["wall_s_ideal_parallel"], cold["wall_s"]),
        "warm_s": warm["wall_s"],
        "warm_bytes_sent": warm["bytes_sent"],
        "warm_connected_s": r["warm_connected"]["wall_s"],
        "next_day_bytes_vs_floor": _ratio(nxt["bytes_sent"], limit["bytes_floor_next_day"]),
        "next_day_bytes_vs_naive": _ratio(nxt["bytes_sent"], naive["bytes_sent"]),
        "next_day_making_vs_limit": _ratio(nxt_making, limit_next["total_s"]),
        "next_day_vs_limit_and_send": _ratio(
            nxt_making + nxt["wall_s"], limit_next["total_s"] + send["next_day"]["seconds"]
        ),
        "cold_bytes_vs_floor": _ratio(cold["bytes_sent"], limit["bytes_floor_cold"]),
        # a streaming night: the first commune's programs on all its endpoints, against the whole night
        "first_endpoint_vs_cold_wall": _ratio(first, cold["wall_s"]) if first is not None else None,
        "rss_many_vs_all": _ratio(rss[-1], rss[-2]) if len(rss) >= 2 else None,
        # the largest deployment built warm: nothing changed, composed programs kept ÷ composed again
        "many_plan_compose_cached_vs_uncached": (
            _ratio(many["plan_compose_s"], many["uncached_plan_compose_s"])
            if "uncached_plan_compose_s" in many
            else None
        ),
        "many_plan_compose_s": many["plan_compose_s"],
        "many_plan_compose_uncached_s": many.get("uncached_plan_compose_s"),
        "many_cpu_self_s": many["cpu_self_s"],
        "many_cpu_self_uncached_s": many.get("uncached_cpu_self_s"),
        "peak_rss_mb": max(cold["peak_rss_mb"], warm["peak_rss_mb"], nxt["peak_rss_mb"]),
        "emergency_s": r["emergency"]["wall_s"],
        **_emergency_ratios(r["emergency_runs"]),
        "emergency_after_night_s": r["emergency_after_night"]["wall_s"],
        "workers_2_vs_1": _ratio(scaling[1]["render_s"], scaling[2]["render_s"]) if len(scaling) == 2 else None,
        "celery_2_vs_1": _ratio(celery[1]["render_s"], celery[2]["render_s"]) if len(celery) == 2 else None,
        "celery_2_vs_1_wall": _ratio(celery[1]["wall_s"], celery[2]["wall_s"]) if len(celery) == 2 else None,
    }


__all__ = ["BenchError", "BenchOptions", "run_bench", "schedules_toml"]
