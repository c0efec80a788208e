"""What is due to play, from the signed manifests in force and what was played already.

- a program plays at its slot's start; if the agent was down then, it still plays up to
  ``late_grace`` later (the receipt says how late); never after its manifest expires;
- an emergency plays once when it arrives (at its program's start, normally "now"),
  then again at each replay time of its manifest, offline or not; replay times missed
  while the agent was off are skipped but for the latest (within ``replay_grace``);
  nothing more after its signed cancel or its expiry;
- emergencies come first, and interrupt a program that is playing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from loa_protocol import manifest as mf

EMERGENCY, PROGRAM = 0, 1


@dataclass(frozen=True)
class Event:
    priority: int  # EMERGENCY before PROGRAM
    at: dt.datetime  # when it was due
    keys: tuple[str, ...]  # the journal keys this showing covers
    manifest: mf.Manifest
    program: mf.ProgramEntry
    note: str = ""

    @property
    def folder(self) -> str:
        return self.manifest.folder


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def emergency_live(m: mf.Manifest, now: dt.datetime) -> bool:
    em = m.emergency
    return em is not None and not em.cancelled and now < em.expires and not m.expired(now) and bool(m.programs)


def _emergency(m: mf.Manifest, now: dt.datetime, played: set[str], replay_grace: dt.timedelta) -> Event | None:
    em = m.emergency
    if em is None or not emergency_live(m, now):
        return None
    program = m.programs[0]
    first = f"em:{em.bulletin}:first"
    keys, at, note = [], program.start, ""
    if first not in played and program.start <= now:
        keys.append(first)
    due = [t for t in em.replay if t <= now < t + replay_grace]
    if due:
        latest = max(due)
        key = f"em:{em.bulletin}:{_stamp(latest)}"
        if key not in played:
            keys.append(key)
            at, note = latest, f"replay {latest.isoformat()}"
    if not keys:
        return None
    return Event(EMERGENCY, at, tuple(keys), m, program, note)


def due(
    manifests: Iterable[mf.Manifest],
    now: dt.datetime,
    played: set[str],
    *,
    late_grace: dt.timedelta,
    replay_grace: dt.timedelta,
) -> list[Event]:
    """Everything due at ``now`` and not yet played, emergencies first, then by time."""
    out: list[Event] = []
    for m in manifests:
        if m.expired(now):
            continue
        if m.emergency is not None:
            ev = _emergency(m, now, played, replay_grace)
            if ev is not None:
                out.append(ev)
            continue
        for p in m.programs:
            key = f"prog:{p.id}"
            if key in played or not (p.start <= now < p.start + late_grace):
                continue
            late = (now - p.start).total_seconds()
            out.append(Event(PROGRAM, p.start, (key,), m, p, f"late by {late:.0f} s" if late > 5 else ""))
    return sorted(out, key=lambda e: (e.priority, e.at))


def next_time(manifests: Iterable[mf.Manifest], now: dt.datetime, played: set[str]) -> dt.datetime | None:
    """The earliest moment after ``now`` at which something may become due (or a manifest expires)."""
    times: list[dt.datetime] = []
    for m in manifests:
        if m.expired(now):
            continue
        times.append(m.valid_until)
        if m.emergency is not None:
            if emergency_live(m, now):
                times.append(m.emergency.expires)
                times.extend(t for t in m.emergency.replay if t > now)
                times.extend(p.start for p in m.programs if p.start > now)
            continue
        times.extend(p.start for p in m.programs if p.start > now and f"prog:{p.id}" not in played)
    later = [t for t in times if t > now]
    return min(later) if later else None
