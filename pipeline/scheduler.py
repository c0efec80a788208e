"""The schedule: APScheduler 3 wires the nightly job, delivery retries and emergency dispatch.

Three jobs live in an ``SQLAlchemyJobStore`` (table ``apscheduler_jobs`` in the project's
database), each stored as an importable reference plus one plain argument, the config
path; every run loads settings and the deployment afresh, so edits apply without a
restart:

``loa-nightly``    ``nightly_job`` at ``nightly.time`` (deployment time zone): build and
                   push tomorrow (and today too when today was never built and a slot is
                   still ahead, e.g. after the machine was off for days).
``loa-retry``      ``retry_job`` every ``nightly.retry_every_minutes``: re-push endpoints
                   whose latest delivery for a day is failed, until the commune's first
                   slot that day starts; then log once, and record, what never arrived.
``loa-emergency``  ``emergency_job`` every ``EMERGENCY_POLL_SECONDS``: dispatch approved
                   emergency bulletins not yet delivered everywhere.

Missed runs (the machine was off) are coalesced into one run when the scheduler comes
back, if the last missed time is within ``nightly.misfire_grace_hours``. Nightly and retry
share one worker (they never push at the same time); emergencies have their own, so a
long nightly run never delays them. A job's failure is logged with its traceback and
recorded as a failed run; it never stops the scheduler.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Delivery, Deployment
from pipeline.store import Database, open_database
from pipeline.store import runs as run_store

log = logging.getLogger(__name__)

NIGHTLY_JOB = "pipeline.scheduler:nightly_job"
RETRY_JOB = "pipeline.scheduler:retry_job"
EMERGENCY_JOB = "pipeline.scheduler:emergency_job"
NIGHTLY_ID, RETRY_ID, EMERGENCY_ID = "loa-nightly", "loa-retry", "loa-emergency"
JOBSTORE_TABLE = "apscheduler_jobs"
#: How often approved emergency bulletins are looked for (``nightly.emergency_poll_seconds``
#: overrides it once that setting exists).
EMERGENCY_POLL_SECONDS = 10
#: An emergency whose last dispatch was partial is tried again after this long.
EMERGENCY_RETRY_AFTER_S = 60.0

Clock = Callable[[], dt.datetime]


# --- what to do: pure functions ------------------------------------------------------


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


def nightly_days(now: dt.datetime, deployment: Deployment, built: set[dt.date]) -> list[dt.date]:
    """Days the nightly job builds at ``now`` (deployment time): tomorrow, and first today
    when today was never built (no finished nightly run) and one of its slots is still ahead."""
    tz = ZoneInfo(deployment.timezone)
    local = now.astimezone(tz)
    today = local.date()
    days = [today + dt.timedelta(days=1)]
    if today not in built:
        ahead = any(
            dt.datetime.combine(today, s.start, tzinfo=tz) > local
            for c in deployment.communes
            for s in c.slots
            if s.runs_on(today)
        )
        if ahead:
            days.insert(0, today)
    return days


# --- the jobs (module-level, referenced by name from the job store) -----------------


def _open(config_path: str | None) -> tuple[Settings, Database]:
    settings = load_settings(config_path)
    return settings, open_database(settings.db_url)


def _deployment(settings: Settings) -> Deployment:
    return load_deployment(settings.schedules_dir, default_timezone=settings.timezone)


def _record_failure(db: Database, kind: str, day: dt.date | None, what: str, exc: BaseException) -> None:
    try:
        run_id = run_store.start_run(db, kind, day)
        error = f"{exc.__class__.__name__}: {exc}"
        run_store.finish_run(db, run_id, status="failed", counts={}, failures=[{"what": what, "error": error}])
    except Exception:
        log.exception("%s: could not record the failure in the database", kind)


def nightly_job(config_path: str | None) -> None:
    """Build and push tomorrow (see ``nightly_days``). Never raises: failures are logged and recorded."""
    from pipeline.nightly import run_nightly

    try:
        settings, db = _open(config_path)
    except Exception:
        log.exception("nightly: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        try:
            deployment = _deployment(settings)
        except Exception as exc:
            log.exception("nightly: cannot load the deployment from %s; nothing built", settings.schedules_dir)
            tomorrow = dt.datetime.now(settings.tz).date() + dt.timedelta(days=1)
            _record_failure(db, "nightly", tomorrow, str(settings.schedules_dir), exc)
            return
        now = dt.datetime.now(ZoneInfo(deployment.timezone))
        built = {
            r.date
            for r in run_store.recent_runs(db, limit=200)
            if r.kind == "nightly" and r.status in ("done", "partial") and r.date is not None
        }
        for day in nightly_days(now, deployment, built):
            try:
                report = run_nightly(day, settings=settings, deployment=deployment, db=db)
            except Exception:
                # run_nightly has recorded its run as failed; the scheduler goes on
                log.exception("nightly %s: failed; the retry job and tomorrow's run go on", day)
                continue
            failed = [d.endpoint for d in report.deliveries if d.status != "delivered"]
            if report.ok:
                log.info(
                    "nightly %s: %d programs delivered to %d endpoints",
                    day,
                    len(report.build.programs),
                    len(report.deliveries),
                )
            else:
                log.warning(
                    "nightly %s: %d build failures; endpoints not reached: %s (retried every %d min); report %s",
                    day,
                    len(report.build.failures),
                    ", ".join(failed) or "none",
                    settings.nightly.retry_every_minutes,
                    report.report_file,
                )
    finally:
        db.close()


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


def retry_job(config_path: str | None) -> None:
    """Retries for today and tomorrow (see ``retry_deliveries``). Never raises."""
    try:
        settings, db = _open(config_path)
    except Exception:
        log.exception("retry: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        deployment = _deployment(settings)
        now = dt.datetime.now(ZoneInfo(deployment.timezone))
        for day in (now.date(), now.date() + dt.timedelta(days=1)):
            retry_deliveries(day, settings=settings, deployment=deployment, db=db, now=now)
    except Exception as exc:
        log.exception("retry: failed; it runs again in %d min", settings.nightly.retry_every_minutes)
        _record_failure(db, "retry", None, "scheduler", exc)
    finally:
        db.close()


def emergency_job(config_path: str | None) -> None:
    """Dispatch every approved emergency bulletin not yet delivered everywhere. Never raises."""
    from pipeline.dispatch import dispatch_bulletin, pending_emergencies

    try:
        settings, db = _open(config_path)
    except Exception:
        log.exception("emergency: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        pending = pending_emergencies(db, settings=settings, retry_after_s=EMERGENCY_RETRY_AFTER_S)
        if not pending:
            return
        deployment = _deployment(settings)
        for bulletin_id in pending:
            try:
                report = dispatch_bulletin(bulletin_id, settings=settings, deployment=deployment, db=db)
            except Exception as exc:
                log.exception(
                    "emergency: bulletin %d: dispatch failed; tried again in %.0f s",
                    bulletin_id,
                    EMERGENCY_RETRY_AFTER_S,
                )
                _record_failure(db, "dispatch", None, f"bulletin {bulletin_id}", exc)
                continue
            failed = [d.endpoint for d in report.deliveries if d.status != "delivered"]
            if report.ok:
                log.info("emergency: bulletin %d dispatched to %d endpoints", bulletin_id, len(report.deliveries))
            else:
                log.warning(
                    "emergency: bulletin %d: not reached: %s; %d failures; tried again in %.0f s",
                    bulletin_id,
                    ", ".join(failed) or "none",
                    len(report.failures),
                    EMERGENCY_RETRY_AFTER_S,
                )
    except Exception:
        log.exception("emergency: poll failed; it runs again shortly")
    finally:
        db.close()


# --- the scheduler -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str
    func: str
    trigger: BaseTrigger
    executor: str
    grace_s: int
    name: str


def emergency_poll_seconds(settings: Settings) -> int:
    value = getattr(settings.nightly, "emergency_poll_seconds", EMERGENCY_POLL_SECONDS)
    return int(value)


def job_specs(
    settings: Settings, deployment: Deployment, *, now: dt.datetime, nightly_func: str = NIGHTLY_JOB
) -> list[JobSpec]:
    """The three jobs as configured; interval jobs first fire one interval after ``now``."""
    tz = ZoneInfo(deployment.timezone)
    hour, minute = (int(x) for x in settings.nightly.time.split(":"))
    retry = dt.timedelta(minutes=settings.nightly.retry_every_minutes)
    poll = dt.timedelta(seconds=emergency_poll_seconds(settings))
    return [
        JobSpec(
            NIGHTLY_ID,
            nightly_func,
            CronTrigger(hour=hour, minute=minute, timezone=tz),
            "default",
            settings.nightly.misfire_grace_hours * 3600,
            f"nightly build and push at {settings.nightly.time}",
        ),
        JobSpec(
            RETRY_ID,
            RETRY_JOB,
            IntervalTrigger(seconds=int(retry.total_seconds()), start_date=now + retry, timezone=tz),
            "default",
            int(retry.total_seconds()),
            f"retry failed deliveries every {settings.nightly.retry_every_minutes} min",
        ),
        JobSpec(
            EMERGENCY_ID,
            EMERGENCY_JOB,
            IntervalTrigger(seconds=int(poll.total_seconds()), start_date=now + poll, timezone=tz),
            "emergency",
            int(poll.total_seconds()),
            f"dispatch approved emergencies (every {int(poll.total_seconds())} s)",
        ),
    ]


def _on_event(event: JobEvent) -> None:
    # a retry or poll skipped while the worker was busy is routine; a nightly run is not
    routine = event.job_id != NIGHTLY_ID
    if event.code == EVENT_JOB_MISSED:
        log.log(
            logging.INFO if routine else logging.WARNING,
            "job %s: its run due at %s was missed (past its misfire grace time); it runs at its next time",
            event.job_id,
            getattr(event, "scheduled_run_time", "?"),
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.log(
            logging.INFO if routine else logging.WARNING,
            "job %s: its last run is still running or waiting for the worker; this run is skipped",
            event.job_id,
        )
    elif event.code == EVENT_JOB_ERROR:  # the jobs catch their own errors; this is a last guard
        exc = getattr(event, "exception", None)
        log.error("job %s raised %r", event.job_id, exc, exc_info=exc)


class LoaScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler 3's BackgroundScheduler, minus one race: after ``shutdown()`` its loop
    wakes and processes due jobs once more; they cannot be submitted any more, yet their
    next run times are advanced in the store, so a missed nightly run would be lost."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


def build_scheduler(
    settings: Settings,
    *,
    deployment: Deployment,
    now: Clock | None = None,
    jobstore_url: str | None = None,
    nightly_func: str = NIGHTLY_JOB,
) -> LoaScheduler:
    """A BackgroundScheduler on the job store with the jobs installed, started **paused**.

    Nothing runs until ``.resume()``. ``now`` (default: the real clock) sets when new jobs
    first fire. A nightly run that the store holds as due in the past (the machine was
    off) is kept, so it runs once on resume; otherwise jobs take the configured times.
    ``nightly_func`` lets a test put a probe in the nightly job's place.
    """
    tz = ZoneInfo(deployment.timezone)
    clock = now or (lambda: dt.datetime.now(tz))
    open_database(settings.db_url).close()  # creates the data directory, migrates
    url = jobstore_url or settings.db_url
    options = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    scheduler = LoaScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename=JOBSTORE_TABLE, engine_options=options)},
        executors={"default": ThreadPoolExecutor(1), "emergency": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=tz,
    )
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    scheduler.start(paused=True)
    try:
        install_jobs(
            scheduler, job_specs(settings, deployment, now=clock(), nightly_func=nightly_func), settings, now=clock()
        )
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    return scheduler


def install_jobs(scheduler: LoaScheduler, specs: Sequence[JobSpec], settings: Settings, *, now: dt.datetime) -> None:
    """Add or replace the jobs; a stored next run time in the past (a missed run) is kept."""
    config = str(settings.config_file) if settings.config_file else None
    for spec in specs:
        old = scheduler.get_job(spec.id)
        missed = old is not None and old.next_run_time is not None and old.next_run_time <= now
        next_run = old.next_run_time if missed and old is not None else spec.trigger.get_next_fire_time(None, now)
        if missed:
            log.info("job %s: missed its run at %s; running it once now", spec.id, next_run)
        scheduler.add_job(
            spec.func,
            spec.trigger,
            args=[config],
            id=spec.id,
            name=spec.name,
            executor=spec.executor,
            misfire_grace_time=spec.grace_s,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
            next_run_time=next_run,
        )


def run_scheduler(settings: Settings, *, deployment: Deployment, stop: threading.Event) -> None:
    """Run the schedule until ``stop`` is set, then shut down, letting a running job finish."""
    scheduler = build_scheduler(settings, deployment=deployment)
    scheduler.resume()
    nightly = scheduler.get_job(NIGHTLY_ID)
    log.info(
        "scheduler started: nightly at %s %s (next %s), retries every %d min, emergency poll every %d s",
        settings.nightly.time,
        deployment.timezone,
        nightly.next_run_time.isoformat(timespec="minutes") if nightly and nightly.next_run_time else "?",
        settings.nightly.retry_every_minutes,
        emergency_poll_seconds(settings),
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("scheduler stopping: waiting for a running job to finish")
        scheduler.shutdown(wait=True)
        log.info("scheduler stopped")
