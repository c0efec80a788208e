"""Celery in operations: "no worker" alerts and resolves, /metrics counts the workers and the
queues, and `loa worker --metrics-port` serves the worker's own metrics (real redis-server)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.ops.alerts import run_alerts
from pipeline.ops.metrics import make_registry, render
from tests.conftest import Project
from tests.services import free_port, wait_workers

pytestmark = [pytest.mark.services]


def values(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def test_no_worker_alerts_and_the_worker_serves_its_metrics(small: Project, redis_url: str, tmp_path: Path) -> None:
    small.config.write_text(
        small.config.read_text(encoding="utf-8") + f'[runner]\nkind = "celery"\nbroker_url = "{redis_url}"\n',
        encoding="utf-8",
    )
    settings, deployment = small.settings, small.deployment
    db = small.db()
    sent: list[str] = []

    def notify(notice: object) -> bool:
        sent.append(f"{notice.state}:{notice.key}")  # type: ignore[attr-defined]
        return True

    try:
        now = dt.datetime.now(dt.UTC)
        run_alerts(settings, deployment, db, now=now, notify=notify)
        assert sent == ["fired:workers"]
        m = values(render(make_registry(settings, deployment, db)).decode())
        assert m["loa_runner_broker_up"] == 1 and m["loa_runner_workers_alive"] == 0

        port = free_port()
        log = (tmp_path / "worker.log").open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "loa"), "--config", str(small.config), "worker", "--pool", "solo",
             "--concurrency", "1", "--metrics-port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        log.close()
        try:
            wait_workers(redis_url, 1, timeout=120)
            r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            own = values(r.text)
            assert own["loa_worker_up"] == 1 and own["process_resident_memory_bytes"] > 0
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=1), notify=notify)
            assert sent == ["fired:workers", "resolved:workers"]
            m = values(render(make_registry(settings, deployment, db)).decode())
            assert m["loa_runner_workers_alive"] == 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        deadline = time.monotonic() + 60
        while True:  # the worker is gone: it fires again
            run_alerts(settings, deployment, db, now=now + dt.timedelta(minutes=2), notify=notify)
            if sent[-1] == "fired:workers" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert sent == ["fired:workers", "resolved:workers", "fired:workers"]
    finally:
        db.close()
