"""The Celery runner's cost per unit against the in-process runner (``loa bench --runner-overhead N``).

Starts its own redis-server on a free loopback port and `loa worker` processes, then runs
the same render units (pauses: one ffmpeg call each when new, a store look-up when
reused) through the in-process runner and through Celery with 1 and 2 workers:

* cold: every unit is new (a fresh key set per runner), so each one runs ffmpeg;
* warm: every unit is already in the store, so what is left is the runner's own cost.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import load_settings
from pipeline.runner import InProcessRunner, Runner, WorkContext
from pipeline.runner_celery import CeleryRunner, make_app
from pipeline.units import RenderUnit

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
    )
    workers: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        config = root / "loa.toml"
        config.write_text(
            f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\nvoices_dir = "{REPO / "voices"}"\n'
            f'[runner]\nkind = "celery"\nbroker_url = "redis://127.0.0.1:{port}/0"\n',
            encoding="utf-8",
        )
        settings = load_settings(config, environ={})
        time.sleep(0.5)

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
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
            while len(workers) < count:
                workers.append(
                    subprocess.Popen(
                        [str(Path(sys.executable).parent / "loa"), "--config", str(config), "worker",
                         "--concurrency", "1", "--name", f"bench{len(workers)}@%h"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                    )
                )  # fmt: skip
            app = make_app(settings)
            while len(app.control.inspect(timeout=0.5).ping() or {}) < count:
                time.sleep(0.2)
            celery = CeleryRunner(settings)
            work = units(n, offset)
            offset += n
            record(f"celery, {count} worker(s) x 1", timed(celery, work), timed(celery, work))
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            w.wait(timeout=30)
        redis.terminate()
        redis.wait()
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["warm_overhead_ms_per_unit"] = round(float(row["warm_ms_per_unit"]) - float(base["warm_ms_per_unit"]), 2)
        row["cold_ratio_to_in_process"] = round(float(row["cold_s"]) / float(base["cold_s"]), 2)
    return rows
