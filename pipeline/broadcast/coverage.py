"""Coverage by law and by commune: which of a commune's languages its bulletins aired in.

Decree 49/2024 asks commune stations to broadcast in the local ethnic languages; the
province must be able to show that it does. Per commune and language, per ISO week
(``2026-W49``) and month (``2026-12``), from the programs built for the range and delivered
(or pulled, or confirmed by a receipt: the reconciliation's ``delivered``):

- ``bulletins_read``      distinct bulletins that aired with a person's reading in the language;
- ``airings_required``    airings (one bulletin in one program) in a commune that lists the
                          language: by law each should carry it;
- ``airings_skipped``     of those, the ones that aired without any part in the language;
- ``placeholders_aired``  machine-made stand-ins for standard phrases of the language aired
                          (one per clip per program);
- ``minutes_on_air``      the language's airtime (readings, speech, standard phrases);
- ``share``               (required − skipped) / required; on a commune's ``all`` row: of every
                          (airing, language) pair the commune required, the share aired;
- ``languages_covered`` / ``languages_required``: languages with airings and none skipped,
                          against the commune's languages (a language row: 1 or 0, of 1).

Written into ``loa.report/2`` by ``pipeline.broadcast.statistics`` (docs/coverage.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pipeline.broadcast.reconcile import Reconciliation
from pipeline.models import Deployment
from pipeline.store import Database
from pipeline.store import reports as report_store

ALL = "all"


@dataclass(frozen=True, slots=True)
class CoverageRow:
    period: str  # "2026-W49" or "2026-12"
    commune: str
    language: str  # a language code, or "all": the commune's totals
    bulletins_read: int
    airings_required: int
    airings_skipped: int
    placeholders_aired: int
    ms_on_air: int
    languages_covered: int
    languages_required: int

    @property
    def share(self) -> float | None:
        if not self.airings_required:
            return None
        return round((self.airings_required - self.airings_skipped) / self.airings_required, 4)


@dataclass
class _Acc:
    read: set[int] = field(default_factory=set)
    required: int = 0
    skipped: int = 0
    placeholders: int = 0
    ms: int = 0


def week_of(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month_of(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}"


def clip_key(seg: report_store.SegmentInfo) -> str | None:
    """The catalog key of a clip segment ("hmn/greeting"), from its title."""
    if seg.kind != "clip" or ": " not in seg.title:
        return None
    return seg.title.rsplit(": ", 1)[1]


def coverage_rows(
    rec: Reconciliation, db: Database, deployment: Deployment, *, placeholders: Collection[str] = ()
) -> list[CoverageRow]:
    """Rows per period × commune × language (and the commune's ``all``), sorted."""
    aired = {line.program for line in rec.lines if line.delivered != "not delivered"}
    programs = [p for p in report_store.programs_between(db, rec.start, rec.end) if p.id in aired]
    segments = report_store.segments_of(db, (k for p in programs for k in p.items))
    languages = {c.code: c.languages for c in deployment.communes}
    acc: dict[tuple[str, str, str], _Acc] = defaultdict(_Acc)
    for p in programs:
        segs = [s for k in p.items if (s := segments.get(k)) is not None]
        required = languages.get(p.commune, ())
        per_bulletin: dict[int, set[str]] = defaultdict(set)
        for s in segs:
            if s.bulletin_id is not None:
                per_bulletin[s.bulletin_id].add(s.language)
        for period in (week_of(p.date), month_of(p.date)):
            for s in segs:
                if s.language in ("zxx", ""):
                    continue
                a = acc[(period, p.commune, s.language)]
                a.ms += s.duration_ms
                if s.kind == "recording" and s.bulletin_id is not None:
                    a.read.add(s.bulletin_id)
                if clip_key(s) in placeholders:
                    a.placeholders += 1
            for present in per_bulletin.values():
                for lang in required:
                    a = acc[(period, p.commune, lang)]
                    a.required += 1
                    a.skipped += lang not in present
    return _rows(acc, languages)


def _rows(acc: dict[tuple[str, str, str], _Acc], languages: dict[str, tuple[str, ...]]) -> list[CoverageRow]:
    out: list[CoverageRow] = []
    by_commune: dict[tuple[str, str], list[tuple[str, _Acc]]] = defaultdict(list)
    for (period, commune, lang), a in acc.items():
        by_commune[(period, commune)].append((lang, a))
    for (period, commune), items in sorted(by_commune.items(), key=lambda kv: (_period_order(kv[0][0]), kv[0][1])):
        order = list(languages.get(commune, ()))
        items.sort(key=lambda x: (order.index(x[0]) if x[0] in order else len(order), x[0]))
        rows = [_row(period, commune, lang, a, required=lang in order) for lang, a in items]
        total = _Acc(
            read=set().union(*(a.read for _, a in items)),
            required=sum(a.required for _, a in items),
            skipped=sum(a.skipped for _, a in items),
            placeholders=sum(a.placeholders for _, a in items),
            ms=sum(a.ms for _, a in items),
        )
        covered = sum(r.languages_covered for r in rows)
        out.append(
            CoverageRow(
                period,
                commune,
                ALL,
                len(total.read),
                total.required,
                total.skipped,
                total.placeholders,
                total.ms,
                covered,
                len(order),
            )
        )
        out.extend(rows)
    return out


def _row(period: str, commune: str, lang: str, a: _Acc, *, required: bool) -> CoverageRow:
    covered = int(required and a.required > 0 and a.skipped == 0)
    return CoverageRow(
        period, commune, lang, len(a.read), a.required, a.skipped, a.placeholders, a.ms, covered, int(required)
    )


def _period_order(period: str) -> tuple[str, int, str]:
    return (period[:4], 0 if "-W" in period else 1, period)


def rows_of(rows: Iterable[CoverageRow], period: str) -> list[CoverageRow]:
    return [r for r in rows if r.period == period]
