"""Consultation campaigns and their answers.

A campaign row is written in the same transaction as the draft bulletin that declares it
(``sync_campaign``, called by ``bulletins.save_bulletins``); answers come from the public
page, operators' village meetings and devices. Personal fields (name, phone) can be
erased — by retention or on a person's request — without touching values or counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pipeline.errors import NotFoundError, UsageError
from pipeline.models import Answer, Bulletin, Consultation
from pipeline.store.bulletins import spec_from_json, spec_to_json
from pipeline.store.db import Database, as_utc, utcnow


def sync_campaign(conn: Connection, db: Database, b: Bulletin) -> None:
    """Create or update the campaign a stored bulletin declares (nothing when it declares none)."""
    if b.consultation is None or b.id is None:
        return
    t = db.table("consultations")
    code = b.consultation.code
    clash = conn.execute(sa.select(t.c.bulletin_id).where(t.c.code == code, t.c.bulletin_id != b.id)).first()
    if clash is not None:
        raise UsageError(
            f"{b.source_file or 'bulletin'}: consultation.code: {code!r} is already the code of bulletin "
            f"{clash[0]}'s consultation; choose another code"
        )
    values = {"code": code, "policy": b.policy, "spec": spec_to_json(b.consultation), "updated_at": utcnow()}
    row = conn.execute(sa.select(t.c.id).where(t.c.bulletin_id == b.id)).first()
    if row is None:
        conn.execute(t.insert().values(**values, bulletin_id=b.id, agency_answer="", created_at=utcnow()))
    else:
        conn.execute(t.update().where(t.c.id == row[0]).values(**values))


def _campaign(row: RowMapping) -> Consultation:
    return Consultation(
        id=row["id"],
        spec=spec_from_json(row["spec"]),
        bulletin_id=row["bulletin_id"],
        title=row["title"],
        policy=row["policy"],
        targets=tuple(row["targets"]),
        bulletin_status=row["status"],
        agency_answer=row["agency_answer"] or "",
        followup_bulletin_id=row["followup_bulletin_id"],
        created_at=as_utc(row["created_at"]),
    )


def _campaign_query(db: Database) -> sa.Select[Any]:
    t, b = db.table("consultations"), db.table("bulletins")
    return sa.select(t, b.c.title, b.c.targets, b.c.status).join(b, b.c.id == t.c.bulletin_id).order_by(t.c.id)


def list_campaigns(db: Database) -> list[Consultation]:
    with db.begin() as conn:
        return [_campaign(r) for r in conn.execute(_campaign_query(db)).mappings()]


def get_campaign(db: Database, ref: int | str) -> Consultation:
    """A campaign by id (a number) or code ("GY27")."""
    t = db.table("consultations")
    text = str(ref).strip()
    cond = t.c.id == int(text) if text.isdigit() else t.c.code == text.upper()
    with db.begin() as conn:
        row = conn.execute(_campaign_query(db).where(cond)).mappings().first()
    if row is None:
        raise NotFoundError(f"consultation {ref}: no such consultation; see `loa consultation list`")
    return _campaign(row)


def set_agency_answer(db: Database, campaign_id: int, text: str, *, followup_bulletin_id: int | None = None) -> None:
    with db.begin() as conn:
        set_agency_answer_in(conn, db, campaign_id, text, followup_bulletin_id=followup_bulletin_id)


def set_agency_answer_in(
    conn: Connection, db: Database, campaign_id: int, text: str, *, followup_bulletin_id: int | None = None
) -> None:
    """``set_agency_answer`` inside the caller's transaction (with the follow-up bulletin it made)."""
    t = db.table("consultations")
    values: dict[str, Any] = {"agency_answer": text, "updated_at": utcnow()}
    if followup_bulletin_id is not None:
        values["followup_bulletin_id"] = followup_bulletin_id
    conn.execute(t.update().where(t.c.id == campaign_id).values(**values))


# --- answers --------------------------------------------------------------------


def _answer(row: RowMapping) -> Answer:
    return Answer(
        id=row["id"],
        consultation_id=row["consultation_id"],
        channel=row["channel"],
        values=tuple(row["answer_values"]),
        notes=tuple(row["notes"]),
        commune=row["commune"],
        language=row["language"],
        people=row["people"],
        name=row["name"],
        phone=row["phone"],
        consent=bool(row["consent"]),
        topic=row["topic"],
        hidden=bool(row["hidden"]),
        merged_into=row["merged_into"],
        recording=row["recording"],
        source=row["source"],
        created_at=as_utc(row["created_at"]),
        erased_at=as_utc(row["erased_at"]),
    )


def add_answer(db: Database, a: Answer) -> Answer:
    t = db.table("answers")
    with db.begin() as conn:
        new_id = conn.execute(
            t.insert().values(
                consultation_id=a.consultation_id,
                channel=a.channel,
                answer_values=list(a.values),
                notes=list(a.notes),
                commune=a.commune,
                language=a.language,
                people=a.people,
                name=a.name,
                phone=a.phone,
                consent=a.consent,
                topic=a.topic,
                hidden=a.hidden,
                merged_into=a.merged_into,
                recording=a.recording,
                source=a.source,
                created_at=a.created_at or utcnow(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        row = conn.execute(sa.select(t).where(t.c.id == new_id)).mappings().one()
    return _answer(row)


def list_answers(db: Database, campaign_id: int) -> list[Answer]:
    t = db.table("answers")
    query = sa.select(t).where(t.c.consultation_id == campaign_id).order_by(t.c.id)
    with db.begin() as conn:
        return [_answer(r) for r in conn.execute(query).mappings()]


def count_answers(db: Database, campaign_id: int, *, since: dt.datetime | None = None) -> int:
    t = db.table("answers")
    query = sa.select(sa.func.count()).select_from(t).where(t.c.consultation_id == campaign_id)
    if since is not None:
        query = query.where(t.c.created_at >= since)
    with db.begin() as conn:
        return int(conn.execute(query).scalar_one())


def get_answer(db: Database, campaign_id: int, answer_id: int) -> Answer:
    t = db.table("answers")
    with db.begin() as conn:
        row = (
            conn.execute(sa.select(t).where(t.c.id == answer_id, t.c.consultation_id == campaign_id)).mappings().first()
        )
    if row is None:
        raise NotFoundError(f"answer {answer_id}: not an answer of consultation {campaign_id}")
    return _answer(row)


def moderate(
    db: Database,
    campaign_id: int,
    answer_id: int,
    *,
    hidden: bool | None = None,
    topic: str | None = None,
    merged_into: int | None = None,
    by: str | None = None,
) -> Answer:
    """Hide or show an answer, tag its topic, or merge it into another answer (a duplicate).

    ``by`` (who moderates) gets an audit entry written in the same transaction.
    """
    get_answer(db, campaign_id, answer_id)
    values: dict[str, Any] = {}
    if hidden is not None:
        values["hidden"] = hidden
    if topic is not None:
        values["topic"] = topic.strip()[:80]
    if merged_into is not None:
        if merged_into == answer_id:
            raise UsageError(
                f"answer {answer_id}: cannot be merged into itself", code="consultation.merge.self", answer=answer_id
            )
        target = get_answer(db, campaign_id, merged_into)
        if target.merged_into is not None:
            raise UsageError(
                f"answer {merged_into}: is itself merged into {target.merged_into}; merge into that one",
                code="consultation.merge.chain",
                answer=merged_into,
                into=target.merged_into,
            )
        values["merged_into"] = merged_into
    if values:
        t = db.table("answers")
        with db.begin() as conn:
            conn.execute(t.update().where(t.c.id == answer_id).values(**values))
            if merged_into is not None:  # what was merged into this one follows it
                conn.execute(t.update().where(t.c.merged_into == answer_id).values(merged_into=merged_into))
            if by is not None:
                from pipeline.store.audit import record_in

                what = ", ".join(f"{k}={v}" for k, v in values.items())
                record_in(conn, db, by, "consultation.moderated", f"answer:{answer_id}", f"#{campaign_id} {what}")
    return get_answer(db, campaign_id, answer_id)


# --- personal data --------------------------------------------------------------

_ERASED = {"name": "", "phone": "", "recording": ""}


def erase_personal_before(db: Database, cutoff: dt.datetime) -> list[Answer]:
    """Erase name, phone and voice message of answers made before ``cutoff``; return them (before erasure)."""
    t = db.table("answers")
    personal = sa.or_(t.c.name != "", t.c.phone != "", t.c.recording != "")
    with db.begin() as conn:
        rows = [_answer(r) for r in conn.execute(sa.select(t).where(t.c.created_at < cutoff, personal)).mappings()]
        if rows:
            conn.execute(t.update().where(t.c.id.in_([a.id for a in rows])).values(**_ERASED, erased_at=utcnow()))
    return rows


def answers_by_phone(db: Database, phone: str) -> list[Answer]:
    t = db.table("answers")
    with db.begin() as conn:
        query = sa.select(t).where(t.c.phone == phone, t.c.phone != "").order_by(t.c.id)
        return [_answer(r) for r in conn.execute(query).mappings()]


def erase_by_phone(db: Database, phone: str) -> list[Answer]:
    """A person's request: their answers keep their values; name, phone and voice message go."""
    found = answers_by_phone(db, phone)
    if found:
        t = db.table("answers")
        with db.begin() as conn:
            conn.execute(t.update().where(t.c.id.in_([a.id for a in found])).values(**_ERASED, erased_at=utcnow()))
    return found


# --- the policy timeline ----------------------------------------------------------


def policy_bulletins(db: Database, policy: str) -> list[Bulletin]:
    from pipeline.store.bulletins import _from_row

    t = db.table("bulletins")
    with db.begin() as conn:
        rows = conn.execute(sa.select(t).where(t.c.policy == policy).order_by(t.c.valid_from, t.c.id)).mappings()
        return [_from_row(r) for r in rows]


def policies(db: Database) -> list[str]:
    t = db.table("bulletins")
    with db.begin() as conn:
        rows = conn.execute(sa.select(t.c.policy).where(t.c.policy.is_not(None), t.c.policy != "").distinct())
        return sorted(r[0] for r in rows)


def airings(db: Database, bulletin_ids: list[int]) -> list[dict[str, Any]]:
    """Programs that carried these bulletins: program id, commune, date, slot, bulletin, languages, delivered to."""
    if not bulletin_ids:
        return []
    seg, prog, dlv = db.table("segments"), db.table("programs"), db.table("deliveries")
    with db.begin() as conn:
        keys = {
            r.key: (r.bulletin_id, r.language)
            for r in conn.execute(
                sa.select(seg.c.key, seg.c.bulletin_id, seg.c.language).where(seg.c.bulletin_id.in_(bulletin_ids))
            )
        }
        if not keys:
            return []
        out: list[dict[str, Any]] = []
        for p in conn.execute(sa.select(prog).order_by(prog.c.date, prog.c.commune, prog.c.slot)).mappings():
            hits = [keys[k] for k in p["items"] if k in keys]
            if not hits:
                continue
            delivered = sorted(
                r[0]
                for r in conn.execute(
                    sa.select(dlv.c.endpoint)
                    .where(
                        dlv.c.commune == p["commune"],
                        dlv.c.status == "delivered",
                        dlv.c.program.in_([p["id"], p["date"].isoformat()]),
                    )
                    .distinct()
                )
            )
            for bid in sorted({h[0] for h in hits}):
                out.append(
                    {
                        "program": p["id"],
                        "commune": p["commune"],
                        "date": p["date"],
                        "slot": p["slot"],
                        "bulletin_id": bid,
                        "languages": sorted({h[1] for h in hits if h[0] == bid}),
                        "delivered": delivered,
                    }
                )
        return out
