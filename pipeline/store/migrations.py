"""Versioned schema migrations: a small registry, applied in order, each once.

A migration defines the tables it creates in its own MetaData, so a later change of
``schema.py`` never changes what an earlier migration did. Add a migration by
appending a function to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

TS = sa.DateTime(timezone=True)


def _v1_initial(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "bulletins",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_file", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("approved_at", TS),
        sa.Column("approved_by", sa.Text),
        sa.Column("withdrawn_at", TS),
        sa.UniqueConstraint("title", "source", name="uq_bulletin_title_source"),
    )
    sa.Table(
        "bulletin_revisions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bulletin_id", sa.Integer, sa.ForeignKey("bulletins.id"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("source_file", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("bulletin_id", "revision", name="uq_revision"),
    )
    sa.Table(
        "recordings",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bulletin_id", sa.Integer, sa.ForeignKey("bulletins.id"), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("original_name", sa.Text, nullable=False),
        sa.Column("codec", sa.Text, nullable=False),
        sa.Column("sample_rate", sa.Integer, nullable=False),
        sa.Column("channels", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("superseded_at", TS),
    )
    sa.Table(
        "segments",
        md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("engine", sa.Text),
        sa.Column("loudness_lufs", sa.Float),
        sa.Column("bulletin_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
    )
    sa.Table(
        "programs",
        md,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("slot", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("missing", sa.JSON, nullable=False),
        sa.Column("built_at", TS, nullable=False),
    )
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("date", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("failures", sa.JSON, nullable=False),
    )
    sa.Table(
        "deliveries",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("files_sent", sa.Integer, nullable=False),
        sa.Column("files_skipped", sa.Integer, nullable=False),
        sa.Column("bytes_sent", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("finished_at", TS, nullable=False),
        sa.Index("ix_deliveries_program", "program"),
    )
    md.create_all(conn)


def _v2_web(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("group_id", sa.Text),
        sa.Column("commune", sa.String(16)),
        sa.Column("disabled", sa.Boolean, nullable=False, default=False),
        sa.Column("created_at", TS, nullable=False),
    )
    sa.Table(
        "sessions",
        md,
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    sa.Table(
        "endpoint_tokens",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
    )
    sa.Table(
        "play_reports",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Index("ix_play_reports_commune", "commune"),
    )
    md.create_all(conn)


def _v3_run_owner(conn: Connection) -> None:
    # Which process runs a run: the next start marks a run whose process is gone as failed.
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN host VARCHAR(255)"))
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN pid INTEGER"))


Migration = Callable[[Connection], None]
#: (version, description, function); versions are 1, 2, 3… in order.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "bulletins, revisions, recordings, segments, programs, runs, deliveries", _v1_initial),
    (2, "users, sessions, endpoint tokens, play reports", _v2_web),
    (3, "runs: host and pid of the process that runs them", _v3_run_owner),
]

_version_table = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(_version_table.c.version), 0))).scalar_one())


def migrate(conn: Connection) -> list[int]:
    """Apply every migration newer than the database; return the versions applied."""
    _version_table.create(conn, checkfirst=True)
    have = current_version(conn)
    applied = []
    for version, description, func in MIGRATIONS:
        if version > have:
            func(conn)
            conn.execute(_version_table.insert().values(version=version, description=description))
            applied.append(version)
    return applied


def _v6_consultations(conn: Connection) -> None:
    """Policies and consultations: a bulletin's policy, stage and campaign; campaigns; answers."""
    json_type = sa.JSON().compile(dialect=conn.dialect)
    for column, kind in (("policy", "TEXT"), ("stage", "VARCHAR(16)"), ("consultation", json_type)):
        conn.execute(sa.text(f"ALTER TABLE bulletins ADD COLUMN {column} {kind}"))
    md = sa.MetaData()
    sa.Table("bulletins", md, sa.Column("id", sa.Integer, primary_key=True))  # for the foreign keys
    sa.Table(
        "consultations",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("bulletin_id", sa.Integer, sa.ForeignKey("bulletins.id"), nullable=False, unique=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("agency_answer", sa.Text, nullable=False, server_default=""),
        sa.Column("followup_bulletin_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    sa.Table(
        "answers",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consultation_id", sa.Integer, sa.ForeignKey("consultations.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("answer_values", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("consent", sa.Boolean, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("merged_into", sa.Integer),
        sa.Column("recording", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("erased_at", TS),
        sa.Index("ix_answers_consultation", "consultation_id"),
        sa.Index("ix_answers_phone", "phone"),
    )
    md.create_all(conn, tables=[md.tables["consultations"], md.tables["answers"]])


MIGRATIONS.append(
    (6, "policies and consultations: bulletin policy/stage/campaign, campaigns, answers", _v6_consultations)
)
