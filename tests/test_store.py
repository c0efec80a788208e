"""The store: migrations, WAL, the all-or-nothing add and the revision rule."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.intake import parse_bulletin
from pipeline.store import bulletins as store
from pipeline.store import open_database
from pipeline.store.migrations import MIGRATIONS, current_version
from tests.conftest import EXAMPLES, CliResult, Project
from tests.test_intake import GOOD


def test_new_database_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x' / 'loa.db'}")
    with db.engine.connect() as conn:
        assert current_version(conn) == MIGRATIONS[-1][0]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    for name in (
        "bulletins",
        "bulletin_revisions",
        "recordings",
        "segments",
        "programs",
        "runs",
        "deliveries",
    ):
        assert db.table(name) is not None
    assert db.integrity_ok()
    db.close()
    again = open_database(f"sqlite:///{tmp_path / 'x' / 'loa.db'}")  # re-open: nothing re-applied
    with again.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM schema_migrations").scalar()
    assert rows == len(MIGRATIONS)


def test_revision_rule(project: Project) -> None:
    db = project.db()
    b = parse_bulletin(GOOD, where="b.md", deployment=project.deployment).bulletin
    [(first, outcome)] = store.save_bulletins(db, [b])
    assert (outcome, first.revision, first.status) == ("added", 1, "draft")
    assert store.save_bulletins(db, [b])[0][1] == "unchanged"
    approved = store.approve(db, first.id or 0)
    assert approved.status == "approved" and approved.approved_at is not None
    changed = parse_bulletin(GOOD.replace("25/12/2026", "20/12/2026"), where="b.md", deployment=project.deployment)
    [(second, outcome)] = store.save_bulletins(db, [changed.bulletin])
    assert (outcome, second.id, second.revision, second.status) == ("revised", first.id, 2, "draft")
    revs = store.revisions(db, first.id or 0)
    assert [r["revision"] for r in revs] == [1, 2]
    assert "25/12/2026" in revs[0]["content"]["body"] and "20/12/2026" in revs[1]["content"]["body"]
    other_source = parse_bulletin(
        GOOD.replace('source = "BHXH', 'source = "UBND'), where="c.md", deployment=project.deployment
    )
    assert store.save_bulletins(db, [other_source.bulletin])[0][1] == "added"


def test_withdraw_then_approve_is_refused(project: Project) -> None:
    db = project.db()
    b = parse_bulletin(GOOD, where="b.md", deployment=project.deployment).bulletin
    [(stored, _)] = store.save_bulletins(db, [b])
    store.withdraw(db, stored.id or 0)
    with pytest.raises(UsageError, match="withdrawn"):
        store.approve(db, stored.id or 0)


def test_airable_bulletins_respect_validity_and_status(project: Project) -> None:
    db = project.db()
    b = parse_bulletin(GOOD, where="b.md", deployment=project.deployment).bulletin
    [(stored, _)] = store.save_bulletins(db, [b])
    assert store.airable_bulletins(db, dt.date(2026, 12, 1)) == []
    store.approve(db, stored.id or 0)
    for day, expected in [((2026, 11, 30), 0), ((2026, 12, 1), 1), ((2026, 12, 25), 1), ((2026, 12, 26), 0)]:
        assert len(store.airable_bulletins(db, dt.date(*day))) == expected


def test_add_is_all_or_nothing(project: Project, cli: Callable[..., CliResult], tmp_path: Path) -> None:
    good = sorted(EXAMPLES.glob("*.md"))
    bad = tmp_path / "bad.md"
    bad.write_text(GOOD.replace('priority = "urgent"', 'priority = "asap"'), encoding="utf-8")
    result = cli("bulletin", "add", *map(str, good), str(bad))
    assert result.code == 2
    assert result.err.startswith(f"error: {bad}: line 4: priority: unknown priority 'asap'")
    assert store.list_bulletins(project.db()) == []
    assert cli("bulletin", "add", *map(str, good)).code == 0
    assert len(store.list_bulletins(project.db())) == len(good)


def test_a_failing_write_stores_nothing(project: Project) -> None:
    """A database error in the middle of a batch rolls the whole batch back."""
    db = project.db()
    good = parse_bulletin(GOOD, where="b.md", deployment=project.deployment).bulletin
    other = parse_bulletin(GOOD.replace("BHYT", "BHXH"), where="c.md", deployment=project.deployment).bulletin
    with sqlite3.connect(project.settings.db_url.removeprefix("sqlite:///")) as raw:
        raw.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON bulletins WHEN NEW.title LIKE '%BHXH%' "
            "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
    with pytest.raises(Exception, match="disk trouble"):
        store.save_bulletins(db, [good, other])
    assert store.list_bulletins(db) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://loa:s3cret-Pa55@127.0.0.1:1/loa",  # nothing listens on port 1
        "postgresql+nosuchdriver://loa:s3cret-Pa55@127.0.0.1/loa",
    ],
)
def test_a_database_password_never_reaches_a_message_or_the_log(url: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from pipeline.errors import StoreError
    from pipeline.store.db import safe_url

    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as err:
        open_database(url)
    assert "s3cret-Pa55" not in str(err.value) and "***" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no driver text with the URL either
    assert "s3cret-Pa55" not in caplog.text
    assert safe_url(url) == url.replace("s3cret-Pa55", "***")
