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
from pipeline.produce import ENDED, DispatchReport, Producer, today
from pipeline.runner import Runner
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store

__all__ = ["DispatchReport", "cancel_bulletin", "dispatch_bulletin", "pending_cancellations", "pending_emergencies"]


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


def cancel_bulletin(
    bulletin_id: int, *, settings: Settings, deployment: Deployment, db: Database, runner: Runner | None = None
) -> DispatchReport:
    """A signed cancel of a dispatched emergency to every endpoint that holds it."""
    return Producer(settings=settings, deployment=deployment, db=db, runner=runner).cancel(bulletin_id)


def pending_cancellations(db: Database, *, settings: Settings, deployment: Deployment) -> list[int]:
    """Ended emergencies (withdrawn, cancelled, superseded) still in force whose outbox has no signed cancel yet."""
    from pipeline import manifest as mf
    from pipeline.package import manifest_path

    today_ = today(settings)
    pending = []
    for b in bulletin_store.list_bulletins(db):
        if b.priority != "emergency" or b.status not in ENDED or b.id is None or b.valid_until < today_:
            continue
        folder = f"emergency/{b.id}"
        for e in deployment.endpoints():
            path = manifest_path(settings.outbox_dir, e.commune, folder, e.name)
            if path.is_file():
                try:
                    em = mf.read(path).emergency
                except mf.ManifestError:
                    em = None
                if em is None or not em.cancelled:
                    pending.append(b.id)
                    break
    return pending
