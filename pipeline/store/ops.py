"""Operations: heartbeats, alert state, and the aggregates that metrics and alerts read.

Everything here is one query per question, so a Prometheus scrape or the alert job costs
a handful of indexed reads whatever the size of the history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from pipeline.store.db import Database, as_utc, utcnow
from pipeline.store.runs import upsert


def ping(db: Database) -> None:
    """One round trip to the database (raises ``StoreError`` when it does not answer)."""
    with db.begin() as conn:
        conn.execute(sa.text("SELECT 1"))


def beat(db: Database, name: str, *, detail: str = "", at: dt.datetime | None = None) -> None:
    """Record that the process ``name`` (e.g. "scheduler") is alive now."""
    t = db.table("ops_heartbeats")
    when = at or utcnow()
    stmt = upsert(db, t).values(name=name, at=when, detail=detail)
    with db.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.name], set_={"at": when, "detail": detail}))


def heartbeat(db: Database, name: str) -> dt.datetime | None:
    t = db.table("ops_heartbeats")
    with db.begin() as conn:
        return as_utc(conn.execute(sa.select(t.c.at).where(t.c.name == name)).scalar_one_or_none())


# --- alert state ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertState:
    key: str
    kind: str
    message: str
    first_at: dt.datetime
    last_sent_at: dt.datetime
    sends: int
    resolved_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.resolved_at is None


def _alert(r: sa.RowMapping) -> AlertState:
    return AlertState(
        key=r["key"],
        kind=r["kind"],
        message=r["message"],
        first_at=as_utc(r["first_at"]) or utcnow(),
        last_sent_at=as_utc(r["last_sent_at"]) or utcnow(),
        sends=int(r["sends"]),
        resolved_at=as_utc(r["resolved_at"]),
    )


def alerts(db: Database, *, active_only: bool = False) -> dict[str, AlertState]:
    t = db.table("ops_alerts")
    query = sa.select(t)
    if active_only:
        query = query.where(t.c.resolved_at.is_(None))
    with db.begin() as conn:
        return {r["key"]: _alert(r) for r in conn.execute(query).mappings()}


def save_alert(db: Database, a: AlertState) -> None:
    t = db.table("ops_alerts")
    values = {
        "kind": a.kind,
        "message": a.message,
        "first_at": a.first_at,
        "last_sent_at": a.last_sent_at,
        "sends": a.sends,
        "resolved_at": a.resolved_at,
    }
    stmt = upsert(db, t).values(key=a.key, **values)
    with db.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.key], set_=values))


# --- aggregates for metrics and alerts ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunTimes:
    kind: str
    status: str
    date: dt.date | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


def run_outcomes(db: Database) -> dict[tuple[str, str], int]:
    """(kind, status) → how many runs."""
    t = db.table("runs")
    query = sa.select(t.c.kind, t.c.status, sa.func.count()).group_by(t.c.kind, t.c.status)
    with db.begin() as conn:
        return {(str(k), str(s)): int(n) for k, s, n in conn.execute(query)}


def finished_runs(db: Database, kind: str, *, limit: int = 1000) -> list[RunTimes]:
    """The latest finished runs of ``kind``, newest first (durations for a histogram)."""
    t = db.table("runs")
    query = (
        sa.select(t.c.kind, t.c.status, t.c.date, t.c.started_at, t.c.finished_at)
        .where(t.c.kind == kind, t.c.finished_at.is_not(None))
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    with db.begin() as conn:
        return [RunTimes(str(k), str(s), d, as_utc(a) or utcnow(), as_utc(b)) for k, s, d, a, b in conn.execute(query)]


def segment_totals(db: Database) -> dict[str, int]:
    """Segments rendered and reused, summed over every finished run's counts."""
    t = db.table("runs")
    rendered = sa.func.coalesce(sa.func.sum(t.c.counts["segments_rendered"].as_integer()), 0)
    reused = sa.func.coalesce(sa.func.sum(t.c.counts["segments_reused"].as_integer()), 0)
    with db.begin() as conn:
        r, u = conn.execute(sa.select(rendered, reused).where(t.c.finished_at.is_not(None))).one()
    return {"rendered": int(r), "reused": int(u)}


def count_rows(db: Database, table: str) -> int:
    t = db.table(table)
    with db.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())


def delivery_outcomes(db: Database) -> dict[tuple[str, str, str], int]:
    """(endpoint, commune, status) → delivery attempts recorded."""
    t = db.table("deliveries")
    query = sa.select(t.c.endpoint, t.c.commune, t.c.status, sa.func.count()).group_by(
        t.c.endpoint,
        t.c.status,
        t.c.commune,  # the order of ix_deliveries_ops
    )
    with db.begin() as conn:
        return {(str(e), str(c), str(s)): int(n) for e, c, s, n in conn.execute(query)}


def receipts_by_commune(db: Database) -> dict[str, int]:
    t = db.table("receipts")
    query = sa.select(t.c.commune, sa.func.count()).group_by(t.c.commune)
    with db.begin() as conn:
        return {str(c): int(n) for c, n in conn.execute(query)}


@dataclass(frozen=True, slots=True)
class EmergencyDelivery:
    bulletin_id: int
    endpoint: str
    approved_at: dt.datetime
    first_delivered_at: dt.datetime | None


def emergency_deliveries(db: Database, *, since: dt.datetime | None = None) -> list[EmergencyDelivery]:
    """Per (approved emergency bulletin, endpoint tried): approval time and first good delivery."""
    b, d = db.table("bulletins"), db.table("deliveries")
    label = sa.literal("emergency/") + sa.cast(b.c.id, sa.String)
    delivered = sa.func.min(sa.case((d.c.status == "delivered", d.c.finished_at), else_=None))
    query = (
        sa.select(b.c.id, d.c.endpoint, b.c.approved_at, delivered)
        .join(d, d.c.program == label)
        .where(b.c.priority == "emergency", b.c.approved_at.is_not(None))
        .group_by(b.c.id, d.c.endpoint, b.c.approved_at)
    )
    if since is not None:
        query = query.where(b.c.approved_at >= since)
    with db.begin() as conn:
        return [
            EmergencyDelivery(int(i), str(e), as_utc(a) or utcnow(), as_utc(f)) for i, e, a, f in conn.execute(query)
        ]


@dataclass(frozen=True, slots=True)
class PendingEmergency:
    bulletin_id: int
    title: str
    approved_at: dt.datetime


def approved_emergencies(db: Database, *, since: dt.datetime, today: dt.date) -> list[PendingEmergency]:
    """Emergency bulletins approved since ``since``, still approved and valid on ``today``."""
    b = db.table("bulletins")
    query = sa.select(b.c.id, b.c.title, b.c.approved_at).where(
        b.c.priority == "emergency",
        b.c.status == "approved",
        b.c.approved_at >= since,
        b.c.valid_until >= today,
    )
    with db.begin() as conn:
        return [PendingEmergency(int(i), str(t), as_utc(a) or utcnow()) for i, t, a in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class WebhookBacklog:
    url: str
    pending: int
    oldest_event_at: dt.datetime | None
    failing_since: dt.datetime | None  # the oldest event still undelivered after a failed attempt
    last_error: str


def webhook_backlog(db: Database) -> list[WebhookBacklog]:
    """Per URL: undelivered deliveries, the oldest one's event time, and failures."""
    ev, d = db.table("webhook_events"), db.table("webhook_deliveries")
    open_ = d.c.status != "delivered"
    query = (
        sa.select(
            d.c.url,
            sa.func.count(),
            sa.func.min(ev.c.created_at),
            sa.func.min(sa.case((d.c.attempts > 0, ev.c.created_at), else_=None)),
            sa.func.max(d.c.last_error),
        )
        .join(ev, ev.c.id == d.c.event_id)
        .where(open_)
        .group_by(d.c.url)
    )
    with db.begin() as conn:
        return [
            WebhookBacklog(str(u), int(n), as_utc(o), as_utc(f), str(e or "")) for u, n, o, f, e in conn.execute(query)
        ]


def latest_deliveries_for(db: Database, label: str) -> dict[str, str]:
    """Endpoint → status of its latest delivery attempt for ``label`` (a date or "emergency/<id>")."""
    t = db.table("deliveries")
    latest = sa.select(sa.func.max(t.c.id)).where(t.c.program == label).group_by(t.c.endpoint).scalar_subquery()
    query = sa.select(t.c.endpoint, t.c.status).where(t.c.id.in_(latest))
    with db.begin() as conn:
        return {str(e): str(s) for e, s in conn.execute(query)}


def last_push_at(db: Database) -> dict[str, dt.datetime]:
    """Endpoint → the end of its latest successful push that connected (a push skipped because
    the endpoint already held everything is no contact)."""
    t = db.table("deliveries")
    query = (
        sa.select(t.c.endpoint, sa.func.max(t.c.finished_at))
        .where(t.c.status == "delivered", t.c.attempts > 0)
        .group_by(t.c.endpoint)
    )
    with db.begin() as conn:
        return {str(e): at for e, v in conn.execute(query) if (at := as_utc(v)) is not None}
