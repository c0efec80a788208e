"""``loa worker --metrics-port N``: the worker's own Prometheus metrics on ``[metrics] worker_host``.

What one worker process knows: units it received, by queue (counted in the main process, so
every pool counts them), units finished by outcome (counted where the unit runs: complete
for the threads and solo pools; with prefork each child process keeps its own count, so use
``loa_runs_total`` and ``loa_deliveries_total`` from the web's /metrics for totals), and its
process's CPU, memory and open files. Queue depth and workers alive are on the web's /metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, start_http_server

log = logging.getLogger(__name__)


def serve_worker_metrics(port: int, *, host: str, worker: str) -> CollectorRegistry:
    """Register the counters on Celery's signals and serve them on ``host:port``."""
    from celery import signals

    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    up = Gauge("loa_worker_up", "1 while this worker runs.", registry=registry)
    up.set(1)
    received = Counter(
        "loa_worker_units_received", "Units this worker took from the broker.", ["queue"], registry=registry
    )
    finished = Counter(
        "loa_worker_units_finished", "Units finished in this process, by outcome.", ["outcome"], registry=registry
    )

    def on_received(request: Any = None, **_kw: Any) -> None:
        info = getattr(request, "delivery_info", None) or {}
        received.labels(queue=str(info.get("routing_key") or "unknown")).inc()

    def on_success(**_kw: Any) -> None:
        finished.labels(outcome="done").inc()

    def on_failure(**_kw: Any) -> None:
        finished.labels(outcome="failed").inc()

    def on_retry(**_kw: Any) -> None:
        finished.labels(outcome="retried").inc()

    # weak=False: the handlers are closures that must live as long as the worker
    signals.task_received.connect(on_received, weak=False)
    signals.task_success.connect(on_success, weak=False)
    signals.task_failure.connect(on_failure, weak=False)
    signals.task_retry.connect(on_retry, weak=False)
    start_http_server(port, addr=host, registry=registry)
    log.info("worker %s: metrics on http://%s:%d/metrics", worker, host, port)
    return registry
