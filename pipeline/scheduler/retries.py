"""Delivery retries: which endpoints to push again, until the commune's first slot, and what never arrived."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.models import Delivery, Deployment
from pipeline.store import Database
from pipeline.store import runs as run_store

log = logging.getLogger("pipeline.scheduler")


def first_slot_starts(deployment: Deployment, day: dt.date, tz: ZoneInfo) -> dict[str, dt.datetime]:
    """Commune code → when its first slot on ``day`` starts (the end of ``day`` if none runs)."""
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
    starts: dict[str, dt.datetime] = {}
    for commune in deployment.communes:
        times = [s.start for s in commune.slots if s.runs_on(day)]
        starts[commune.code] = dt.datetime.combine(day, min(times), tzinfo=tz) if times else end_of_day
    return starts


def due_retries(deliveries: Iterable[Delivery], slot_starts: dict[str, dt.datetime], now: dt.datetime) -> list[str]:
    """Endpoints to push again: latest delivery failed and their commune's first slot not yet begun.

    An endpoint whose commune is no longer in the deployment is not retried.
    """
    return [
        d.endpoint
        for d in deliveries
        if d.status == "failed" and d.commune in slot_starts and now < slot_starts[d.commune]
    ]


def missed_deliveries(
    deliveries: Iterable[Delivery], slot_starts: dict[str, dt.datetime], now: dt.datetime
) -> list[Delivery]:
    """Failed deliveries whose window has closed: the commune's first slot has started."""
    return [
        d for d in deliveries if d.status == "failed" and d.commune in slot_starts and now >= slot_starts[d.commune]
    ]


@dataclass(frozen=True, slots=True)
class RetryReport:
    day: dt.date
    retried: tuple[Delivery, ...]
    missed: tuple[Delivery, ...]  # newly given up on (already-reported ones are not repeated)


def retry_deliveries(
    day: dt.date, *, settings: Settings, deployment: Deployment, db: Database, now: dt.datetime
) -> RetryReport:
    """Re-push ``day`` to endpoints whose latest delivery failed, while their window is open.

    Once a commune's first slot on ``day`` has started, its failed endpoints are given up:
    logged as an error once and recorded as a run of kind ``missed``.
    """
    from pipeline.nightly import push_day

    tz = ZoneInfo(deployment.timezone)
    latest = run_store.latest_deliveries(db, day.isoformat())
    starts = first_slot_starts(deployment, day, tz)
    retried: list[Delivery] = []
    due = due_retries(latest, starts, now)
    if due:
        run_id = run_store.start_run(db, "retry", day)
        for name in due:
            retried.extend(push_day(day, settings=settings, deployment=deployment, db=db, endpoint=name, run_id=run_id))
        failed = [d for d in retried if d.status != "delivered"]
        run_store.finish_run(
            db,
            run_id,
            status="partial" if failed else "done",
            counts={"endpoints": len(retried), "delivered": len(retried) - len(failed)},
            failures=[{"what": d.endpoint, "error": d.error} for d in failed],
        )
        log.info(
            "retry %s: %d of %d endpoints delivered%s",
            day,
            len(retried) - len(failed),
            len(retried),
            f"; still failing: {', '.join(d.endpoint for d in failed)}" if failed else "",
        )
    reported = {
        f["what"]
        for r in run_store.recent_runs(db, limit=200)
        if r.kind == "missed" and r.date == day
        for f in r.failures
    }
    missed = [d for d in missed_deliveries(latest, starts, now) if d.endpoint not in reported]
    if missed:
        run_id = run_store.start_run(db, "missed", day)
        run_store.finish_run(
            db,
            run_id,
            status="failed",
            counts={"endpoints": len(missed)},
            failures=[{"what": d.endpoint, "commune": d.commune, "error": d.error} for d in missed],
        )
        for d in missed:
            commune = deployment.commune(d.commune)
            log.error(
                "retry %s: programs never arrived at endpoint %s (commune %s %s) before its first slot at %s; "
                "last error: %s. Deliver by hand (`loa push --date %s`) and check the device.",
                day,
                d.endpoint,
                d.commune,
                commune.name if commune else "?",
                starts[d.commune].strftime("%H:%M"),
                d.error,
                day,
            )
    return RetryReport(day, tuple(retried), tuple(missed))
