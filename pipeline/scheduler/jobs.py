"""The scheduler's three jobs: nightly build and push, delivery retries, emergency dispatch.

Each takes only the config path, loads settings and the deployment afresh, asks the
orchestrator (through ``pipeline.nightly`` and ``pipeline.dispatch``), and never raises:
a failure is logged with its traceback and recorded as a failed run.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Deployment
from pipeline.scheduler.jobstore import EMERGENCY_RETRY_AFTER_S
from pipeline.scheduler.retries import retry_deliveries
from pipeline.store import Database, open_database
from pipeline.store import runs as run_store

log = logging.getLogger("pipeline.scheduler")


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
    from pipeline.dispatch import cancel_bulletin, dispatch_bulletin, pending_cancellations, pending_emergencies

    try:
        settings, db = _open(config_path)
    except Exception:
        log.exception("emergency: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        pending = pending_emergencies(db, settings=settings, retry_after_s=EMERGENCY_RETRY_AFTER_S)
        deployment = _deployment(settings)
        for bulletin_id in pending_cancellations(db, settings=settings, deployment=deployment):
            try:  # an emergency withdrawn, cancelled (CAP Cancel) or superseded: devices stop replaying it
                report = cancel_bulletin(bulletin_id, settings=settings, deployment=deployment, db=db)
                log.info("emergency: bulletin %d cancelled on %d endpoints", bulletin_id, len(report.deliveries))
            except Exception as exc:
                log.exception("emergency: bulletin %d: the cancel failed; tried again shortly", bulletin_id)
                _record_failure(db, "cancel", None, f"bulletin {bulletin_id}", exc)
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


def webhooks_job(config_path: str | None) -> None:
    """Send the webhook events that are due (retries with backoff included). Never raises."""
    from pipeline.publish.webhooks import deliver_webhooks

    try:
        settings, db = _open(config_path)
    except Exception:
        log.exception("webhooks: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        if settings.webhook:
            report = deliver_webhooks(db, settings)
            log.info("webhooks: %s", report)
    except Exception:
        log.exception("webhooks: delivery failed; it runs again at its next time")
    finally:
        db.close()
