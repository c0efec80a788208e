"""APScheduler wiring: job specs, the job store in the project's database, events, the run loop."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
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

from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.store import open_database

log = logging.getLogger("pipeline.scheduler")

NIGHTLY_JOB = "pipeline.scheduler:nightly_job"
RETRY_JOB = "pipeline.scheduler:retry_job"
EMERGENCY_JOB = "pipeline.scheduler:emergency_job"
NIGHTLY_ID, RETRY_ID, EMERGENCY_ID = "loa-nightly", "loa-retry", "loa-emergency"
PURGE_ID = "loa-consultation-purge"
WEBHOOKS_ID = "loa-webhooks"
WEBHOOKS_JOB = "pipeline.scheduler:webhooks_job"
#: How often due webhook events are sent (each retry waits its own backoff).
WEBHOOKS_EVERY_SECONDS = 60
#: Personal data of consultation answers past ``consultation.retention_days`` is erased daily at 03:00.
PURGE_JOB = "pipeline.feedback.consultation:purge_job"
JOBSTORE_TABLE = "apscheduler_jobs"
#: Operations (pipeline/scheduler/ops_jobs.py): heartbeat and alerts every minute, on their own
#: worker so a long night never silences them; the nightly backup on the nightly's worker.
OPS_ID, OPS_JOB, OPS_EVERY_SECONDS = "loa-ops", "pipeline.scheduler.ops_jobs:ops_job", 60
BACKUP_ID, BACKUP_JOB = "loa-backup", "pipeline.scheduler.ops_jobs:backup_job"
#: How often approved emergency bulletins are looked for (``nightly.emergency_poll_seconds``
#: overrides it once that setting exists).
EMERGENCY_POLL_SECONDS = 10
#: An emergency whose last dispatch was partial is tried again after this long.
EMERGENCY_RETRY_AFTER_S = 60.0

Clock = Callable[[], dt.datetime]


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
    """The jobs as configured; interval jobs first fire one interval after ``now``."""
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
        JobSpec(
            PURGE_ID,
            PURGE_JOB,
            CronTrigger(hour=3, minute=0, timezone=tz),
            "default",
            20 * 3600,
            "erase personal data of consultation answers past their retention",
        ),
        JobSpec(
            WEBHOOKS_ID,
            WEBHOOKS_JOB,
            IntervalTrigger(
                seconds=WEBHOOKS_EVERY_SECONDS,
                start_date=now + dt.timedelta(seconds=WEBHOOKS_EVERY_SECONDS),
                timezone=tz,
            ),
            "emergency",
            WEBHOOKS_EVERY_SECONDS,
            f"send due webhook events (every {WEBHOOKS_EVERY_SECONDS} s)",
        ),
        JobSpec(
            OPS_ID,
            OPS_JOB,
            IntervalTrigger(
                seconds=OPS_EVERY_SECONDS, start_date=now + dt.timedelta(seconds=5), timezone=tz
            ),  # first heartbeat soon after start: /readyz waits for it
            "ops",
            OPS_EVERY_SECONDS,
            f"heartbeat and alerts (every {OPS_EVERY_SECONDS} s)",
        ),
        *_backup_spec(settings, tz),
    ]


def _backup_spec(settings: Settings, tz: ZoneInfo) -> list[JobSpec]:
    if settings.backup.dir is None:
        return []
    hour, minute = (int(x) for x in settings.backup.time.split(":"))
    return [
        JobSpec(
            BACKUP_ID,
            BACKUP_JOB,
            CronTrigger(hour=hour, minute=minute, timezone=tz),
            "default",
            6 * 3600,
            f"nightly backup at {settings.backup.time} into {settings.backup.dir}",
        )
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
        executors={"default": ThreadPoolExecutor(1), "emergency": ThreadPoolExecutor(1), "ops": ThreadPoolExecutor(1)},
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
