"""Three tiers (thông thường, ưu tiên, khẩn cấp): names, old names, the v5 migration of old rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.errors import BulletinError
from pipeline.intake import parse_bulletin
from pipeline.labels import TIER as TIER_VI
from pipeline.models import TIER_ALIASES, TIERS, tier_of
from pipeline.store import bulletins as store
from pipeline.store import open_database
from pipeline.store.migrations import MIGRATIONS, _version_table
from tests.conftest import Project
from tests.test_intake import GOOD


def test_one_mapping_table() -> None:
    assert TIERS == ("emergency", "priority", "normal")
    assert TIER_VI == {"emergency": "Khẩn cấp", "priority": "Ưu tiên", "normal": "Thông thường"}
    assert [tier_of(n) for n in ("routine", "urgent", "emergency", "normal", "priority")] == [
        "normal",
        "priority",
        "emergency",
        "normal",
        "priority",
    ]
    assert tier_of("asap") is None
    assert set(TIER_ALIASES.values()) <= set(TIERS)


@pytest.mark.parametrize(
    ("written", "stored"),
    [("routine", "normal"), ("urgent", "priority"), ("normal", "normal"), ("priority", "priority")],
)
def test_files_with_old_or_new_names_store_the_tier(project: Project, written: str, stored: str) -> None:
    text = GOOD.replace('priority = "urgent"', f'priority = "{written}"')
    b = parse_bulletin(text, where="b.md", deployment=project.deployment).bulletin
    assert b.priority == stored


def test_unknown_tier_names_the_field_and_both_vocabularies(project: Project) -> None:
    with pytest.raises(BulletinError) as err:
        parse_bulletin(
            GOOD.replace('priority = "urgent"', 'priority = "asap"'), where="b.md", deployment=project.deployment
        )
    assert str(err.value) == (
        "b.md: line 4: priority: unknown priority 'asap'; use one of emergency, priority, normal "
        "(old names routine, urgent are read too)"
    )


def _old_hash(content: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def test_migration_5_renames_old_rows_and_keeps_their_hash_meaningful(project: Project, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a database as round one left it: migrations 1 and 2 only
        _version_table.create(conn)
        for version, description, func in MIGRATIONS[:2]:
            func(conn)
            conn.execute(_version_table.insert().values(version=version, description=description))
        now = dt.datetime.now(dt.UTC)
        for i, old in enumerate(("routine", "urgent", "emergency")):
            content = {
                "title": f"Tin {i}",
                "category": "notice",
                "priority": old,
                "source": "UBND xã",
                "reference": "",
                "valid_from": "2026-12-01",
                "valid_until": "2026-12-02",
                "targets": ["all"],
                "languages": ["vi"],
                "body": "Nội dung.",
            }
            conn.execute(
                sa.text(
                    "INSERT INTO bulletins (title, source, category, priority, reference, valid_from, valid_until,"
                    " targets, languages, body, revision, content_hash, status, created_at, updated_at)"
                    " VALUES (:title, :source, 'notice', :priority, '', '2026-12-01', '2026-12-02',"
                    " '[\"all\"]', '[\"vi\"]', 'Nội dung.', 1, :hash, 'approved', :now, :now)"
                ),
                {
                    "title": content["title"],
                    "source": "UBND xã",
                    "priority": old,
                    "hash": _old_hash(content),
                    "now": now,
                },
            )
    engine.dispose()
    db = open_database(url)
    stored = store.list_bulletins(db)
    assert [b.priority for b in stored] == ["normal", "priority", "emergency"]
    with db.engine.connect() as conn:
        raw = [r[0] for r in conn.exec_driver_sql("SELECT priority FROM bulletins ORDER BY id")]
    assert raw == ["normal", "priority", "emergency"]
    # the same bulletin read again from a file with the old name is unchanged, not a new revision
    again = stored[1]
    outcome = store.save_bulletins(db, [again])[0][1]
    assert outcome == "unchanged"
    assert store.get_bulletin(db, stored[1].id or 0).status == "approved"


def test_a_database_already_at_6_still_gets_5(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'at6.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as main left it before this branch: 1, 2, 3 and 6
        _version_table.create(conn)
        for version, description, func in MIGRATIONS:
            if version != 5:
                func(conn)
                conn.execute(_version_table.insert().values(version=version, description=description))
        now = dt.datetime.now(dt.UTC)
        conn.execute(
            sa.text(
                "INSERT INTO bulletins (title, source, category, priority, reference, valid_from, valid_until,"
                " targets, languages, body, revision, content_hash, status, created_at, updated_at, policy, stage)"
                " VALUES ('Tin', 'UBND', 'policy', 'urgent', '', '2026-12-01', '2026-12-02', '[\"all\"]',"
                " '[\"vi\"]', 'Nội dung.', 1, 'x', 'approved', :now, :now, 'nghi-dinh-49', 'draft')"
            ),
            {"now": now},
        )
    engine.dispose()
    db = open_database(url)
    [b] = store.list_bulletins(db)
    assert (b.priority, b.policy) == ("priority", "nghi-dinh-49")
    assert b.content_hash == store.content_hash(b)  # policy and stage counted, as the store counts them
    with db.engine.connect() as conn:
        versions = sorted(r[0] for r in conn.exec_driver_sql("SELECT version FROM schema_migrations"))
    assert versions == sorted(v for v, _, _ in MIGRATIONS) and 5 in versions
    assert db.table("bulletin_decisions") is not None and db.table("cap_messages") is not None
