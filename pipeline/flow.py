"""The bookkeeping of a streaming run: which commune waits for which unit, and when each was reached.

A night (or an emergency) is a dependency graph: a commune's package needs the segments
of its programs, an endpoint's delivery needs its commune's package. The orchestrator
(``pipeline.produce``) unrolls it as results arrive; this module only keeps count, so the
rule "a commune goes on the moment its own segments exist" is tested here on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reached:
    """When a commune's programs reached every one of its endpoints, in seconds from the run's start.

    ``seconds`` is None when an endpoint was not reached (its delivery failed).
    """

    commune: str
    seconds: float | None


class Waiting:
    """Communes and the render keys each still waits for."""

    def __init__(self, needs: Mapping[str, Iterable[str]]) -> None:
        self._missing = {commune: set(keys) for commune, keys in needs.items()}
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

    def order(self, keys: Iterable[str]) -> list[str]:
        """``keys`` with those more than one commune needs first (an emergency's shared
        segments are made once, before any commune's own), otherwise in the given order."""
        keys = list(keys)
        shared = [k for k in keys if len(self._needers.get(k, ())) > 1]
        return shared + [k for k in keys if len(self._needers.get(k, ())) <= 1]


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
