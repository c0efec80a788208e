"""Reconcile: what was scheduled, what was delivered, what was played — and which devices are silent.

Scheduled is the programs table (every program the build recorded) with the bulletins
its segments carry; delivered is the deliveries table (pushes) and the pull API's token
use; played is the receipts (``loa.receipt/1``: pull devices, SFTP devices, the
operator's buttons). One line per commune, date, slot and bulletin:

- ``played``      a receipt has a completed item of that bulletin in that program;
- ``not played``  no such item; the reason is the receipt's, else "not delivered …",
                  else "no receipt";
- and separately, receipt items that match nothing scheduled: "played but not scheduled"
  with the reason ("no such program was built", "bulletin not in this program").

Device health: per endpoint the last push, pull and receipt; a commune whose endpoints
(and operator page) have all been silent for more than ``silent_after`` is flagged.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline import models
from pipeline.broadcast.receipts import Receipt, web_endpoint
from pipeline.models import Bulletin, Delivery, Deployment
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import receipts as receipt_store
from pipeline.store import reports as report_store

PLAYED, NOT_PLAYED = "played", "not played"


@dataclass(frozen=True, slots=True)
class Line:
    """One scheduled bulletin of one program (bulletin None: a program without bulletins)."""

    commune: str
    date: dt.date
    slot: str
    program: str
    bulletin_id: int | None
    title: str
    tier: str
    category: str
    languages: tuple[str, ...]
    duration_ms: int  # its scheduled airtime in this program
    language_ms: tuple[tuple[str, int, int], ...]  # (language, scheduled ms, played ms)
    delivered: str  # "delivered" | "pulled" | "receipt" | "not delivered"
    status: str  # PLAYED | NOT_PLAYED
    played_ms: int = 0
    sources: tuple[str, ...] = ()  # receipt sources that report it played
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Unscheduled:
    """A receipt item that matches nothing scheduled."""

    commune: str
    date: dt.date
    program: str
    endpoint: str
    source: str
    bulletin_id: int | None
    file: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    endpoint: str
    commune: str
    last_push: dt.datetime | None
    last_pull: dt.datetime | None
    last_receipt: dt.datetime | None

    @property
    def last_contact(self) -> dt.datetime | None:
        return max((t for t in (self.last_push, self.last_pull, self.last_receipt) if t is not None), default=None)


@dataclass(frozen=True, slots=True)
class CommuneHealth:
    code: str
    name: str
    endpoints: tuple[EndpointHealth, ...]
    last_contact: dt.datetime | None
    silent: bool


@dataclass(frozen=True, slots=True)
class Reconciliation:
    start: dt.date
    end: dt.date
    lines: tuple[Line, ...]
    unscheduled: tuple[Unscheduled, ...]
    health: tuple[CommuneHealth, ...]

    @property
    def not_played(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.status == NOT_PLAYED)


def tier_of(priority: str) -> str:
    """The tier a bulletin's priority reports under (Circular 39/2020's names).

    Round-one names map through ``models.tier_of`` (routine → normal, urgent → priority);
    anything unknown is reported as it is written.
    """
    return models.tier_of(priority) or priority


def _delivery_label(program_id: str, day: dt.date) -> str:
    parts = program_id.split("/")
    return f"emergency/{parts[2]}" if len(parts) == 3 and parts[1] == "emergency" else day.isoformat()


def _receipts_by_program(receipts: Iterable[Receipt]) -> dict[str, list[Receipt]]:
    out: dict[str, list[Receipt]] = defaultdict(list)
    for r in receipts:
        out[r.program].append(r)
    return out


def reconcile(
    db: Database,
    deployment: Deployment,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime | None = None,
    silent_after: dt.timedelta = dt.timedelta(days=1),
    communes: set[str] | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> Reconciliation:
    """Scheduled vs delivered vs played for programs dated ``start``..``end`` (``communes``: only those)."""
    now = now or dt.datetime.now(dt.UTC)
    programs = [p for p in report_store.programs_between(db, start, end) if communes is None or p.commune in communes]
    segments = report_store.segments_of(db, (k for p in programs for k in p.items))
    bulletins = {b.id: b for b in bulletin_store.list_bulletins(db)}
    by_sha = {s.sha256: s for s in segments.values()}
    receipts = [r for r in receipt_store.receipts_between(db, start, end) if communes is None or r.commune in communes]
    by_program = _receipts_by_program(receipts)
    labels = {_delivery_label(p.id, p.date) for p in programs}
    deliveries = report_store.deliveries_for(db, labels)
    pulls = report_store.last_pull_at(db)
    endpoints_of = {c.code: [e.name for e in c.endpoints] for c in deployment.communes}

    lines: list[Line] = []
    scheduled_keys: set[tuple[str, int | None]] = set()
    for p in programs:
        per_bulletin: dict[int | None, list[report_store.SegmentInfo]] = defaultdict(list)
        for key in p.items:
            seg = segments.get(key)
            if seg is not None and seg.bulletin_id is not None:
                per_bulletin[seg.bulletin_id].append(seg)
        if not per_bulletin:
            per_bulletin[None] = [s for k in p.items if (s := segments.get(k)) is not None]
        delivered = _delivered(p, deliveries, pulls, endpoints_of.get(p.commune, []), by_program.get(p.id, []))
        for bid, segs in per_bulletin.items():
            scheduled_keys.add((p.id, bid))
            b = bulletins.get(bid) if bid is not None else None
            lines.append(_line(p, bid, b, segs, delivered, by_program.get(p.id, []), by_sha))
    unscheduled = _unscheduled(receipts, scheduled_keys, {p.id for p in programs}, by_sha, tz)
    health = _health(db, deployment, now=now, silent_after=silent_after, pulls=pulls, communes=communes)
    return Reconciliation(start, end, tuple(lines), tuple(unscheduled), tuple(health))


def _delivered(
    p: report_store.BuiltProgram,
    deliveries: list[Delivery],
    pulls: dict[str, dt.datetime],
    endpoints: list[str],
    receipts: list[Receipt],
) -> str | tuple[str, str]:
    label = _delivery_label(p.id, p.date)
    mine = [d for d in deliveries if d.program == label and d.endpoint in endpoints]
    if any(d.status == "delivered" for d in mine):
        return "delivered"
    if any(pulls.get(e) is not None and pulls[e] >= p.built_at for e in endpoints):
        return "pulled"
    if any(not r.endpoint.startswith("web:") for r in receipts):
        return "receipt"
    errors = [d.error for d in mine if d.error]
    return ("not delivered", errors[-1] if errors else "")


def _line(
    p: report_store.BuiltProgram,
    bid: int | None,
    b: Bulletin | None,
    segs: list[report_store.SegmentInfo],
    delivered: str | tuple[str, str],
    receipts: list[Receipt],
    by_sha: dict[str, report_store.SegmentInfo],
) -> Line:
    shas = {s.sha256 for s in segs}
    played_ms, sources, reasons = 0, set(), []
    played_language: dict[str, int] = defaultdict(int)
    for r in receipts:
        for item in r.items:
            mine = item.bulletin_id == bid if bid is not None and item.bulletin_id is not None else item.sha256 in shas
            if not mine:
                continue
            if item.completed:
                sources.add(r.source)
                seg = by_sha.get(item.sha256)
                played_ms += item.duration_ms or (seg.duration_ms if seg else 0)
                if seg is not None:
                    played_language[seg.language] += seg.duration_ms
            elif item.reason:
                reasons.append(f"{r.endpoint}: {item.reason}")
    delivered_word = delivered if isinstance(delivered, str) else delivered[0]
    status = PLAYED if sources else NOT_PLAYED
    reason = None
    if status == NOT_PLAYED:
        if reasons:
            reason = reasons[-1]
        elif receipts:
            reason = "the receipts do not list it"
        elif isinstance(delivered, tuple):
            reason = "not delivered" + (f" ({delivered[1]})" if delivered[1] else "")
        else:
            reason = "no receipt"
    languages = tuple(dict.fromkeys(s.language for s in segs))
    by_language = [
        (lang, ms, min(played_language[lang], ms))
        for lang in languages
        for ms in [sum(s.duration_ms for s in segs if s.language == lang)]
    ]
    return Line(
        commune=p.commune,
        date=p.date,
        slot=p.slot,
        program=p.id,
        bulletin_id=bid,
        title=b.title if b else "",
        tier=tier_of(b.priority) if b else ("emergency" if p.kind == "emergency" else "normal"),
        category=b.category if b else "",
        languages=languages,
        duration_ms=sum(s.duration_ms for s in segs),
        language_ms=tuple(by_language),
        delivered=delivered_word,
        status=status,
        played_ms=min(played_ms, sum(s.duration_ms for s in segs)) if sources else 0,
        sources=tuple(sorted(sources)),
        reason=reason,
    )


def _unscheduled(
    receipts: list[Receipt],
    scheduled: set[tuple[str, int | None]],
    programs: set[str],
    by_sha: dict[str, report_store.SegmentInfo],
    tz: dt.tzinfo,
) -> list[Unscheduled]:
    out = []
    for r in receipts:
        day = receipt_store.program_day(r.program, r.issued_at, tz)
        for item in r.items:
            if not item.completed:
                continue
            seg = by_sha.get(item.sha256)
            bid = item.bulletin_id if item.bulletin_id is not None else (seg.bulletin_id if seg else None)
            if r.program not in programs:
                why = "no such program was built"
            elif (r.program, bid) in scheduled or (bid is None and seg is not None):
                continue
            else:
                why = "bulletin not in this program" if bid is not None else "file not in this program"
            out.append(Unscheduled(r.commune, day, r.program, r.endpoint, r.source, bid, item.file, why))
    return out


def _health(
    db: Database,
    deployment: Deployment,
    *,
    now: dt.datetime,
    silent_after: dt.timedelta,
    pulls: dict[str, dt.datetime],
    communes: set[str] | None,
) -> list[CommuneHealth]:
    pushes = report_store.last_push_at(db)
    receipts = receipt_store.last_receipt_at(db)
    out = []
    for c in deployment.communes:
        if communes is not None and c.code not in communes:
            continue
        eps = tuple(
            EndpointHealth(e.name, c.code, pushes.get(e.name), pulls.get(e.name), receipts.get(e.name))
            for e in c.endpoints
        )
        contacts = [e.last_contact for e in eps if e.last_contact is not None]
        if (web := receipts.get(web_endpoint(c.code))) is not None:
            contacts.append(web)
        last = max(contacts, default=None)
        out.append(CommuneHealth(c.code, c.name, eps, last, last is None or now - last > silent_after))
    return out
