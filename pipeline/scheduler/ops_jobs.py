"""The operations jobs: every minute a heartbeat, the alerts, lapsed bulletins expired and the
reminders; a nightly backup.

Each takes only the config path, like the other jobs, and never raises.
"""

from __future__ import annotations

import datetime as dt
import logging

from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.ops.logs import log_context
from pipeline.store import Database, open_database
from pipeline.store import ops as ops_store

log = logging.getLogger("pipeline.scheduler")


def ops_job(config_path: str | None) -> None:
    """Record the scheduler's heartbeat (``/readyz`` reads it), evaluate and send alerts, expire
    lapsed bulletins, send reminders."""
    from pipeline.ops.alerts import run_alerts
    from pipeline.ops.health import SCHEDULER

    try:
        settings = load_settings(config_path)
        db = open_database(settings.db_url)
    except Exception:
        log.exception("ops: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        ops_store.beat(db, SCHEDULER)
        deployment = load_deployment(settings.schedules_dir, default_timezone=settings.timezone)
        with log_context(job="alerts"):
            run_alerts(settings, deployment, db, now=dt.datetime.now(dt.UTC))
    except Exception:
        log.exception("ops: alert evaluation failed; it runs again in a minute")
    try:
        expire_lapsed(settings, db)
    except Exception:
        log.exception("ops: expiring lapsed bulletins failed; tried again in a minute")
    try:
        _reminders(settings, db)
    except Exception:
        log.exception("ops: reminders failed; they are evaluated again in a minute")
    finally:
        db.close()


def expire_lapsed(settings: Settings, db: Database) -> int:
    """Draft and approved bulletins whose ``valid_until`` has passed (the deployment's date)
    become expired, by the system through pipeline.lifecycle; how many."""
    from pipeline import lifecycle

    today = dt.datetime.now(settings.tz).date()
    with log_context(job="expire"):
        changes = lifecycle.expire(db, lifecycle.system("scheduler"), today=today)
        for change in changes:
            b = change.bulletin
            log.info("expired bulletin #%s %s (valid until %s)", b.id, b.title, b.valid_until)
    return len(changes)


def _reminders(settings: Settings, db: Database) -> None:
    """Readers told what to read, and again before the deadline (docs/phrases.md)."""
    from pipeline.reminders.send import run_reminders

    deployment = load_deployment(settings.schedules_dir, default_timezone=settings.timezone)
    with log_context(job="reminders"):
        run_reminders(settings, deployment, db, now=dt.datetime.now(dt.UTC))


def backup_job(config_path: str | None) -> None:
    """Make the nightly backup under ``[backup] dir`` and keep the newest ``[backup] keep``."""
    from pipeline.ops.backup import make_backup, prune_backups, stamped_dir

    try:
        settings = load_settings(config_path)
    except Exception:
        log.exception("backup: cannot load the settings (config %s)", config_path)
        return
    if settings.backup.dir is None:
        return
    try:
        target = stamped_dir(settings.backup.dir, dt.datetime.now(settings.tz))
        with log_context(job="backup"):
            manifest = make_backup(settings, target)
        removed = prune_backups(settings.backup.dir, keep=settings.backup.keep)
        log.info("backup: %s (%d files); removed %d old backups", target, len(manifest.files), len(removed))
    except Exception:
        log.exception("backup: failed; the next one is tomorrow (run `loa backup DIR` by hand now)")
