"""Statistics for the provincial source-information system; the one writer of ``loa.report/2``.

From a reconciliation (``pipeline.broadcast.reconcile``) of a date range: per month and per
quarter, bulletins and minutes (scheduled and played) by tier, language, commune and
topic (the bulletin's category), coverage (share of scheduled items played), and the
latency of each emergency bulletin from approval to the moment it was on every
endpoint of its communes; and coverage by law per commune and language per week and month
(``pipeline.broadcast.coverage``, docs/coverage.md). Written as CSV and JSON (schema:
``schemas/report-2.schema.json``; ``/2`` added ``coverage``) and pushed as JSON over HTTPS
with a bearer token.

An "item" is one bulletin in one program (a commune, a date, a slot); it counts as
played when a receipt reports a completed part of it. Played minutes are the parts
that completed; by language, each language's own parts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import ssl
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipeline import outbound
from pipeline.broadcast.coverage import CoverageRow, coverage_rows
from pipeline.broadcast.reconcile import PLAYED, Line, Reconciliation
from pipeline.config import OutboundSettings, ReportSettings
from pipeline.errors import ConfigError, DeliveryError, TransientDeliveryError
from pipeline.models import Deployment
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import receipts as receipt_store
from pipeline.store import reports as report_store

SCHEMA = "loa.report/2"
DIMENSIONS = ("all", "tier", "language", "commune", "topic")
FORMATS = ("csv", "json")
STAT_FIELDS = (
    "period",
    "dimension",
    "value",
    "bulletins",
    "items_scheduled",
    "items_played",
    "coverage",
    "minutes_scheduled",
    "minutes_played",
)
COVERAGE_FIELDS = (
    "period",
    "commune",
    "commune_name",
    "language",
    "bulletins_read",
    "airings_required",
    "airings_skipped",
    "placeholders_aired",
    "minutes_on_air",
    "share",
    "languages_covered",
    "languages_required",
)
LATENCY_FIELDS = (
    "bulletin",
    "title",
    "approved_at",
    "endpoints",
    "reached",
    "on_every_endpoint_at",
    "latency_seconds",
)


@dataclass(frozen=True, slots=True)
class Row:
    period: str  # "2026-12" or "2026-Q4"
    dimension: str  # one of DIMENSIONS
    value: str
    bulletins: int
    items_scheduled: int
    items_played: int
    ms_scheduled: int
    ms_played: int

    @property
    def coverage(self) -> float | None:
        return round(self.items_played / self.items_scheduled, 4) if self.items_scheduled else None


@dataclass(frozen=True, slots=True)
class Latency:
    bulletin_id: int
    title: str
    approved_at: dt.datetime
    endpoints: int  # endpoints of the communes it targets
    reached: int  # of which have it (pushed, or a receipt came back)
    on_every_endpoint_at: dt.datetime | None  # None: not on every endpoint yet

    @property
    def seconds(self) -> float | None:
        if self.on_every_endpoint_at is None:
            return None
        return round((self.on_every_endpoint_at - self.approved_at).total_seconds(), 1)


@dataclass(frozen=True, slots=True)
class Statistics:
    start: dt.date
    end: dt.date
    generated_at: dt.datetime
    rows: tuple[Row, ...]
    latency: tuple[Latency, ...]
    coverage: tuple[CoverageRow, ...] = ()
    commune_names: dict[str, str] = field(default_factory=dict)

    def rows_of(self, period_kind: str, dimension: str) -> list[Row]:
        """Rows of months (``"month"``) or quarters (``"quarter"``) for one dimension."""
        quarter = period_kind == "quarter"
        return [r for r in self.rows if r.dimension == dimension and ("-Q" in r.period) == quarter]


def month_of(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}"


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _keys(line: Line, dimension: str) -> list[tuple[str, int, int, bool]]:
    """(value, scheduled ms, played ms, played) the line counts under in ``dimension``.

    By language, an item counts as played in a language when some of that language's
    part of it played.
    """
    if dimension == "language":
        return [(lang, ms, played, played > 0) for lang, ms, played in line.language_ms] or [("?", 0, 0, False)]
    value = {"all": "all", "tier": line.tier, "commune": line.commune, "topic": line.category or "?"}[dimension]
    return [(value, line.duration_ms, line.played_ms, line.status == PLAYED)]


def group_lines(lines: Iterable[Line]) -> list[Row]:
    """Rows per month and quarter × dimension × value."""
    acc: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [set(), 0, 0, 0, 0])
    for line in lines:
        for period in (month_of(line.date), quarter_of(line.date)):
            for dimension in DIMENSIONS:
                for value, ms, played_ms, played in _keys(line, dimension):
                    a = acc[(period, dimension, value)]
                    if line.bulletin_id is not None:
                        a[0].add(line.bulletin_id)
                    a[1] += 1
                    a[2] += played
                    a[3] += ms
                    a[4] += played_ms
    return [
        Row(period, dimension, value, len(a[0]), a[1], a[2], a[3], a[4])
        for (period, dimension, value), a in sorted(
            acc.items(), key=lambda kv: (kv[0][0], DIMENSIONS.index(kv[0][1]), kv[0][2])
        )
    ]


def emergency_latency(
    db: Database, deployment: Deployment, start: dt.date, end: dt.date, *, tz: dt.tzinfo
) -> list[Latency]:
    """Approval → on every endpoint, for emergency bulletins approved between ``start`` and ``end``."""
    out = []
    receipts = receipt_store.receipts_between(db, start, end + dt.timedelta(days=31))
    for b in bulletin_store.list_bulletins(db):
        if b.priority != "emergency" or b.approved_at is None or b.id is None:
            continue
        if not start <= b.approved_at.astimezone(tz).date() <= end:
            continue
        endpoints = [e.name for c in deployment.targeted(b.targets) for e in c.endpoints]
        first: dict[str, dt.datetime] = {}
        for d in report_store.deliveries_for(db, [f"emergency/{b.id}"]):
            if d.status == "delivered" and d.finished_at is not None and d.endpoint not in first:
                first[d.endpoint] = d.finished_at
        for r in receipts:
            if r.program.endswith(f"/emergency/{b.id}") and r.endpoint in endpoints:
                at = r.issued_at
                first[r.endpoint] = min(first.get(r.endpoint, at), at)
        reached = [first[e] for e in endpoints if e in first]
        every = max(reached) if endpoints and len(reached) == len(endpoints) else None
        out.append(Latency(b.id, b.title, b.approved_at, len(endpoints), len(reached), every))
    return out


def compute_statistics(
    rec: Reconciliation,
    db: Database,
    deployment: Deployment,
    *,
    tz: dt.tzinfo,
    now: dt.datetime | None = None,
    placeholders: Collection[str] = (),
) -> Statistics:
    """``placeholders``: the catalog keys of the standard phrases that are machine-made stand-ins."""
    return Statistics(
        start=rec.start,
        end=rec.end,
        generated_at=(now or dt.datetime.now(dt.UTC)).astimezone(tz).replace(microsecond=0),
        rows=tuple(group_lines(rec.lines)),
        latency=tuple(emergency_latency(db, deployment, rec.start, rec.end, tz=tz)),
        coverage=tuple(coverage_rows(rec, db, deployment, placeholders=placeholders)),
        commune_names={c.code: c.name for c in deployment.communes},
    )


# --- the formats ----------------------------------------------------------------


def _minutes(ms: int) -> float:
    return round(ms / 60000, 2)


def _stat_record(r: Row) -> dict[str, Any]:
    return {
        "period": r.period,
        "dimension": r.dimension,
        "value": r.value,
        "bulletins": r.bulletins,
        "items_scheduled": r.items_scheduled,
        "items_played": r.items_played,
        "coverage": r.coverage,
        "minutes_scheduled": _minutes(r.ms_scheduled),
        "minutes_played": _minutes(r.ms_played),
    }


def _coverage_record(r: CoverageRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "period": r.period,
        "commune": r.commune,
        "commune_name": names.get(r.commune, r.commune),
        "language": r.language,
        "bulletins_read": r.bulletins_read,
        "airings_required": r.airings_required,
        "airings_skipped": r.airings_skipped,
        "placeholders_aired": r.placeholders_aired,
        "minutes_on_air": _minutes(r.ms_on_air),
        "share": r.share,
        "languages_covered": r.languages_covered,
        "languages_required": r.languages_required,
    }


def _latency_record(x: Latency) -> dict[str, Any]:
    return {
        "bulletin": x.bulletin_id,
        "title": x.title,
        "approved_at": x.approved_at.isoformat(),
        "endpoints": x.endpoints,
        "reached": x.reached,
        "on_every_endpoint_at": x.on_every_endpoint_at.isoformat() if x.on_every_endpoint_at else None,
        "latency_seconds": x.seconds,
    }


def to_document(s: Statistics, *, source: str = "loa") -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "source": source,
        "from": s.start.isoformat(),
        "to": s.end.isoformat(),
        "generated_at": s.generated_at.isoformat(),
        "statistics": [_stat_record(r) for r in s.rows],
        "emergency_latency": [_latency_record(x) for x in s.latency],
        "coverage": [_coverage_record(r, s.commune_names) for r in s.coverage],
    }


def to_json(s: Statistics) -> bytes:
    return (json.dumps(to_document(s), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _csv(fields: Sequence[str], records: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: "" if rec[k] is None else rec[k] for k in fields})
    return buf.getvalue().encode("utf-8-sig")  # a BOM so that spreadsheet programs read Vietnamese


def statistics_csv(s: Statistics) -> bytes:
    return _csv(STAT_FIELDS, (_stat_record(r) for r in s.rows))


def coverage_csv(s: Statistics) -> bytes:
    return _csv(COVERAGE_FIELDS, (_coverage_record(r, s.commune_names) for r in s.coverage))


def latency_csv(s: Statistics) -> bytes:
    return _csv(LATENCY_FIELDS, (_latency_record(x) for x in s.latency))


def write_report(s: Statistics, out_dir: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``statistics.csv``, ``emergency-latency.csv``, ``coverage.csv`` and/or ``report.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"loa-{s.start.isoformat()}_{s.end.isoformat()}"
    written = []
    if "csv" in formats:
        for name, data in (
            (f"{stem}-statistics.csv", statistics_csv(s)),
            (f"{stem}-emergency-latency.csv", latency_csv(s)),
            (f"{stem}-coverage.csv", coverage_csv(s)),
        ):
            (out_dir / name).write_bytes(data)
            written.append(out_dir / name)
    if "json" in formats:
        (out_dir / f"{stem}.json").write_bytes(to_json(s))
        written.append(out_dir / f"{stem}.json")
    return written


# --- the push -------------------------------------------------------------------


def report_token(settings: ReportSettings) -> str:
    if settings.token is not None and settings.token.get_secret_value():
        return settings.token.get_secret_value()
    if settings.token_file is not None:
        try:
            token = settings.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"[report] token_file {settings.token_file}: {exc.strerror}") from exc
        if token:
            return token
    raise ConfigError("[report]: no token; set LOA_REPORT__TOKEN or [report] token_file")


def push_report(
    data: bytes,
    settings: ReportSettings,
    *,
    outbound_policy: OutboundSettings,
    log: Callable[[str], None] | None = None,
) -> int:
    """POST the JSON report to ``[report] push_url`` with the bearer token; the HTTP status.

    Through the one outbound client (pipeline/outbound.py): an address ``outbound_policy``
    refuses (loopback, private, link-local… unless allowed) is refused before connecting."""
    url = settings.push_url
    if not url:
        raise ConfigError("[report] push_url is not set; add it to loa.toml (the province's receiving address)")
    scheme = urlsplit(url).scheme
    if scheme != "https" and not (scheme == "http" and settings.allow_http):
        raise ConfigError(f"[report] push_url {url}: use https (http only with [report] allow_http = true, for tests)")
    headers = {"Authorization": f"Bearer {report_token(settings)}", "Content-Type": "application/json"}
    verify: ssl.SSLContext | bool = True
    if settings.ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[report] ca_file {settings.ca_file}: {exc}") from exc
    try:
        with outbound.client(outbound_policy, timeout_s=settings.timeout_s, verify=verify) as client:
            response = client.post(url, content=data, headers=headers)
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"report push to {url}: {exc.__class__.__name__}: {exc}; try again") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"report push to {url}: HTTP {response.status_code}: {response.text[:200]}")
    if log is not None:
        log(f"pushed {len(data)} bytes to {url}: HTTP {response.status_code}")
    return response.status_code
