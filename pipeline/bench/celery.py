"""The Celery runner's cost per unit against the in-process runner (``loa bench --runner-overhead N``).

Starts its own redis-server on a free loopback port and `loa worker` processes, then runs
the same render units (pauses: one ffmpeg call each when new, a store look-up when
reused) through the in-process runner and through Celery with 1 and 2 workers:

* cold: every unit is new (a fresh key set per runner), so each one runs ffmpeg;
* warm: every unit is already in the store, so what is left is the runner's own cost.

``redis_server`` and ``loa_workers`` start and always stop those processes; ``runner``
uses them too for the province build through Celery (``loa bench``'s distributed case).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.bench.children import stop_child
from pipeline.bench.errors import BenchError
from pipeline.bench.sshd import free_port
from pipeline.config import load_settings
from pipeline.runner import InProcessRunner, Runner, WorkContext
from pipeline.runner_celery import CeleryRunner, make_app
from pipeline.units import RenderUnit

REPO = Path(__file__).resolve().parents[2]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process so far (``/proc/<pid>/stat``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class Redis:
    url: str
    pid: int


@contextlib.contextmanager
def redis_server(workdir: Path, *, start_timeout_s: float = 30.0) -> Iterator[Redis]:
    """A redis-server of its own on a free loopback port, no persistence, stopped on leaving."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(workdir / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise BenchError(f"redis-server on 127.0.0.1:{port} exited ({proc.returncode}); see {workdir}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"redis-server on 127.0.0.1:{port} did not listen within {start_timeout_s:g} s")
            time.sleep(0.1)
        yield Redis(f"redis://127.0.0.1:{port}/0", proc.pid)
    finally:
        stop_child(proc, timeout_s=20)


@dataclass
class Workers:
    """``loa worker`` processes; ``cpu_s``: their CPU seconds with their children's, known once they stopped."""

    procs: list[subprocess.Popen[bytes]]
    cpu_s: float | None = None


@contextlib.contextmanager
def loa_workers(config: Path, count: int, *, ready_timeout_s: float = 120.0) -> Iterator[Workers]:
    """``count`` ``loa worker`` processes of ``config`` (concurrency 1 each), answering pings; stopped on leaving."""
    settings = load_settings(config, environ={})
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    loa = str(Path(sys.executable).parent / "loa")
    workers = Workers([])
    try:
        for i in range(count):
            name = f"bench{i}-{os.getpid()}@%h"
            workers.procs.append(
                subprocess.Popen(
                    [loa, "--config", str(config), "worker", "--concurrency", "1", "--name", name],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                )
            )  # fmt: skip
        app = make_app(settings)
        deadline = time.monotonic() + ready_timeout_s
        while len(app.control.inspect(timeout=0.5).ping() or {}) < count:
            dead = [w.returncode for w in workers.procs if w.poll() is not None]
            if dead:
                raise BenchError(f"loa worker exited ({dead[0]}) before answering a ping")
            if time.monotonic() > deadline:
                raise BenchError(f"{count} loa worker(s) did not answer a ping within {ready_timeout_s:g} s")
            time.sleep(0.2)
        yield workers
    finally:
        workers.cpu_s = _stop(workers.procs)


def _stop(procs: list[subprocess.Popen[bytes]], *, timeout_s: float = 30.0) -> float:
    """SIGTERM each worker's process group, reap them (SIGKILL after ``timeout_s``); their CPU seconds."""
    for w in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.pid, signal.SIGTERM)
    cpu = 0.0
    deadline = time.monotonic() + timeout_s
    for w in procs:
        while w.returncode is None:
            try:
                pid, status, usage = os.wait4(w.pid, os.WNOHANG)
            except ChildProcessError:
                w.returncode = -1
                break
            if pid:  # reaped here, with the CPU of its own children (the pool process, ffmpeg)
                w.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
            elif time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout_s
            else:
                time.sleep(0.1)
    return round(cpu, 1)


def units(n: int, offset: int) -> list[RenderUnit]:
    return [
        RenderUnit(
            key=hashlib.sha256(f"bench-pause-{offset + i}".encode()).hexdigest(),
            kind="pause",
            language="vi",
            title="pause",
            where=f"bench unit {i}",
            ms=200 + (offset + i) % 997,
        )
        for i in range(n)
    ]


def timed(runner: Runner, work: list[RenderUnit]) -> float:
    started = time.perf_counter()
    results = runner.run(work, parallel=2)
    took = time.perf_counter() - started
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"units failed: {failed[:3]}")
    return took


def measure_runner_overhead(n: int, *, say: Callable[[str], None] = lambda m: None) -> list[dict[str, Any]]:
    """Cold and warm time per unit: in process (2 threads), Celery with 1 and 2 workers of 1."""
    root = Path(tempfile.mkdtemp(prefix="loa-bench-celery-"))
    rows: list[dict[str, Any]] = []
    try:
        with redis_server(root / "redis") as redis:
            config = root / "loa.toml"
            config.write_text(
                f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\nvoices_dir = "{REPO / "voices"}"\n'
                f'[runner]\nkind = "celery"\nbroker_url = "{redis.url}"\n',
                encoding="utf-8",
            )
            settings = load_settings(config, environ={})

            def record(mode: str, cold: float, warm: float) -> None:
                say(f"{mode}: cold {cold:.2f} s, warm {warm:.2f} s for {n} units")
                rows.append(
                    {"runner": mode, "units": n, "cold_s": round(cold, 2), "warm_s": round(warm, 2),
                     "cold_ms_per_unit": round(cold / n * 1000, 2), "warm_ms_per_unit": round(warm / n * 1000, 2)}
                )  # fmt: skip

            inproc = InProcessRunner(WorkContext(settings), workers=2)
            cold_units = units(n, 0)
            record("in-process, 2 threads", timed(inproc, cold_units), timed(inproc, cold_units))

            offset = n
            for count in (1, 2):
                with loa_workers(config, count):
                    celery = CeleryRunner(settings)
                    work = units(n, offset)
                    offset += n
                    record(f"celery, {count} worker(s) x 1", timed(celery, work), timed(celery, work))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["warm_overhead_ms_per_unit"] = round(float(row["warm_ms_per_unit"]) - float(base["warm_ms_per_unit"]), 2)
        row["cold_ratio_to_in_process"] = round(float(row["cold_s"]) / float(base["cold_s"]), 2)
    return rows
