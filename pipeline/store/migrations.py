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


def _v19_run_heartbeat(conn: Connection) -> None:
    # The process running a run beats here every few seconds: a run whose beat stopped is
    # marked failed by any host (its machine may never start again).
    ddl_type = TS.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN heartbeat_at {ddl_type}")


def _v18_public_version(conn: Connection) -> None:
    # What is public changes at a build (programs.built_at), an approval or a withdrawal
    # (bulletins.updated_at): the web reads their newest values on every public request.
    conn.execute(sa.text("CREATE INDEX ix_programs_built_at ON programs (built_at)"))
    conn.execute(sa.text("CREATE INDEX ix_bulletins_updated_at ON bulletins (updated_at)"))


def _v11_delivery_state(conn: Connection) -> None:
    # What an endpoint holds after a delivery (a digest of its signed manifests and the
    # retention day): a re-run need not reconnect to an endpoint already holding it.
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN state VARCHAR(64)"))
    conn.execute(sa.text("CREATE INDEX ix_deliveries_endpoint ON deliveries (endpoint, id)"))


def _v10_receipts(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "receipts",
        md,
        sa.Column("id", sa.String(32), primary_key=True),  # the receipt's nonce: a replay collides here
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Index("ix_receipts_day", "day"),
        sa.Index("ix_receipts_endpoint", "endpoint"),
    )
    md.create_all(conn)


def _v5_broadcast_rules(conn: Connection) -> None:
    """Three tiers, operator decisions, replay cadence, CAP provenance, supersede/cancel."""
    import hashlib
    import json

    bulletins = sa.Table("bulletins", sa.MetaData(), autoload_with=conn)
    # the tiers' new names; the content hash is recomputed as the store computes it
    fields = ("title", "category", "priority", "source", "reference", "valid_from", "valid_until")
    renamed = {"routine": "normal", "urgent": "priority"}
    rows = conn.execute(sa.select(bulletins).where(bulletins.c.priority.in_(list(renamed)))).mappings().all()
    for row in rows:
        content = {k: row[k] for k in fields} | {
            "priority": renamed[row["priority"]],
            "targets": list(row["targets"]),
            "languages": list(row["languages"]),
            "body": row["body"],
        }
        for key in ("valid_from", "valid_until"):
            value = content[key]
            content[key] = value.isoformat() if hasattr(value, "isoformat") else str(value)[:10]
        if row.get("policy"):  # migration 6's content fields, when set (as the store hashes them)
            content["policy"], content["stage"] = row["policy"], row.get("stage") or ""
        if row.get("consultation"):
            content["consultation"] = row["consultation"]
        if "public" in row and not row["public"]:  # migration 7's flag, only when false
            content["public"] = False
        digest = hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
        conn.execute(
            bulletins.update()
            .where(bulletins.c.id == row["id"])
            .values(priority=content["priority"], content_hash=digest)
        )
    programs = sa.Table("programs", sa.MetaData(), autoload_with=conn)
    for old, new in renamed.items():
        conn.execute(programs.update().where(programs.c.priority == old).values(priority=new))
    for column in (
        sa.Column("replay_every_minutes", sa.Integer),
        sa.Column("cap_identifier", sa.Text),
        sa.Column("cap_sender", sa.Text),
        sa.Column("cap_sent", TS),
        sa.Column("cap_references", sa.JSON),
        sa.Column("supersedes", sa.Integer),
    ):
        ddl_type = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE bulletins ADD COLUMN {column.name} {ddl_type}")
    md = sa.MetaData()
    sa.Table("bulletins", md, autoload_with=conn)
    sa.Table(
        "bulletin_decisions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bulletin_id", sa.Integer, sa.ForeignKey("bulletins.id"), nullable=False),
        sa.Column("commune", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),  # accepted | deferred | declined
        sa.Column("until", sa.Date),  # deferred: not before this day
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.Text, nullable=False),  # "user:<name>" or "endpoint:<name>"
        sa.Column("decided_at", TS, nullable=False),
        sa.UniqueConstraint("bulletin_id", "commune", name="uq_decision_bulletin_commune"),
    )
    sa.Table(
        "cap_messages",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("identifier", sa.Text, nullable=False),
        sa.Column("sent", TS, nullable=False),
        sa.Column("msg_type", sa.String(16), nullable=False),
        sa.Column("refs", sa.JSON, nullable=False),  # CAP <references>, as sent
        sa.Column("bulletin_id", sa.Integer),  # the bulletin it made (Alert, Update) or acted on (Cancel)
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("sender", "identifier", name="uq_cap_sender_identifier"),
    )
    md.create_all(conn, tables=[md.tables["bulletin_decisions"], md.tables["cap_messages"]])


def _v7_publish(conn: Connection) -> None:
    """Agencies and their tokens, API idempotency keys, the public flag, webhook outbox."""
    conn.execute(sa.text("ALTER TABLE bulletins ADD COLUMN public BOOLEAN NOT NULL DEFAULT TRUE"))
    md = sa.MetaData()
    sa.Table(
        "agencies",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS),
    )
    sa.Table(
        "agency_tokens",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agency", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
    )
    sa.Table(
        "agency_bulletins",
        md,
        sa.Column("bulletin_id", sa.Integer, primary_key=True),  # bulletins.id
        sa.Column("agency", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Index("ix_agency_bulletins_agency", "agency"),
    )
    sa.Table(
        "idempotency_keys",
        md,
        sa.Column("agency", sa.Text, primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("bulletin_id", sa.Integer, nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    sa.Table(
        "webhook_events",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    sa.Table(
        "webhook_deliveries",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), sa.ForeignKey("webhook_events.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("response_status", sa.Integer),
        sa.Column("delivered_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", "url", name="uq_webhook_delivery"),
        sa.Index("ix_webhook_deliveries_status", "status"),
    )
    md.create_all(conn)


Migration = Callable[[Connection], None]


def _v4_web_safety(conn: Connection) -> None:
    """Approval snapshots, the audit log (append-only), web action tokens, account lockouts."""
    md = sa.MetaData()
    sa.Table(
        "approvals",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bulletin_id", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("recordings", sa.JSON, nullable=False),  # language → sha256 of what was approved
        sa.Column("approved_by", sa.Text),
        sa.Column("at", TS, nullable=False),
        sa.Index("ix_approvals_bulletin", "bulletin_id"),
    )
    sa.Table(
        "audit_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("client", sa.Text),
        sa.Index("ix_audit_at", "at"),
    )
    sa.Table(
        "web_actions",
        md,
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("bulletin_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    sa.Table(
        "login_lockouts",
        md,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_at", TS, nullable=False),
    )
    md.create_all(conn)
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


_version_table = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def _v16_operations(conn: Connection) -> None:
    """Operations: heartbeats of long-running processes, alert state (survives a restart)."""
    md = sa.MetaData()
    sa.Table(
        "ops_heartbeats",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    sa.Table(
        "ops_alerts",
        md,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_sent_at", TS, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("resolved_at", TS),
    )
    md.create_all(conn)


def _v17_delivery_counts_index(conn: Connection) -> None:
    # /metrics and the alerts count deliveries per endpoint, outcome and commune and find each
    # endpoint's last good one: a covering index keeps that a short index scan (100k rows: 0.8 s → 40 ms)
    conn.execute(
        sa.text("CREATE INDEX ix_deliveries_ops ON deliveries (endpoint, status, commune, attempts, finished_at)")
    )


class NewerSchemaError(Exception):
    """The database has migrations this code does not know: it was written by a newer Loa."""

    def __init__(self, unknown: list[int]) -> None:
        super().__init__(f"unknown migrations {unknown}")
        self.unknown = unknown


def known_versions() -> set[int]:
    return {version for version, _d, _f in MIGRATIONS}


def applied_versions(conn: Connection) -> set[int]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    return set(conn.execute(sa.select(_version_table.c.version)).scalars())


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(_version_table.c.version), 0))).scalar_one())


def migrate(conn: Connection) -> list[int]:
    """Apply every migration the database has not had, in version order; return the versions applied.

    Versions are numbered by the branch that wrote them, so a later-numbered one may ship first
    (6 before 5): a database at 6 still gets 5. Each migration stands on its own.
    """
    _version_table.create(conn, checkfirst=True)
    have = set(conn.execute(sa.select(_version_table.c.version)).scalars())
    unknown = sorted(have - known_versions())
    if unknown:  # a newer Loa wrote this database: older code must not write to it
        raise NewerSchemaError(unknown)
    applied = []
    for version, description, func in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version not in have:
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


def _v14_one_token_store(conn: Connection) -> None:
    """Endpoint and agency tokens in one table (``kind`` says whose); the rows move, the old tables go."""
    md = sa.MetaData()
    tokens = sa.Table(
        "api_tokens",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),  # endpoint | agency
        sa.Column("owner", sa.Text, nullable=False),  # the endpoint's or the agency's name
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
        sa.Index("ix_api_tokens_owner", "kind", "owner"),
    )
    md.create_all(conn)
    old = sa.MetaData()
    old.reflect(conn, only=["endpoint_tokens", "agency_tokens"])
    columns = ["kind", "owner", "token_hash", "created_at", "last_used_at", "revoked_at"]
    for kind, name, owner in (("endpoint", "endpoint_tokens", "endpoint"), ("agency", "agency_tokens", "agency")):
        t = old.tables[name]
        rows = sa.select(
            sa.literal(kind, sa.String(16)),
            t.c[owner],
            t.c.token_hash,
            t.c.created_at,
            t.c.last_used_at,
            t.c.revoked_at,
        ).order_by(t.c.id)
        conn.execute(tokens.insert().from_select(columns, rows))
        t.drop(conn)


def _v21_devices(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "devices",
        md,
        sa.Column("endpoint", sa.Text, primary_key=True),  # one row per endpoint that has a player
        sa.Column("heartbeat_at", TS),  # the latest heartbeat
        sa.Column("version", sa.Text),
        sa.Column("free_bytes", sa.BigInteger),
        sa.Column("clock_offset_s", sa.Float),
        sa.Column("last_program", sa.Text),
        sa.Column("last_played_at", TS),
        sa.Column("pending_receipts", sa.Integer),
        sa.Column("detail", sa.JSON),
        sa.Column("enrolled_at", TS),
        sa.Column("rotate_requested_at", TS),  # the web asked for a new token; the device fetches it
        sa.Column("rotate_revoke", sa.JSON),  # ids of the tokens to revoke once the device uses its new one
    )
    md.create_all(conn)


def _v22_enrollment_codes(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "enrollment_codes",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Index("ix_enrollment_codes_endpoint", "endpoint"),
    )
    md.create_all(conn)


def _v23_readers(conn: Connection) -> None:
    # A reader (role ``reader``): the languages they read and their scope (group ids and
    # commune codes, JSON lists); other roles keep group_id/commune.
    conn.execute(sa.text("ALTER TABLE users ADD COLUMN languages JSON"))
    conn.execute(sa.text("ALTER TABLE users ADD COLUMN scope JSON"))


def _v25_reminders(conn: Connection) -> None:
    # A user's e-mail address (reminders to readers and approvers); the reminders sent, one row
    # per (event, recipient), so a restarted scheduler never sends one twice.
    conn.execute(sa.text("ALTER TABLE users ADD COLUMN email TEXT"))
    md = sa.MetaData()
    sa.Table(
        "reminders_sent",
        md,
        sa.Column("key", sa.String(300), primary_key=True),  # "<event>><recipient>"
        sa.Column("event", sa.String(250), nullable=False),  # asked:12:draft:hmn, due:12:hmn:2026-12-08T01:00
        sa.Column("recipient", sa.Text, nullable=False),  # a user name, or "webhook"
        sa.Column("bulletin_id", sa.Integer, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Index("ix_reminders_sent_bulletin", "bulletin_id"),
    )
    md.create_all(conn)


def _v24_transcripts(conn: Connection) -> None:
    # A reading's text as read, in its language (the archive text and podcast:transcript).
    conn.execute(sa.text("ALTER TABLE recordings ADD COLUMN transcript TEXT"))


def _v26_phrases(conn: Connection) -> None:
    # Standard phrases recorded from the web: each take of a catalog clip (voices/catalog.toml),
    # stored under data_dir/phrases; the approved take replaces the repository's clip in builds.
    md = sa.MetaData()
    sa.Table(
        "phrases",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),  # the catalog key, "hmn/greeting"
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("original_name", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # awaiting | approved | replaced
        sa.Column("approved_by", sa.Text),
        sa.Column("approved_at", TS),
        sa.Index("ix_phrases_key", "key"),
    )
    md.create_all(conn)


def _v28_delivery_error_codes(conn: Connection) -> None:
    # A failed delivery's error code and the fields of its message: the web shows the
    # Vietnamese from them (pipeline.messages.delivery_error_vi), never from the English text.
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN error_code VARCHAR(64)"))
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN error_fields JSON"))


#: (version, description, function), applied in version order; gaps are allowed.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "bulletins, revisions, recordings, segments, programs, runs, deliveries", _v1_initial),
    (2, "users, sessions, endpoint tokens, play reports", _v2_web),
    (3, "runs: host and pid of the process that runs them", _v3_run_owner),
    (4, "approvals, audit log, web action tokens, login lockouts", _v4_web_safety),
    (5, "tiers normal/priority/emergency, operator decisions, replay cadence, CAP alerts", _v5_broadcast_rules),
    (6, "policies and consultations: bulletin policy/stage/campaign, campaigns, answers", _v6_consultations),
    (7, "agencies, agency tokens, idempotency keys, public flag, webhook outbox", _v7_publish),
    (10, "as-run receipts", _v10_receipts),
    (11, "deliveries: the state an endpoint holds afterwards", _v11_delivery_state),
    (14, "one token store: endpoint and agency tokens in api_tokens", _v14_one_token_store),
    (16, "operations: heartbeats, alert state", _v16_operations),
    (17, "deliveries: an index for the counts /metrics and the alerts read", _v17_delivery_counts_index),
    (18, "indexes for the public version: programs.built_at, bulletins.updated_at", _v18_public_version),
    (19, "runs: the heartbeat of the process running them", _v19_run_heartbeat),
    (21, "devices: the commune player's heartbeat, enrollment, token rotation", _v21_devices),
    (22, "one-time enrollment codes for devices", _v22_enrollment_codes),
    (23, "users: a reader's languages and scope", _v23_readers),
    (24, "recordings: the text as read (transcript)", _v24_transcripts),
    (25, "reminders: users' e-mail, the reminders sent", _v25_reminders),
    (26, "standard phrases recorded from the web", _v26_phrases),
    (28, "deliveries: the error code and its fields", _v28_delivery_error_codes),
]
