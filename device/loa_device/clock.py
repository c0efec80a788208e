"""Clocks the agent plays by.

``SystemClock`` is the machine's; ``FileClock`` is a controllable clock for tests and
simulations: a JSON file ``{"at": ISO time, "mono": monotonic seconds}`` says what the
time was at that reading of the system-wide monotonic clock, and it runs at real speed
from there; a test moves it by rewriting the file. ``CorrectedClock`` adds the offset
measured against the server's clock, so the agent plays by the corrected time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Protocol

UTC = dt.timezone.utc


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def max_sleep_s(self) -> float:
        """How long one wait may last before the time is read again."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def max_sleep_s(self) -> float:
        return 30.0  # a wall-clock jump (NTP, an operator) is noticed within this


class FileClock:
    """A clock a test drives: ``set(at)`` from any process; it runs at real speed between sets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[int, dt.datetime, float] | None = None

    def set(self, at: dt.datetime) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"at": at.astimezone(UTC).isoformat(), "mono": time.monotonic()}))
        os.replace(tmp, self.path)

    def now(self) -> dt.datetime:
        st = self.path.stat()
        if self._cache is None or self._cache[0] != st.st_mtime_ns:
            data = json.loads(self.path.read_text())
            self._cache = (st.st_mtime_ns, dt.datetime.fromisoformat(data["at"]), float(data["mono"]))
        _, at, mono = self._cache
        return at + dt.timedelta(seconds=time.monotonic() - mono)

    def max_sleep_s(self) -> float:
        return 0.2  # the test may move it at any moment


class CorrectedClock:
    """A clock plus the offset to the server's (server minus local), set by the sync thread."""

    def __init__(self, base: Clock, offset_s: float = 0.0) -> None:
        self.base = base
        self._offset = offset_s
        self._lock = threading.Lock()

    @property
    def offset_s(self) -> float:
        with self._lock:
            return self._offset

    def set_offset(self, offset_s: float) -> None:
        with self._lock:
            self._offset = offset_s

    def local(self) -> dt.datetime:
        return self.base.now()

    def now(self) -> dt.datetime:
        return self.base.now() + dt.timedelta(seconds=self.offset_s)

    def max_sleep_s(self) -> float:
        return self.base.max_sleep_s()


def sleep_until(clock: Clock, until: dt.datetime, wake: threading.Event, *, cap_s: float | None = None) -> bool:
    """Wait until ``clock`` reaches ``until`` or ``wake`` is set (then clear it and say True)."""
    while True:
        remaining = (until - clock.now()).total_seconds()
        if remaining <= 0:
            return False
        step = min(remaining, clock.max_sleep_s(), cap_s if cap_s is not None else remaining)
        if wake.wait(max(step, 0.01)):
            wake.clear()
            return True
        if cap_s is not None:
            return False
