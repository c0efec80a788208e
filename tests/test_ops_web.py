"""/healthz, /readyz and /metrics on a real uvicorn: who may read metrics, what they say after a night."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import load_settings
from pipeline.store import ops as ops_store
from pipeline.web.routes_ops import metrics_allowed
from tests.conftest import Project
from tests.ops_support import DOWN, Night, scripted_night
from tests.services import Postgres, _pg_owner
from tests.web_support import serve_project, shared_segments, small_project

pytestmark = [pytest.mark.audio]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Night:
    root = tmp_path_factory.mktemp("ops-night") / "p"
    return scripted_night(root, voices_with_placeholders, segments=shared_segments(tmp_path_factory))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_a_night_with_one_endpoint_down(night: Night) -> None:
    with serve_project(night.project) as web:
        r = web.client().get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m[("loa_runs_total", (("kind", "nightly"), ("status", "partial")))] == 1
    assert ("loa_runs_total", (("kind", "nightly"), ("status", "done"))) not in m
    failed = ("loa_deliveries_total", (("commune", "02695"), ("endpoint", DOWN), ("status", "failed")))
    assert m[failed] == 1
    for endpoint in ("y-ty-loa", "y-ty-radio"):
        good = ("loa_deliveries_total", (("commune", "02641"), ("endpoint", endpoint), ("status", "delivered")))
        assert m[good] == 2  # the night, and the emergency
        last = m[("loa_delivery_last_success_timestamp_seconds", (("commune", "02641"), ("endpoint", endpoint)))]
        assert time.time() - 600 < last <= time.time()
    assert not any(name.startswith("loa_delivery_last_success") and ("endpoint", DOWN) in lb for name, lb in m)
    assert m[("loa_commune_last_contact_timestamp_seconds", (("commune", "02641"), ("via", "push")))] > 0
    assert not any(n == "loa_commune_last_contact_timestamp_seconds" and ("commune", "02695") in lb for n, lb in m)
    assert m[("loa_nightly_run_duration_seconds_count", ())] == 1
    assert m[("loa_programs_built_total", ())] >= 4
    assert (
        m[("loa_segments_total", (("outcome", "rendered"),))] + m[("loa_segments_total", (("outcome", "reused"),))] > 0
    )
    assert m[("loa_emergency_delivery_latency_seconds_count", ())] == 2  # Y Tý's two endpoints
    assert m[("loa_emergency_delivery_latency_seconds_bucket", (("le", "+Inf"),))] == 2
    assert m[("loa_data_dir_free_bytes", ())] > 0
    assert m[("loa_segment_store_bytes", ())] > 0
    assert m[("loa_signing_key_age_seconds", ())] >= 0
    # bounded labels: no bulletin id, no run id anywhere
    for _name, labels in m:
        assert {k for k, _v in labels} <= {"kind", "status", "endpoint", "commune", "via", "outcome", "le", "target"}


def test_metrics_are_not_public(night: Night, tmp_path: Path) -> None:
    with serve_project(night.project) as web:
        client = web.client()
        assert client.get("/metrics").status_code == 200  # loopback
        proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 403  # a proxy in front, not trusted: not a local scraper
    settings = load_settings(night.project.config, environ={"LOA_METRICS__ALLOW": "[]", "LOA_METRICS__TOKEN": "s3cret"})
    assert not metrics_allowed(settings, client="127.0.0.1", headers={})
    assert metrics_allowed(settings, client="198.51.100.7", headers={"authorization": "Bearer s3cret"})
    assert not metrics_allowed(settings, client="198.51.100.7", headers={"authorization": "Bearer wrong"})
    default = load_settings(night.project.config, environ={})
    assert not metrics_allowed(default, client="198.51.100.7", headers={})
    assert metrics_allowed(default, client="::1", headers={})


def test_healthz_and_readyz_name_each_check(night: Night) -> None:
    with serve_project(night.project) as web:
        client = web.client()
        assert client.get("/healthz").json() == {"status": "ok"}
        r = client.get("/readyz")
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["database"]["ok"] and checks["data_dir"]["ok"]
        assert not checks["scheduler"]["ok"] and "heartbeat" in checks["scheduler"]["detail"]
        ops_store.beat(web.db, "scheduler")
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        ops_store.beat(web.db, "scheduler", at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        assert client.get("/readyz").status_code == 503


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    base = Path(tempfile.mkdtemp(prefix="loa-pg-ops-"))
    server = Postgres(base, _pg_owner())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait_status(client: httpx.Client, status: int, *, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/readyz")
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_readyz_follows_the_database(own_postgres: Postgres, tmp_path: Path, voices_with_placeholders: Path) -> None:
    project: Project = small_project(tmp_path / "p", voices_with_placeholders)
    url = own_postgres.create_database()
    project.config.write_text(
        f'database_url = "{url}"\n' + project.config.read_text(encoding="utf-8") + "[health]\nmin_free_mb = 1\n",
        encoding="utf-8",
    )
    with serve_project(project) as web:
        client = web.client()
        ops_store.beat(web.db, "scheduler")
        assert _wait_status(client, 200).status_code == 200
        own_postgres.stop()
        r = _wait_status(client, 503)
        assert r.status_code == 503 and not r.json()["checks"]["database"]["ok"]
        assert r.json()["checks"]["data_dir"]["ok"]
        own_postgres.start()
        ops_store.beat(web.db, "scheduler")  # the immediate stop (fsync off) may lose the last write
        r = _wait_status(client, 200)
        assert r.status_code == 200, r.json()


@pytest.mark.services
def test_metrics_and_alerts_read_postgresql(pg_url: str, small: Project) -> None:
    """Every query the collector and the alerts make runs on PostgreSQL (JSON sums, joins, cases)."""
    from pipeline.ops.alerts import evaluate
    from pipeline.ops.metrics import make_registry, render
    from pipeline.store import open_database
    from pipeline.store import runs as run_store
    from pipeline.store import webhooks as webhook_store

    db = open_database(pg_url)
    try:
        run_id = run_store.start_run(db, "nightly", dt.date(2026, 12, 8))
        counts = {"segments_rendered": 5, "segments_reused": 7, "failed": 0}
        run_store.finish_run(db, run_id, status="partial", counts=counts, failures=[])
        webhook_store.add_event(db, "alert.fired", {"key": "disk"})
        settings = small.settings
        m = samples(render(make_registry(settings, small.deployment, db)).decode())
        assert m[("loa_segments_total", (("outcome", "rendered"),))] == 5
        assert m[("loa_segments_total", (("outcome", "reused"),))] == 7
        assert m[("loa_runs_total", (("kind", "nightly"), ("status", "partial")))] == 1
        found = evaluate(settings, small.deployment, db, now=dt.datetime.now(dt.UTC))
        assert [c.key for c in found if c.kind == "nightly"] == ["nightly:2026-12-08"]
    finally:
        db.close()
