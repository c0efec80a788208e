"""One token store for endpoints and agencies: hashed, created/last used/revoked, and migration 14 moving the rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.errors import NotFoundError
from pipeline.store import open_database, tokens
from pipeline.store.agencies import add_agency, agency_of_token
from pipeline.store.migrations import MIGRATIONS, _version_table


def test_one_table_holds_both_kinds_hashed_and_keeps_them_apart(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'loa.db'}")
    try:
        endpoint_secret = tokens.create_endpoint_token(db, "y-ty-1")
        add_agency(db, "so-yte", title="Sở Y tế", scope=("all",))
        agency_id, agency_secret = tokens.create_agency_token(db, "so-yte")
        assert len(endpoint_secret) >= 40 and endpoint_secret != agency_secret
        with db.begin() as conn:
            stored = conn.execute(sa.text("SELECT kind, owner, token_hash FROM api_tokens ORDER BY id")).all()
        assert [(k, o) for k, o, _ in stored] == [("endpoint", "y-ty-1"), ("agency", "so-yte")]
        assert stored[0][2] == hashlib.sha256(endpoint_secret.encode()).hexdigest()  # only the hash is kept
        assert endpoint_secret not in str(stored) and agency_secret not in str(stored)
        # a token of one kind never opens the other door
        assert tokens.owner_of_token(db, "agency", endpoint_secret) is None
        assert tokens.owner_of_token(db, "endpoint", agency_secret) is None
        [before] = tokens.list_tokens(db, "endpoint")
        assert before.last_used_at is None
        assert tokens.owner_of_token(db, "endpoint", endpoint_secret) == "y-ty-1"
        assert tokens.list_tokens(db, "endpoint")[0].last_used_at is not None
        assert set(tokens.last_used(db, "endpoint")) == {"y-ty-1"}
        agency = agency_of_token(db, agency_secret)
        assert agency is not None and agency.name == "so-yte"
        assert tokens.revoke_tokens(db, "agency", "so-yte", token_id=agency_id) == 1
        assert agency_of_token(db, agency_secret) is None
        revoked = tokens.revoke_token(db, "endpoint", before.id)
        assert revoked.revoked_at is not None and tokens.owner_of_token(db, "endpoint", endpoint_secret) is None
        with pytest.raises(NotFoundError) as err:
            tokens.revoke_token(db, "endpoint", agency_id)  # an agency's id is not an endpoint token
        assert err.value.code == "token.not_found"
    finally:
        db.close()


def test_migration_14_moves_endpoint_and_agency_tokens_into_one_table(tmp_path: Path) -> None:
    migration_moves_the_rows(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.services
def test_migration_14_on_postgresql(pg_url: str) -> None:
    migration_moves_the_rows(pg_url)


def migration_moves_the_rows(url: str) -> None:
    engine = sa.create_engine(url)
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    used = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:  # a database as round two left it
        _version_table.create(conn)
        for version, description, func in MIGRATIONS:
            if version < 14:
                func(conn)
                conn.execute(_version_table.insert().values(version=version, description=description))
        conn.execute(
            sa.text(
                "INSERT INTO endpoint_tokens (endpoint, token_hash, created_at, last_used_at) VALUES (:e, :h, :c, :u)"
            ),
            {"e": "y-ty-1", "h": hashlib.sha256(b"endpoint-secret").hexdigest(), "c": now, "u": used},
        )
        conn.execute(
            sa.text(
                "INSERT INTO agencies (name, title, scope, created_at) VALUES ('so-yte', 'Sở Y tế', '[\"all\"]', :c)"
            ),
            {"c": now},
        )
        conn.execute(
            sa.text("INSERT INTO agency_tokens (agency, token_hash, created_at, revoked_at) VALUES (:a, :h, :c, :r)"),
            {"a": "so-yte", "h": hashlib.sha256(b"revoked-secret").hexdigest(), "c": now, "r": used},
        )
        conn.execute(
            sa.text("INSERT INTO agency_tokens (agency, token_hash, created_at) VALUES (:a, :h, :c)"),
            {"a": "so-yte", "h": hashlib.sha256(b"agency-secret").hexdigest(), "c": now},
        )
    engine.dispose()
    db = open_database(url)
    try:
        assert not sa.inspect(db.engine).has_table("endpoint_tokens")
        assert not sa.inspect(db.engine).has_table("agency_tokens")
        [endpoint] = tokens.list_tokens(db, "endpoint")
        assert (endpoint.owner, endpoint.created_at, endpoint.last_used_at) == ("y-ty-1", now, used)
        agency_tokens = tokens.list_tokens(db, "agency", "so-yte")
        assert [t.revoked_at for t in agency_tokens] == [used, None]
        # the old secrets still work, each at its own door
        assert tokens.owner_of_token(db, "endpoint", "endpoint-secret") == "y-ty-1"
        assert tokens.owner_of_token(db, "agency", "revoked-secret") is None
        found = agency_of_token(db, "agency-secret")
        assert found is not None and found.name == "so-yte"
    finally:
        db.close()
