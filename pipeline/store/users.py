"""Web users, their sessions and operators' play reports (bearer tokens: ``pipeline.store.tokens``).

Secrets are never stored: passwords arrive here already hashed (argon2, in
``pipeline.web.auth``); session ids are stored as their SHA-256 (``digest``), like tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from pipeline.errors import NotFoundError, UsageError
from pipeline.store.db import Database, as_utc, utcnow

ROLES = ("admin", "editor", "approver", "operator", "reader")
REPORT_KINDS = ("played", "problem")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str  # one of ROLES
    group: str | None = None  # a culture center: the communes of that group
    commune: str | None = None  # an operator's one commune
    disabled: bool = False
    languages: tuple[str, ...] = ()  # a reader's languages (codes of the deployment's languages)
    scope: tuple[str, ...] = ()  # a reader's groups and communes (ids, codes); empty: every commune


@dataclass(frozen=True, slots=True)
class PlayReport:
    user: str
    commune: str
    program: str
    kind: str  # "played" | "problem"
    note: str
    at: dt.datetime


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret (a session id or a token); what the store keeps."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        group=row["group_id"],
        commune=row["commune"],
        disabled=bool(row["disabled"]),
        languages=tuple(row.get("languages") or ()),
        scope=tuple(row.get("scope") or ()),
    )


def add_user(
    db: Database,
    name: str,
    *,
    password_hash: str,
    role: str,
    group: str | None = None,
    commune: str | None = None,
    languages: tuple[str, ...] = (),
    scope: tuple[str, ...] = (),
) -> User:
    if role not in ROLES:
        raise UsageError(f"user {name}: unknown role {role!r}; use one of {', '.join(ROLES)}")
    _check_reader(name, role, languages, scope)
    t = db.table("users")
    try:
        with db.engine.begin() as conn:
            new_id = conn.execute(
                t.insert().values(
                    name=name,
                    password_hash=password_hash,
                    role=role,
                    group_id=group,
                    commune=commune,
                    languages=list(languages) if role == "reader" else None,
                    scope=list(scope) if role == "reader" else None,
                    disabled=False,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
    except IntegrityError as exc:
        raise UsageError(f"user {name}: already exists; choose another name") from exc
    return get_user(db, int(new_id))


def _check_reader(name: object, role: str, languages: tuple[str, ...], scope: tuple[str, ...]) -> None:
    if role == "reader" and not languages:
        raise UsageError(f"user {name}: a reader reads at least one language", code="user.reader_languages")
    if role != "reader" and (languages or scope):
        raise UsageError(f"user {name}: only a reader has languages and a list of groups and communes")


def get_user(db: Database, user_id: int) -> User:
    t = db.table("users")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == user_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"user {user_id}: no such user")
    return _user(row)


def user_with_hash(db: Database, name: str) -> tuple[User, str] | None:
    """The user called ``name`` and the stored password hash, for checking a login."""
    t = db.table("users")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
    return None if row is None else (_user(row), row["password_hash"])


def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    t = db.table("users")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == user_id).values(password_hash=password_hash))


# --- sessions -------------------------------------------------------------------


def create_session(db: Database, session_id: str, *, user_id: int, csrf_token: str, lifetime: dt.timedelta) -> None:
    t = db.table("sessions")
    now = utcnow()
    with db.begin() as conn:
        conn.execute(t.delete().where(t.c.expires_at < now))
        conn.execute(
            t.insert().values(
                id_hash=digest(session_id),
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=now + lifetime,
            )
        )


def session_user(db: Database, session_id: str) -> tuple[User, str] | None:
    """The user of a live session and its CSRF token, or None."""
    s, u = db.table("sessions"), db.table("users")
    query = (
        sa.select(u, s.c.csrf_token, s.c.expires_at)
        .join(s, s.c.user_id == u.c.id)
        .where(s.c.id_hash == digest(session_id))
    )
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or row["disabled"]:
        return None
    expires = as_utc(row["expires_at"])
    if expires is None or expires < utcnow():
        return None
    return _user(row), row["csrf_token"]


def delete_session(db: Database, session_id: str) -> None:
    t = db.table("sessions")
    with db.begin() as conn:
        conn.execute(t.delete().where(t.c.id_hash == digest(session_id)))


# --- play reports ---------------------------------------------------------------


def add_play_report(db: Database, *, user: User, commune: str, program: str, kind: str, note: str) -> None:
    if kind not in REPORT_KINDS:
        raise UsageError(f"play report: unknown kind {kind!r}; use one of {', '.join(REPORT_KINDS)}")
    t = db.table("play_reports")
    with db.begin() as conn:
        conn.execute(
            t.insert().values(user_id=user.id, commune=commune, program=program, kind=kind, note=note, at=utcnow())
        )
        from pipeline.store.audit import record_in  # the report and its audit entry commit together

        record_in(conn, db, user.name, f"report.{kind}", f"program:{program}", note[:200])


def play_reports(db: Database, commune: str, *, limit: int = 50) -> list[PlayReport]:
    """Reports of one commune, newest first."""
    return all_play_reports(db, {commune}, limit=limit)


# --- accounts locked after too many failed logins --------------------------------


def lock_account(db: Database, name: str, *, failures: int) -> None:
    t = db.table("login_lockouts")
    with db.begin() as conn:
        if conn.execute(sa.select(t.c.name).where(t.c.name == name)).first() is None:
            conn.execute(t.insert().values(name=name, failures=failures, locked_at=utcnow()))


def account_locked(db: Database, name: str) -> dt.datetime | None:
    """When the account ``name`` was locked, or None."""
    t = db.table("login_lockouts")
    with db.begin() as conn:
        row = conn.execute(sa.select(t.c.locked_at).where(t.c.name == name)).first()
    return None if row is None else as_utc(row[0])


def locked_accounts(db: Database) -> dict[str, dt.datetime]:
    t = db.table("login_lockouts")
    with db.begin() as conn:
        return {r[0]: as_utc(r[1]) or utcnow() for r in conn.execute(sa.select(t.c.name, t.c.locked_at))}


def unlock_account(db: Database, name: str) -> bool:
    t = db.table("login_lockouts")
    with db.begin() as conn:
        return bool(conn.execute(t.delete().where(t.c.name == name)).rowcount)


# --- management ------------------------------------------------------------------


def list_users(db: Database) -> list[User]:
    t = db.table("users")
    with db.begin() as conn:
        return [_user(r) for r in conn.execute(sa.select(t).order_by(t.c.name)).mappings()]


def user_by_name(db: Database, name: str) -> User:
    found = user_with_hash(db, name)
    if found is None:
        raise NotFoundError(f"user {name}: no such user; see `loa user list`")
    return found[0]


def set_disabled(db: Database, user_id: int, disabled: bool) -> None:
    """Disable (sessions end at once: they are deleted) or enable a user."""
    t, s = db.table("users"), db.table("sessions")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == user_id).values(disabled=disabled))
        if disabled:
            conn.execute(s.delete().where(s.c.user_id == user_id))


def set_role_scope(
    db: Database,
    user_id: int,
    *,
    role: str,
    group: str | None,
    commune: str | None,
    languages: tuple[str, ...] = (),
    scope: tuple[str, ...] = (),
) -> None:
    if role not in ROLES:
        raise UsageError(f"user {user_id}: unknown role {role!r}; use one of {', '.join(ROLES)}")
    _check_reader(user_id, role, languages, scope)
    reader = role == "reader"
    values = {
        "role": role,
        "group_id": group,
        "commune": commune,
        "languages": list(languages) if reader else None,
        "scope": list(scope) if reader else None,
    }
    t = db.table("users")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == user_id).values(**values))


def end_sessions(db: Database, user_id: int, *, keep: str | None = None) -> None:
    """Delete the user's sessions (all but ``keep``, a session id): after a password change."""
    s = db.table("sessions")
    query = s.delete().where(s.c.user_id == user_id)
    if keep is not None:
        query = query.where(s.c.id_hash != digest(keep))
    with db.begin() as conn:
        conn.execute(query)


def all_play_reports(db: Database, communes: set[str], *, limit: int = 1000) -> list[PlayReport]:
    """Reports of ``communes``, newest first."""
    t, u = db.table("play_reports"), db.table("users")
    query = (
        sa.select(t, u.c.name)
        .join(u, u.c.id == t.c.user_id)
        .where(t.c.commune.in_(sorted(communes)))
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        PlayReport(
            user=r["name"],
            commune=r["commune"],
            program=r["program"],
            kind=r["kind"],
            note=r["note"],
            at=as_utc(r["at"]) or utcnow(),
        )
        for r in rows
    ]
