"""Emergency dispatch: one bulletin, composed with ``emergency.vi.j2``, pushed now.

It lands on every endpoint of the targeted communes under ``emergency/<bulletin>/``
with ``"play": "now"``, the expiry and the replay times in each endpoint's manifest.
The CLI (``loa dispatch``), the web UI and the scheduler (which dispatches an emergency
bulletin as soon as it is approved) call ``dispatch_bulletin``; the work is the
orchestrator's (``Producer.dispatch``).
"""

from __future__ import annotations

import datetime as dt

from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.produce import DispatchReport, Producer, today
from pipeline.runner import Runner
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store

__all__ = ["DispatchReport", "dispatch_bulletin", "pending_emergencies"]


def dispatch_bulletin(
    bulletin_id: int, *, settings: Settings, deployment: Deployment, db: Database, runner: Runner | None = None
) -> DispatchReport:
    """Emergency: compose, render and push one bulletin now to its communes' endpoints."""
    return Producer(settings=settings, deployment=deployment, db=db, runner=runner).dispatch(bulletin_id)


def pending_emergencies(db: Database, *, settings: Settings, retry_after_s: float = 60.0) -> list[int]:
    """Approved, unexpired emergency bulletins not yet dispatched to every endpoint.

    A bulletin whose last dispatch was partial (or failed) is retried once ``retry_after_s`` has passed.
    """
    today_ = today(settings)
    runs = run_store.recent_runs(db, limit=None, kind="dispatch")
    now = dt.datetime.now(dt.UTC)
    pending = []
    for b in bulletin_store.list_bulletins(db, status="approved"):
        if b.priority != "emergency" or not b.valid_on(today_) or b.id is None:
            continue
        mine = [r for r in runs if r.counts.get("bulletin") == b.id]
        if any(r.status == "done" for r in mine):
            continue
        last = max((r.started_at for r in mine if r.started_at), default=None)
        if last is None or (now - last).total_seconds() >= retry_after_s:
            pending.append(b.id)
    return pending
