"""The bookkeeping of a streaming run: which commune waits for which unit, and when each was reached.

A night (or an emergency) is a dependency graph: a commune's package needs the segments
of its programs, an endpoint's delivery needs its commune's package. The orchestrator
(``pipeline.produce``) unrolls it as results arrive; this module only keeps count, so the
rule "a commune goes on the moment its own segments exist" is tested here on its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pipeline.units import RenderUnit


@dataclass(frozen=True, slots=True)
class Reached:
    """When a commune's programs reached every one of its endpoints, in seconds from the run's start.

    ``seconds`` is None when an endpoint was not reached (its delivery failed).
    """

    commune: str
    seconds: float | None


def effort(unit: RenderUnit) -> int:
    """A rough measure of a render unit's work, to order units by: characters of speech;
    a recording as much as a minute of speech; a clip or a chime a few words; a pause nothing."""
    if unit.kind == "speech":
        return max(1, len(unit.text))
    if unit.kind == "recording":
        return 900
    return 1 if unit.kind == "pause" else 50


class Waiting:
    """Communes and the render keys each still waits for.

    ``ranks``: how urgent each commune is (lower first; 0 for any not named).
    """

    def __init__(self, needs: Mapping[str, Iterable[str]], ranks: Mapping[str, int] | None = None) -> None:
        self._missing = {commune: set(keys) for commune, keys in needs.items()}
        self._rank = dict(ranks or {})
        self._needers: dict[str, list[str]] = {}
        for commune, keys in self._missing.items():
            for key in keys:
                self._needers.setdefault(key, []).append(commune)

    def ready(self) -> list[str]:
        """The communes that need nothing (in the order they were given)."""
        return [c for c, keys in self._missing.items() if not keys]

    def done(self, key: str) -> list[str]:
        """``key``'s result is in (made or failed): the communes that now have all they wait for."""
        now: list[str] = []
        for commune in self._needers.pop(key, ()):
            keys = self._missing[commune]
            keys.discard(key)
            if not keys:
                now.append(commune)
        return now

    def order(self, keys: Iterable[str], cost: Callable[[str], int] = lambda _key: 1) -> list[str]:
        """``keys`` in the order that lets communes go soonest.

        Again and again: of the most urgent communes, the one whose keys not yet placed
        cost least (``cost``), its keys that more communes need first. A night thus
        finishes the communes of one group, whose bulletins are the same, one after the
        other, and an emergency makes its shared segments once, first, then one commune's
        own greeting after another. Keys no commune waits for come last, as given.
        """
        keys = list(keys)
        position = {k: i for i, k in enumerate(keys)}
        price = {k: cost(k) for k in keys}
        left = {c: {k for k in ks if k in position} for c, ks in self._missing.items()}
        owed = {c: sum(price[k] for k in ks) for c, ks in left.items()}
        turn = {c: i for i, c in enumerate(left)}
        heap = [(self._rank.get(c, 0), owed[c], turn[c], c) for c, ks in left.items() if ks]
        heapq.heapify(heap)
        out: list[str] = []
        while heap:
            _, due, _, commune = heapq.heappop(heap)
            if not left[commune] or due != owed[commune]:
                continue  # done already, or an older entry: its commune was pushed again cheaper
            mine = sorted(left[commune], key=lambda k: (-len(self._needers.get(k, ())), position[k]))
            for key in mine:
                out.append(key)
                for other in self._needers.get(key, ()):
                    if key in left[other]:
                        left[other].discard(key)
                        owed[other] -= price[key]
                        if other != commune and left[other]:
                            heapq.heappush(heap, (self._rank.get(other, 0), owed[other], turn[other], other))
        placed = set(out)
        return out + [k for k in keys if k not in placed]


class Arrivals:
    """Per commune: the endpoints still to reach, and when the last one was reached."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}
        self._failed: set[str] = set()
        self.reached: list[Reached] = []

    def expect(self, commune: str, endpoints: int) -> None:
        self._left[commune] = self._left.get(commune, 0) + endpoints

    def arrived(self, commune: str, *, ok: bool, at: float) -> None:
        if not ok:
            self._failed.add(commune)
        self._left[commune] -= 1
        if self._left[commune] == 0:
            self._finish(commune, at)

    def _finish(self, commune: str, at: float) -> None:
        self.reached.append(Reached(commune, None if commune in self._failed else round(at, 3)))
