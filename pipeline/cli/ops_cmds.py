"""Operations commands: ``loa backup``, ``loa restore``, ``loa alerts``, ``loa migrate``, ``loa health``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import LoaError, StoreError, UsageError

alerts_app = typer.Typer(help="Operations alerts (docs/operations.md).", no_args_is_help=True)


def backup(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A new (or empty) directory; or `verify`, then the backup to check.")],
    backup_dir: Annotated[str | None, typer.Argument(help="With `verify`: the backup directory.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Back up the database, recordings, phrases, keys and configuration into DIR, while Loa runs.

    `loa backup verify DIR` checks a backup: every file's sha256, nothing missing or added.
    The segment cache and the outbox are not in it: the next nightly rebuilds them.

    Example: loa backup /srv/backups/loa-2026-12-07 && loa backup verify /srv/backups/loa-2026-12-07
    """
    from pipeline.ops.backup import make_backup, verify_backup

    if target == "verify":
        if backup_dir is None:
            raise UsageError("loa backup verify DIR: name the backup directory")
        manifest = verify_backup(Path(backup_dir))
        if as_json:
            print_json({"ok": True, "files": len(manifest.files), "created_at": manifest.created_at})
        else:
            console.print(f"{backup_dir}: complete, {len(manifest.files)} files match their sha256", markup=False)
        return
    if backup_dir is not None:
        raise UsageError(f"loa backup {target} {backup_dir}: one directory only (or `verify DIR`)")
    settings = ctx_of(ctx).settings
    manifest = make_backup(settings, Path(target))
    total = sum(f.bytes for f in manifest.files)
    if as_json:
        print_json({"dir": target, "files": len(manifest.files), "bytes": total, "database": manifest.database})
    else:
        console.print(f"{target}: {len(manifest.files)} files, {total / 1e6:.1f} MB, database {manifest.database}")


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A backup made by `loa backup`.")],
) -> None:
    """Rebuild an empty data directory (and empty database) from a backup; a damaged one is refused.

    Stop the scheduler, the web and workers first. Configuration files that differ from the
    backup's are left as they are; the backup's copies go to <data_dir>/restored-config/.

    Example: loa --config /etc/loa/loa.toml restore /srv/backups/loa-20261207T033000
    """
    from pipeline.ops.backup import restore_backup

    report = restore_backup(ctx_of(ctx).settings, source)
    console.print(f"restored {report.restored} files from {source} (made {report.manifest.created_at})", markup=False)
    for path in report.config_kept:
        console.print(f"kept the current {path}; the backup's copy is in restored-config/", markup=False)


def migrate(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only say which migrations would run; change nothing.")
    ] = False,
) -> None:
    """Apply the database migrations this version needs (they also run when any command opens it).

    With --check: list them and exit 0; exit 1 when the database is newer than this code.

    Example: loa migrate --check
    """
    from pipeline.store.db import safe_url
    from pipeline.store.schema import schema_status

    settings = ctx_of(ctx).settings
    status = schema_status(settings.db_url)
    where = safe_url(settings.db_url)
    if status.newer:
        raise StoreError(
            f"{where} has migrations {list(status.unknown)} this Loa does not know: it was upgraded by a newer "
            "version; run that version, or restore the backup made before the upgrade",
            code="store.newer_schema",
            unknown=", ".join(map(str, status.unknown)),
        )
    if not status.pending:
        console.print(f"{where}: up to date (migrations {', '.join(map(str, status.applied))})", markup=False)
        return
    for version, description in status.pending:
        console.print(f"{'would apply' if check else 'applying'} {version}: {description}", markup=False)
    if not check:
        ctx_of(ctx).db  # noqa: B018  (opening the database migrates it)
        console.print(f"{where}: {len(status.pending)} migrations applied", markup=False)


def health(ctx: typer.Context, as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """What /readyz says, from this machine: database, data directory, scheduler, broker. Exit 1 if unready.

    Example: loa health --json
    """
    from pipeline.ops.health import readiness

    app = ctx_of(ctx)
    result = readiness(app.settings, app.db, now=dt.datetime.now(dt.UTC))
    if as_json:
        print_json(result.as_json())
    else:
        for c in result.checks:
            console.print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}", markup=False)
    if not result.ok:
        raise LoaError("not ready: " + ", ".join(c.name for c in result.checks if not c.ok), code="ops.unready")


@alerts_app.command("test")
def alerts_test(ctx: typer.Context) -> None:
    """Send a test message through every [alerts] URL (Apprise).

    Example: loa alerts test
    """
    from pipeline.ops.notify import alert_urls, send

    settings = ctx_of(ctx).settings
    urls = alert_urls(settings)
    if not urls:
        raise UsageError("[alerts] urls (or urls_file) is empty: there is nowhere to send to")
    now = dt.datetime.now(settings.tz).strftime("%H:%M ngày %d/%m/%Y")
    ok = send(urls, title="[Loa] Thử cảnh báo", body=f"Đây là tin thử của Loa lúc {now}; kênh cảnh báo hoạt động.")
    if not ok:
        raise LoaError("Apprise could not send to every URL (run with --verbose for its log)", code="ops.alert_send")
    console.print(f"test message sent to {len(urls)} URL(s)")


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Resolved alerts too.")] = False,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """The alerts in force (as last sent by the scheduler).

    Example: loa alerts list --all
    """
    from pipeline.store import ops as ops_store

    app = ctx_of(ctx)
    rows = sorted(ops_store.alerts(app.db, active_only=not everything).values(), key=lambda a: a.first_at)
    if as_json:
        print_json(
            [
                {
                    "key": a.key,
                    "kind": a.kind,
                    "message": a.message,
                    "since": a.first_at.isoformat(),
                    "sends": a.sends,
                    "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                }
                for a in rows
            ]
        )
        return
    if not rows:
        console.print("no alerts")
    for a in rows:
        since = a.first_at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M")
        state = "resolved" if a.resolved_at else "ACTIVE"
        console.print(f"{state:8} {since} {a.key}: {a.message}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("migrate")(migrate)
    app.command("health")(health)
    app.add_typer(alerts_app, name="alerts")


__all__ = ["register"]
