"""What readers must record: the reading queue, and how long a reading should take.

The queue comes from the orchestrator's planning (``Producer.plan_day``, drafts counted as
if approved: the same plans the calendar and the nightly build use, operators' decisions and
the broadcast policy included). Every (bulletin, language) that airs in a commune of the
reader's scope, in a language they read, without a current recording, is an entry: its
first airing a reading can still make, the deadline (the nightly build that builds that
day: ``[nightly] time`` the evening before), and how many communes and slots wait for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pipeline.config import Settings
from pipeline.models import TTS_LANGUAGES, Bulletin, Deployment, Recording
from pipeline.plan import SPOKEN_CHARS_PER_SECOND
from pipeline.produce import DayPlan, Producer, program_id, spoken_form
from pipeline.store import Database
from pipeline.store.recordings import current_recordings


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One reading still to record: a bulletin in one language."""

    bulletin: Bulletin
    language: str
    first_air: dt.datetime  # the first airing a reading submitted now can make (deployment time)
    deadline: dt.datetime  # the nightly build of that airing's day
    communes: tuple[str, ...]  # codes of the communes that wait for it, deployment order
    slots: int  # airings (commune, day, slot) that wait for it


def nightly_before(day: dt.date, *, nightly: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """When the nightly build that builds ``day`` runs: ``nightly`` on the day before."""
    return dt.datetime.combine(day - dt.timedelta(days=1), nightly, tzinfo=tz)


def queue_entries(
    plans: Iterable[DayPlan],
    *,
    languages: frozenset[str] | None,
    communes: frozenset[str] | None,
    nightly: dt.time,
    tz: dt.tzinfo,
    now: dt.datetime,
) -> list[QueueEntry]:
    """The queue from planned days: (bulletin, language) without a current recording, in
    ``languages`` and ``communes`` (None: every one), whose deadline is still ahead of ``now``;
    first airing first (then bulletin id, then language)."""
    airings: dict[tuple[int, str], list[tuple[dt.datetime, str]]] = {}
    bulletins: dict[int, Bulletin] = {}
    order: dict[str, int] = {}  # communes in the order the plans name them (deployment order)
    for day in plans:
        for c in day.communes:
            order.setdefault(c.code, len(order))
        refused = day.refused()
        stored = {b.id: b for b in day.bulletins}  # drafts are planned as approved; keep their true state
        deadline = nightly_before(day.date, nightly=nightly, tz=tz)
        if deadline <= now:
            continue  # that day is built already: a reading now cannot make it
        for plan in day.plans:
            if program_id(plan) in refused or (communes is not None and plan.commune.code not in communes):
                continue
            at = dt.datetime.combine(day.date, plan.slot.start, tzinfo=tz)
            for item in plan.items:
                bid = item.bulletin.id
                assert bid is not None
                for lang in item.languages:
                    if (languages is not None and lang not in languages) or (bid, lang) in day.recordings:
                        continue
                    bulletins[bid] = stored.get(bid, item.bulletin)
                    airings.setdefault((bid, lang), []).append((at, plan.commune.code))
    entries = []
    for (bid, lang), seen in airings.items():
        first = min(at for at, _ in seen)
        codes = sorted({code for _, code in seen}, key=lambda c: (order.get(c, 0), c))
        entries.append(
            QueueEntry(
                bulletin=bulletins[bid],
                language=lang,
                first_air=first,
                deadline=nightly_before(first.date(), nightly=nightly, tz=tz),
                communes=tuple(codes),
                slots=len(seen),
            )
        )
    return sorted(entries, key=lambda e: (e.first_air, e.bulletin.id or 0, e.language))


def reading_queue(
    producer: Producer,
    *,
    languages: frozenset[str] | None,
    communes: frozenset[str] | None,
    now: dt.datetime,
    days: int,
) -> list[QueueEntry]:
    """The queue of the next ``days`` days (from today), planned by ``producer``."""
    settings = producer.settings
    tz = settings.tz
    today = now.astimezone(tz).date()
    nightly = dt.time.fromisoformat(settings.nightly.time)
    wanted = [c for c in producer.deployment.communes if communes is None or c.code in communes]
    if not wanted:
        return []
    plans = [_plan(producer, today + dt.timedelta(days=i), [c.code for c in wanted]) for i in range(days)]
    return queue_entries(
        (p for day in plans for p in day), languages=languages, communes=communes, nightly=nightly, tz=tz, now=now
    )


def _plan(producer: Producer, day: dt.date, codes: Sequence[str]) -> list[DayPlan]:
    if len(codes) == len(producer.deployment.communes):
        return [producer.plan_day(day, drafts=True)]
    return [producer.plan_day(day, commune=code, drafts=True) for code in codes]


# --- how long a reading should take --------------------------------------------------

#: What the reader and the approver read for a reading's length warning.
READING_WARNINGS_VI = {
    "reading_short": "Bản đọc ngắn hơn nhiều so với thời gian đọc văn bản tiếng Việt: có thể bị sót đoạn. "
    "Hãy nghe lại; nếu thiếu, hãy đọc đủ rồi ghi lại.",
    "reading_long": "Bản đọc dài hơn nhiều so với thời gian đọc văn bản tiếng Việt: có thể có đoạn thừa "
    "hoặc khoảng lặng dài. Hãy nghe lại trước khi duyệt.",
}


def expected_ms(b: Bulletin, *, spoken: Callable[[str], str]) -> int:
    """How long the Vietnamese text takes read aloud (the planner's estimate, without overheads)."""
    text = spoken(f"{b.title}. {b.body}")
    return len(text) * 1000 // SPOKEN_CHARS_PER_SECOND


def reading_length_warnings(settings: Settings, b: Bulletin, rec: Recording) -> tuple[str, ...]:
    """``("reading_short",)``/``("reading_long",)`` when ``rec`` is far from the Vietnamese text's
    length (``[readers] min_ratio``, ``max_ratio``); else ``()``."""
    band = settings.readers
    expected = expected_ms(b, spoken=spoken_form(settings))
    found = length_warning(rec.duration_ms, expected, low=band.min_ratio, high=band.max_ratio)
    return (found,) if found else ()


def length_warning(duration_ms: int, expected: int, *, low: float, high: float) -> str | None:
    """``reading_short`` or ``reading_long`` when duration/expected is outside [low, high]; else None."""
    if expected <= 0:
        return None
    ratio = duration_ms / expected
    if ratio < low:
        return "reading_short"
    if ratio > high:
        return "reading_long"
    return None


# --- what the approver is told --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LanguageNeed:
    """A language the bulletin's communes speak, and whether a reading exists."""

    language: str
    communes: tuple[str, ...]  # names of the targeted communes that speak it
    recorded: bool
    tts: bool  # no reading, but the synthetic voice speaks it (Vietnamese)

    @property
    def missing(self) -> bool:
        """It will not air in those communes: no reading and no synthetic voice."""
        return not self.recorded and not self.tts


def language_needs(db: Database, deployment: Deployment, b: Bulletin) -> list[LanguageNeed]:
    """Each language the targeted communes speak (first-seen order) with its reading's state."""
    assert b.id is not None
    recs = current_recordings(db, [b.id])
    needs: dict[str, list[str]] = {}
    for c in deployment.targeted(b.targets):
        for lang in c.languages:
            needs.setdefault(lang, []).append(c.name)
    return [
        LanguageNeed(lang, tuple(names), (b.id, lang) in recs, lang in TTS_LANGUAGES and (b.id, lang) not in recs)
        for lang, names in needs.items()
    ]


def missing_languages(needs: Sequence[LanguageNeed]) -> tuple[str, ...]:
    return tuple(n.language for n in needs if n.missing)
