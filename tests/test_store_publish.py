"""Migration 7 on a database of round one, and the public flag through the CLI and the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from pipeline.store import bulletins as store
from pipeline.store import open_database
from pipeline.store.migrations import MIGRATIONS, _version_table
from pipeline.store.webhooks import list_events
from tests.conftest import CliResult, Project
from tests.publish_support import bulletin_file


def test_migration_7_upgrades_an_older_database_bulletins_stay_public(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # a database as an earlier version left it
        _version_table.create(conn)
        for version, description, func in MIGRATIONS:
            if version < 7:
                func(conn)
                conn.execute(_version_table.insert().values(version=version, description=description))
        conn.execute(
            sa.text(
                "INSERT INTO bulletins (title, source, category, priority, reference, valid_from, valid_until, "
                "targets, languages, body, revision, content_hash, status, created_at, updated_at) VALUES "
                "('Cũ', 'UBND', 'notice', 'routine', '', '2026-12-01', '2026-12-02', '[\"all\"]', '[\"vi\"]', "
                "'Nội dung.', 1, 'x', 'approved', :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    db = open_database(url)
    try:
        [old] = store.list_bulletins(db)
        assert old.public is True
        for table in ("agencies", "api_tokens", "agency_bulletins", "idempotency_keys", "webhook_events"):
            assert db.table(table) is not None
    finally:
        db.close()


def test_public_false_from_the_cli_is_stored_and_makes_no_event(
    small_cli: Callable[..., CliResult], small: Project, tmp_path: Path
) -> None:
    internal = tmp_path / "noi-bo.md"
    day = dt.date(2026, 12, 1)
    internal.write_text(bulletin_file(title="Nội bộ", start=day, end=day, public=False), encoding="utf-8")
    public = tmp_path / "cong-khai.md"
    public.write_text(bulletin_file(title="Công khai", start=day, end=day), encoding="utf-8")
    assert small_cli("bulletin", "add", str(internal), str(public)).code == 0
    db = small.db()
    try:
        by_title = {b.title: b for b in store.list_bulletins(db)}
        assert (by_title["Nội bộ"].public, by_title["Công khai"].public) == (False, True)
        for b in by_title.values():
            assert small_cli("bulletin", "approve", str(b.id)).code == 0
        events = list_events(db)
        assert [e.payload["bulletin"]["title"] for e in events] == ["Công khai"]
        # the same file again is unchanged; flipping the flag is a new revision
        internal.write_text(bulletin_file(title="Nội bộ", start=day, end=day), encoding="utf-8")
        assert small_cli("bulletin", "add", str(internal)).code == 0
        again = store.get_bulletin(db, by_title["Nội bộ"].id or 0)
        assert (again.public, again.revision, again.status) == (True, 2, "draft")
    finally:
        db.close()
