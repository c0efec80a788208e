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
``loa-consultation-purge``  ``pipeline.feedback.consultation:purge_job`` daily at 03:00: erase the
                   personal fields of consultation answers past their retention.
``loa-webhooks``   ``webhooks_job`` every minute: send the due webhook events (approval,
                   airing, withdrawal), each retried with its own backoff.
``loa-ops``        ``pipeline.scheduler.ops_jobs:ops_job`` every minute, on its own worker: the
                   scheduler's heartbeat (``/readyz``) and the alerts (docs/operations.md).
``loa-backup``     ``pipeline.scheduler.ops_jobs:backup_job`` daily at ``backup.time`` when
                   ``[backup] dir`` is set: a backup, then the oldest beyond ``backup.keep`` go.

Missed runs (the machine was off) are coalesced into one run when the scheduler comes
back, if the last missed time is within ``nightly.misfire_grace_hours``. Nightly and retry
share one worker (they never push at the same time); emergencies have their own, so a
long nightly run never delays them. A job's failure is logged with its traceback and
recorded as a failed run; it never stops the scheduler.
"""

from __future__ import annotations

from pipeline.scheduler.jobs import emergency_job, nightly_days, nightly_job, retry_job, webhooks_job
from pipeline.scheduler.jobstore import (
    BACKUP_ID,
    BACKUP_JOB,
    EMERGENCY_ID,
    EMERGENCY_JOB,
    EMERGENCY_POLL_SECONDS,
    EMERGENCY_RETRY_AFTER_S,
    JOBSTORE_TABLE,
    NIGHTLY_ID,
    NIGHTLY_JOB,
    OPS_ID,
    OPS_JOB,
    PURGE_ID,
    PURGE_JOB,
    RETRY_ID,
    RETRY_JOB,
    WEBHOOKS_ID,
    WEBHOOKS_JOB,
    JobSpec,
    LoaScheduler,
    build_scheduler,
    emergency_poll_seconds,
    install_jobs,
    job_specs,
    run_scheduler,
)
from pipeline.scheduler.retries import RetryReport, due_retries, first_slot_starts, missed_deliveries, retry_deliveries

__all__ = [
    "BACKUP_ID",
    "BACKUP_JOB",
    "EMERGENCY_ID",
    "EMERGENCY_JOB",
    "EMERGENCY_POLL_SECONDS",
    "EMERGENCY_RETRY_AFTER_S",
    "JOBSTORE_TABLE",
    "NIGHTLY_ID",
    "NIGHTLY_JOB",
    "OPS_ID",
    "OPS_JOB",
    "PURGE_ID",
    "PURGE_JOB",
    "RETRY_ID",
    "RETRY_JOB",
    "WEBHOOKS_ID",
    "WEBHOOKS_JOB",
    "JobSpec",
    "LoaScheduler",
    "RetryReport",
    "build_scheduler",
    "due_retries",
    "emergency_job",
    "emergency_poll_seconds",
    "first_slot_starts",
    "install_jobs",
    "job_specs",
    "missed_deliveries",
    "nightly_days",
    "nightly_job",
    "retry_deliveries",
    "retry_job",
    "run_scheduler",
    "webhooks_job",
]
