"""Emergency replays as data: when an emergency bulletin airs again after it first aired.

A khẩn cấp bulletin airs at once and is then replayed on a cadence until it expires or is
superseded (Decision 18/2021/QĐ-TTg asks for warnings to be repeated). The cadence is the
bulletin's front matter ``replay_every_minutes``; without one, emergency bulletins in the
categories emergency, storm and flood replay every ``DEFAULT_REPLAY_MINUTES`` (2 hours) and
others do not replay. ``replay_times`` is a pure function: the orchestrator puts its result
in the signed manifest so a device that goes offline keeps replaying; superseding or
cancelling is the manifest's business (a newer version replaces the schedule).

Quiet hours and a daily limit are optional: by the broadcast rules an emergency may air in
quiet hours, so a deployment passes ``quiet`` only if it wants *replays* (never the first
airing) to pause at night.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pipeline.models import REPLAYED_CATEGORIES, Bulletin, tier_of

DEFAULT_REPLAY_MINUTES = 120
#: A schedule longer than this is cut (a 15-minute cadence for two weeks is 1,344 times).
MAX_REPLAYS = 2_000

QuietHours = tuple[dt.time, dt.time]


def replay_every(b: Bulletin) -> int | None:
    """The bulletin's replay cadence in minutes, or None when it does not replay."""
    if tier_of(b.priority) != "emergency":
        return None
    if b.replay_every_minutes is not None:
        return b.replay_every_minutes
    return DEFAULT_REPLAY_MINUTES if b.category in REPLAYED_CATEGORIES else None


def in_quiet_hours(local: dt.time, quiet: QuietHours) -> bool:
    """Whether ``local`` falls in [start, end); a window such as 22:00–05:00 crosses midnight."""
    start, end = quiet
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def replay_times(
    issued: dt.datetime,
    expires: dt.datetime,
    every_minutes: int,
    *,
    quiet: QuietHours | None = None,
    max_per_day: int | None = None,
    tz: ZoneInfo | None = None,
    limit: int = MAX_REPLAYS,
) -> tuple[dt.datetime, ...]:
    """The times after ``issued`` and before ``expires`` at which the bulletin airs again.

    ``issued + k * every_minutes`` for k = 1, 2, … strictly before ``expires``; a time in
    ``quiet`` hours is skipped (the cadence keeps its rhythm); at most ``max_per_day`` a
    local day. Local time is ``tz`` (default: ``issued``'s zone); results are in that zone.
    """
    if issued.tzinfo is None or expires.tzinfo is None:
        raise ValueError("issued and expires must be timezone-aware")
    if every_minutes < 1:
        raise ValueError(f"every_minutes must be at least 1, not {every_minutes}")
    if max_per_day is not None and max_per_day < 0:
        raise ValueError(f"max_per_day must not be negative, not {max_per_day}")
    zone = tz or issued.tzinfo
    step = dt.timedelta(minutes=every_minutes)
    start = issued.astimezone(dt.UTC)
    end = expires.astimezone(dt.UTC)
    out: list[dt.datetime] = []
    per_day: dict[dt.date, int] = {}
    k = 1
    while len(out) < limit:
        at = (start + k * step).astimezone(zone)
        k += 1
        if at.astimezone(dt.UTC) >= end:
            break
        if quiet is not None and in_quiet_hours(at.timetz().replace(tzinfo=None), quiet):
            continue
        if max_per_day is not None:
            if per_day.get(at.date(), 0) >= max_per_day:
                continue
            per_day[at.date()] = per_day.get(at.date(), 0) + 1
        out.append(at)
    return tuple(out)


def expiry_of(b: Bulletin, tz: ZoneInfo) -> dt.datetime:
    """When a bulletin stops airing: the end of its last valid day, local time (as dispatch says)."""
    return dt.datetime.combine(b.valid_until, dt.time(23, 59, 59), tzinfo=tz)


def bulletin_replays(
    b: Bulletin,
    issued: dt.datetime,
    *,
    tz: ZoneInfo,
    quiet: QuietHours | None = None,
    max_per_day: int | None = None,
) -> tuple[dt.datetime, ...]:
    """The replay times of ``b`` first aired at ``issued`` (empty when it does not replay)."""
    every = replay_every(b)
    if every is None:
        return ()
    return replay_times(issued, expiry_of(b, tz), every, quiet=quiet, max_per_day=max_per_day, tz=tz)
