"""Prometheus metrics, read from the store at scrape time (``/metrics``; docs/operations.md).

Loa runs as several processes (the web, the scheduler, workers): what they did is in the
database, so one collector reads it when Prometheus scrapes, and every process reports
the same numbers. Counters are totals over the history the store keeps. Labels are
bounded: endpoint and commune names from the deployment, run kinds and outcomes; never a
bulletin id. Names follow Prometheus conventions (``_total``, ``_seconds``, ``_bytes``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.ops.health import SCHEDULER, free_bytes
from pipeline.store import Database
from pipeline.store import devices as device_store
from pipeline.store import ops as ops_store
from pipeline.store import receipts as receipt_store
from pipeline.store import reports as report_store

log = logging.getLogger(__name__)

#: Buckets for a nightly run's duration (seconds): a minute to five hours.
RUN_BUCKETS = (60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0, 18000.0)
#: Buckets for approval → endpoint of an emergency (seconds): the law asks for minutes.
EMERGENCY_BUCKETS = (15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
#: The segment store is walked at most this often (it may hold many thousands of files).
DIR_SIZE_TTL_S = 300.0


def histogram(values: Iterable[float], buckets: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs with +Inf, and the sum, as Prometheus histograms carry."""
    data = sorted(values)
    go: Callable[[float], str] = floatToGoString
    pairs = [(go(b), float(sum(v <= b for v in data))) for b in buckets]
    pairs.append(("+Inf", float(len(data))))
    return pairs, float(sum(data))


class _DirSize:
    """Bytes and files under a directory, cached for ``ttl`` seconds."""

    def __init__(self, ttl: float = DIR_SIZE_TTL_S) -> None:
        self.ttl = ttl
        self._at = -ttl
        self._value = (0, 0)
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> tuple[int, int]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                total = files = 0
                for root, _dirs, names in os.walk(path):
                    for name in names:
                        try:
                            total += os.lstat(os.path.join(root, name)).st_size
                            files += 1
                        except OSError:
                            continue
                self._value, self._at = (total, files), time.monotonic()
            return self._value


class StoreCollector(Collector):
    """Everything in the metrics list of docs/operations.md, read at scrape time."""

    def __init__(
        self,
        settings: Settings,
        deployment: Deployment,
        db: Database,
        *,
        runner_status: Callable[[Settings], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.db = db
        self.runner_status = runner_status
        self._segments = _DirSize()

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only; registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        yield from self._runs()
        yield from self._deliveries()
        yield from self._contact()
        yield from self._emergencies()
        yield from self._webhooks()
        yield from self._disk()
        yield from self._scheduler()
        if self.settings.runner.kind == "celery":
            yield from self._runner()

    # --- runs, programs, segments ---------------------------------------------------

    def _runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "loa_runs", "Finished runs of the pipeline by kind and outcome.", labels=["kind", "status"]
        )
        running = GaugeMetricFamily("loa_runs_running", "Runs in progress, by kind.", labels=["kind"])
        for (kind, status), n in sorted(ops_store.run_outcomes(self.db).items()):
            if status == "running":
                running.add_metric([kind], n)
            else:
                runs.add_metric([kind, status], n)
        yield runs
        yield running
        finished = ops_store.finished_runs(self.db, "nightly")
        durations = [(r.finished_at - r.started_at).total_seconds() for r in finished if r.finished_at]
        buckets, total = histogram(durations, RUN_BUCKETS)
        h = HistogramMetricFamily(
            "loa_nightly_run_duration_seconds", "Duration of finished nightly runs (latest 1000)."
        )
        h.add_metric([], buckets, total)
        yield h
        last = GaugeMetricFamily(
            "loa_nightly_last_finished_timestamp_seconds",
            "When the latest nightly run finished, by its outcome (done, partial, failed).",
            labels=["status"],
        )
        seen: set[str] = set()
        for r in finished:
            if r.status not in seen and r.finished_at is not None:
                seen.add(r.status)
                last.add_metric([r.status], r.finished_at.timestamp())
        yield last
        yield CounterMetricFamily(
            "loa_programs_built", "Programs built (one per commune, day and slot).", value=self._count("programs")
        )
        seg = ops_store.segment_totals(self.db)
        segments = CounterMetricFamily(
            "loa_segments", "Segments needed by runs: rendered anew or reused from the store.", labels=["outcome"]
        )
        segments.add_metric(["rendered"], seg["rendered"])
        segments.add_metric(["reused"], seg["reused"])
        yield segments
        size, files = self._segments(self.settings.segments_dir)
        yield GaugeMetricFamily("loa_segment_store_bytes", "Bytes in the segment store.", value=size)
        yield GaugeMetricFamily("loa_segment_store_files", "Files in the segment store.", value=files)

    def _count(self, table: str) -> int:
        return ops_store.count_rows(self.db, table)

    # --- deliveries and contact -------------------------------------------------------

    def _deliveries(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "loa_deliveries",
            "Deliveries recorded (one per endpoint and push) by outcome (delivered, failed, …).",
            labels=["endpoint", "commune", "status"],
        )
        for (endpoint, commune, status), n in sorted(ops_store.delivery_outcomes(self.db).items()):
            total.add_metric([endpoint, commune, status], n)
        yield total
        good = GaugeMetricFamily(
            "loa_delivery_last_success_timestamp_seconds",
            "When each endpoint last took a delivery successfully (a connection, not a skip).",
            labels=["endpoint", "commune"],
        )
        commune_of = {e.name: c.code for c in self.deployment.communes for e in c.endpoints}
        for endpoint, at in sorted(ops_store.last_push_at(self.db).items()):
            good.add_metric([endpoint, commune_of.get(endpoint, "")], at.timestamp())
        yield good
        receipts = CounterMetricFamily("loa_receipts_received", "As-run receipts received.", labels=["commune"])
        for commune, n in sorted(ops_store.receipts_by_commune(self.db).items()):
            receipts.add_metric([commune], n)
        yield receipts

    def _contact(self) -> Iterator[Metric]:
        contact = GaugeMetricFamily(
            "loa_commune_last_contact_timestamp_seconds",
            "Last contact with any endpoint of a commune, by way: push, pull, receipt or heartbeat.",
            labels=["commune", "via"],
        )
        for commune, via, at in last_contacts(self.db, self.deployment):
            contact.add_metric([commune, via], at.timestamp())
        yield contact

    # --- emergencies, webhooks ---------------------------------------------------------

    def _emergencies(self) -> Iterator[Metric]:
        latencies = [
            (d.first_delivered_at - d.approved_at).total_seconds()
            for d in ops_store.emergency_deliveries(self.db)
            if d.first_delivered_at is not None
        ]
        buckets, total = histogram([max(0.0, v) for v in latencies], EMERGENCY_BUCKETS)
        h = HistogramMetricFamily(
            "loa_emergency_delivery_latency_seconds",
            "Approval of an emergency bulletin to its first good delivery, per endpoint.",
        )
        h.add_metric([], buckets, total)
        yield h

    def _webhooks(self) -> Iterator[Metric]:
        backlog = ops_store.webhook_backlog(self.db)
        depth = GaugeMetricFamily(
            "loa_webhook_outbox_pending", "Webhook deliveries not yet delivered, per URL's host.", labels=["target"]
        )
        oldest = GaugeMetricFamily(
            "loa_webhook_oldest_undelivered_timestamp_seconds",
            "Creation time of the oldest undelivered webhook event, per URL's host.",
            labels=["target"],
        )
        for b in backlog:
            target = url_target(b.url)
            depth.add_metric([target], b.pending)
            if b.oldest_event_at is not None:
                oldest.add_metric([target], b.oldest_event_at.timestamp())
        yield depth
        yield oldest

    # --- machine ---------------------------------------------------------------------

    def _disk(self) -> Iterator[Metric]:
        try:
            yield GaugeMetricFamily(
                "loa_data_dir_free_bytes",
                "Free bytes under the data directory.",
                value=free_bytes(self.settings.data_dir),
            )
        except OSError as exc:
            log.warning("metrics: cannot read free space under %s: %s", self.settings.data_dir, exc)
        key = self.settings.signing_key_file
        try:
            age = max(0.0, time.time() - key.stat().st_mtime)
            yield GaugeMetricFamily("loa_signing_key_age_seconds", "Age of the manifest signing key file.", value=age)
        except OSError:
            pass  # no key yet: the metric is absent (the alert says when it is unreadable)

    def _scheduler(self) -> Iterator[Metric]:
        at = ops_store.heartbeat(self.db, SCHEDULER)
        if at is not None:
            yield GaugeMetricFamily(
                "loa_scheduler_heartbeat_timestamp_seconds", "The scheduler's latest heartbeat.", value=at.timestamp()
            )

    def _runner(self) -> Iterator[Metric]:
        if self.runner_status is None:
            from pipeline.runner_celery import runner_status

            status = runner_status(self.settings, ping=False)
        else:
            status = self.runner_status(self.settings)
        up = GaugeMetricFamily(
            "loa_runner_broker_up", "1 when the Celery broker answered.", value=0 if "error" in status else 1
        )
        yield up
        depth = GaugeMetricFamily("loa_runner_queue_depth", "Units waiting in each Celery queue.", labels=["queue"])
        for q in status.get("queues", []) or []:
            depth.add_metric([str(q["name"])], float(q["depth"]))
        yield depth
        yield GaugeMetricFamily(
            "loa_runner_units_running",
            "Units taken by workers, not yet done.",
            value=float(status.get("running", 0) or 0),
        )
        yield GaugeMetricFamily(
            "loa_runner_workers_alive",
            "Celery workers whose heartbeat is within [runner] heartbeat_timeout_s.",
            value=len(alive_workers(status)),
        )
        beat = GaugeMetricFamily(
            "loa_runner_worker_heartbeat_timestamp_seconds", "Each worker's latest heartbeat.", labels=["worker"]
        )
        for h in status.get("heartbeats", []) or []:
            if "last_seen" in h:
                beat.add_metric([str(h["name"])], float(h["last_seen"]))
        yield beat


def alive_workers(status: dict[str, Any]) -> list[str]:
    """The workers of a runner status whose heartbeat is recent (``pipeline.liveness``)."""
    return [str(h["name"]) for h in status.get("heartbeats", []) or [] if h.get("alive")]


def url_target(url: str) -> str:
    """A webhook URL's scheme://host[:port] (paths and queries may hold secrets; labels must not)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def last_contacts(db: Database, deployment: Deployment) -> list[tuple[str, str, dt.datetime]]:
    """(commune, via, when): the latest push, pull, receipt and device heartbeat over each commune's endpoints."""
    commune_of = {e.name: c.code for c in deployment.communes for e in c.endpoints}
    sources = {
        "push": ops_store.last_push_at(db),
        "pull": report_store.last_pull_at(db),
        "receipt": receipt_store.last_receipt_at(db),
        "heartbeat": {e: d.heartbeat_at for e, d in device_store.devices(db).items() if d.heartbeat_at is not None},
    }
    best: dict[tuple[str, str], dt.datetime] = {}
    for via, by_endpoint in sources.items():
        for endpoint, at in by_endpoint.items():
            commune = commune_of.get(endpoint)
            if commune is None:
                continue
            key = (commune, via)
            if key not in best or at > best[key]:
                best[key] = at
    return [(c, v, at) for (c, v), at in sorted(best.items())]


def make_registry(settings: Settings, deployment: Deployment, db: Database) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(settings, deployment, db))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
