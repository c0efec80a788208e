"""Upgrades and logs: `loa migrate --check`, a database newer than the code refused everywhere,
JSON log lines with their context, the scheduler's nightly backup and its retention."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
import sqlalchemy as sa

from pipeline.errors import StoreError
from pipeline.ops.backup import MANIFEST, prune_backups, verify_backup
from pipeline.ops.logs import JsonFormatter, log_context
from pipeline.scheduler import build_scheduler
from pipeline.scheduler.ops_jobs import backup_job
from pipeline.store import open_database
from pipeline.web.app import create_app
from tests.conftest import CliResult, Project


def test_migrate_check_lists_what_would_run_and_changes_nothing(project: Project, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    result: CliResult = run("migrate", "--check")  # type: ignore[operator]
    assert result.code == 0
    assert "would apply 1:" in result.out and "would apply 16: operations" in result.out
    assert not (project.root / "data" / "loa.db").exists()  # --check created nothing
    db = project.db()
    with db.begin() as conn:  # as if this database predated migration 16
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version = 16"))
        conn.execute(sa.text("DROP TABLE ops_alerts"))
        conn.execute(sa.text("DROP TABLE ops_heartbeats"))
    db.close()
    result = run("migrate", "--check")  # type: ignore[operator]
    assert result.code == 0 and result.out.strip() == "would apply 16: operations: heartbeats, alert state"
    result = run("migrate")  # type: ignore[operator]
    assert result.code == 0 and "1 migrations applied" in result.out
    assert "up to date" in run("migrate", "--check").out  # type: ignore[operator]


def test_a_database_newer_than_the_code_is_refused(project: Project, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    project.db().close()
    db = project.db()
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_migrations (version, description) VALUES (999, 'from the future')"))
    db.close()
    result: CliResult = run("migrate", "--check")  # type: ignore[operator]
    assert result.code == 1 and "[999]" in result.err and "newer" in result.err
    result = run("bulletin", "list")  # type: ignore[operator]
    assert result.code == 1 and "upgraded by a newer Loa" in result.err and "restore the backup" in result.err
    with pytest.raises(StoreError) as refused:
        open_database(project.settings.db_url)
    assert refused.value.code == "store.newer_schema"
    with pytest.raises(StoreError, match="newer Loa"):  # `loa serve` does not start
        create_app(project.settings)
    with pytest.raises(StoreError, match="newer Loa"):  # nor `loa scheduler`
        build_scheduler(project.settings, deployment=project.deployment)


def test_json_logs_carry_the_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("pipeline.test_ops_schema")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with log_context(unit="deliver:y-ty-loa:2026-12-08", endpoint="y-ty-loa", commune="02641"):
            log.warning("không gửi được tới %s", "y-ty-loa")
        log.info("lượt chạy", extra={"run": 12})
        try:
            raise ValueError("hỏng")
        except ValueError:
            log.exception("thất bại")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "không gửi được tới y-ty-loa" and first["level"] == "WARNING"
    assert (first["unit"], first["endpoint"], first["commune"]) == ("deliver:y-ty-loa:2026-12-08", "y-ty-loa", "02641")
    assert second["run"] == 12 and "endpoint" not in second  # the context ended with its block
    assert "ValueError: hỏng" in third["exception"]
    assert dt.datetime.fromisoformat(first["time"]).tzinfo is not None


def test_cli_writes_json_logs_when_configured(
    project: Project, cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    project.config.write_text(project.config.read_text(encoding="utf-8") + '[log]\nformat = "json"\n', encoding="utf-8")
    run = cli  # type: ignore[assignment]
    root = logging.getLogger()
    try:
        assert run("--verbose", "migrate", "--check").code == 0  # type: ignore[operator]
        assert run("migrate", "--check").code == 0  # type: ignore[operator]
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1  # replaced, not added twice
    finally:
        for h in [h for h in root.handlers if getattr(h, "loa_handler", False)]:
            root.removeHandler(h)


def test_the_nightly_backup_keeps_the_newest(project: Project) -> None:
    backups = project.root / "backups"
    project.config.write_text(
        project.config.read_text(encoding="utf-8") + f'[backup]\ndir = "{backups}"\nkeep = 2\n', encoding="utf-8"
    )
    project.db().close()
    backups.mkdir()
    (backups / "loa-20200101T033000").mkdir()  # a partial one, older: removed
    for stamp in ("loa-20200102T033000", "loa-20200103T033000"):  # complete, older: one is removed
        (backups / stamp).mkdir()
        (backups / stamp / MANIFEST).write_text("{}")
    backup_job(str(project.config))
    kept = sorted(p.name for p in backups.iterdir())
    assert len(kept) == 2 and kept[0] == "loa-20200103T033000"
    verify_backup(backups / kept[1])
    assert prune_backups(backups, keep=5) == []
