"""The agent: plays each slot on time from its local signed copy, online or not.

Two threads. The main one plays: it sleeps until the next slot or replay (or until
the sync thread says something changed), plays what is due with the configured player,
writes the signed receipt, and pings systemd's watchdog. The sync thread keeps the
local copy and the server in step (``loa_device.sync``): programs, emergencies by
long-poll, the server's clock, receipts, heartbeats. Everything the agent writes is
written atomically or appended and flushed, so a SIGKILL or a power cut at any point
leaves no half program, no lost receipt and no receipt twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loa_device import __version__, player, schedule, systemd
from loa_device.clock import Clock, CorrectedClock, sleep_until
from loa_device.config import Config
from loa_device.journal import Journal
from loa_device.library import Library
from loa_device.outbox import Outbox
from loa_protocol import manifest as mf
from loa_protocol import receipts as rc
from loa_protocol.files import safe_relative, sha256_file, write_atomic

log = logging.getLogger(__name__)
CLOCK_WARN_S = 60.0
SYNC_STALE_S = 600.0  # the sync thread silent this long: stop pinging the watchdog (systemd restarts us)


class State:
    """Small facts kept across restarts (``<state>/state.json``): clock offset, last play, events version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self.data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self.data.get(key, default)

    def update(self, **values: Any) -> None:
        with self._lock:
            if all(self.data.get(k) == v for k, v in values.items()):
                return
            self.data.update(values)
            write_atomic(self.path, json.dumps(self.data, sort_keys=True).encode(), mode=0o600)


class Agent:
    def __init__(self, config: Config, *, clock: Clock) -> None:
        self.config = config
        state = config.state
        state.mkdir(parents=True, exist_ok=True)
        self.state = State(state / "state.json")
        self.clock = CorrectedClock(clock, float(self.state.get("clock_offset_s", 0.0)))
        self.library = Library(state, key=config.public_key, endpoint=config.endpoint)
        self.journal = Journal(state / "journal.jsonl")
        self.outbox = Outbox(state)
        self.media_root = Path(config.folder) if config.mode == "folder" else state / "files"
        self.media_root.mkdir(parents=True, exist_ok=True)
        self.player = player.command(config.player)
        self.pid_file = state / "player.pid"
        self.wake = threading.Event()  # the library or the clock changed: look again
        self.stopping = threading.Event()
        self.receipt_ready = threading.Event()  # for the sync thread: something to send
        self.refused: list[str] = []  # recent refusals, for the heartbeat
        self.sync_alive = time.monotonic()
        self.watchdog = systemd.watchdog_s()
        self._last_check = 0.0
        self._current: schedule.Event | None = None
        self._stopped_by: str | None = None
        self._unflushed = False
        self._verified: dict[tuple[str, int, int], tuple[str, float]] = {}  # (path, size, mtime) -> (SHA-256, when)
        self._prepared: dt.datetime | None = None

    # --- what others call -------------------------------------------------------

    def changed(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def note_refused(self, why: str) -> None:
        log.warning("refused: %s", why)
        self.refused = ([why[:300]] + [r for r in self.refused if r != why[:300]])[:10]

    def set_offset(self, offset_s: float) -> None:
        old = self.clock.offset_s
        self.clock.set_offset(offset_s)
        if abs(offset_s) > CLOCK_WARN_S and (abs(old) <= CLOCK_WARN_S or abs(offset_s - old) > CLOCK_WARN_S):
            log.warning(
                "this device's clock is %.0f s %s the server's; playing by the server's time",
                abs(offset_s),
                "behind" if offset_s > 0 else "ahead of",
            )
        if abs(offset_s - float(self.state.get("clock_offset_s", 0.0))) > 0.5:
            self.state.update(clock_offset_s=round(offset_s, 3))
        if abs(offset_s - old) > 0.5:
            self.wake.set()

    def heartbeat_doc(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "free_bytes": shutil.disk_usage(self.config.state).free,
            "clock_offset_s": round(self.clock.offset_s, 3),
            "last_program": self.state.get("last_program"),
            "last_played_at": self.state.get("last_played_at"),
            "pending_receipts": len(self.outbox.pending()),
            "mode": self.config.mode,
            "player": self.player[0],
            "refused": list(self.refused),
        }

    # --- start-up -------------------------------------------------------------------

    def recover(self) -> None:
        """After a power cut: stop a stale player; write the receipts of interrupted plays."""
        player.stop_stale(self.pid_file, self.player)
        accepted = self.library.all()
        for record in self.journal.unfinished():
            rid = str(record.get("receipt", ""))
            if not self.outbox.has(rid):
                acc = accepted.get(str(record.get("folder", "")))
                program = None
                if acc is not None:
                    program = next((p for p in acc.manifest.programs if p.id == record.get("program")), None)
                started = dt.datetime.fromisoformat(str(record["at"]))
                why = "interrupted: the agent stopped while playing (power cut or restart)"
                items = self._items_not_played(acc.manifest if acc else None, program, started, why)
                self._write_receipt(rid, str(record.get("program", "?")), items, note=why, at=started)
                log.warning("%s: interrupted by a restart; reported as not completed", record.get("program"))
            self.journal.append({"op": "end", "receipt": rid})

    # --- the main loop ------------------------------------------------------------

    def run(self, *, sync: Callable[[Agent], threading.Thread] | None = None) -> None:
        self.recover()
        if sync is not None:
            sync(self).start()
        systemd.notify("READY=1")
        log.info("loa-device %s: endpoint %s, %s mode, playing with %s", __version__, self.config.endpoint,
                 self.config.mode, self.player[0])  # fmt: skip
        while not self.stopping.is_set():
            self._ping()
            now = self.clock.now()
            manifests = self.library.in_force(now)
            events = schedule.due(
                manifests,
                now,
                self.journal.played,
                late_grace=dt.timedelta(seconds=self.config.late_grace_s),
                replay_grace=dt.timedelta(seconds=self.config.replay_grace_s),
            )
            if events:
                self.play(events[0])
                continue
            nxt = schedule.next_time(manifests, now, self.journal.played) or now + dt.timedelta(hours=1)
            if nxt - now < dt.timedelta(seconds=60) and self._prepared != nxt:
                self._prepared = nxt
                for ev in schedule.due(manifests, nxt, self.journal.played, late_grace=dt.timedelta(seconds=1),
                                       replay_grace=dt.timedelta(seconds=1)):  # fmt: skip
                    self.prepare(ev)
            cap = self.watchdog / 3 if self.watchdog else None
            sleep_until(self.clock, nxt, self.wake, cap_s=cap)
        systemd.notify("STOPPING=1")

    def _ping(self) -> None:
        if self.watchdog and time.monotonic() - self.sync_alive < SYNC_STALE_S:
            systemd.notify("WATCHDOG=1")

    # --- playing ------------------------------------------------------------------

    def _should_stop(self) -> str | None:
        reason = self._why_stop()
        if reason is not None:
            self._stopped_by = reason
        return reason

    def _why_stop(self) -> str | None:
        if self.stopping.is_set():
            return "the agent is stopping"
        current = self._current
        if current is None or time.monotonic() - self._last_check < 0.5:
            return None
        self._last_check = time.monotonic()
        now = self.clock.now()
        if current.priority == schedule.EMERGENCY:
            acc = self.library.all().get(current.folder)
            if acc is not None and not schedule.emergency_live(acc.manifest, now):
                em = acc.manifest.emergency
                return "the emergency was cancelled" if em is not None and em.cancelled else "the emergency expired"
            return None
        manifests = self.library.in_force(now)
        urgent = schedule.due(
            manifests,
            now,
            self.journal.played,
            late_grace=dt.timedelta(seconds=self.config.late_grace_s),
            replay_grace=dt.timedelta(seconds=self.config.replay_grace_s),
        )
        if any(e.priority == schedule.EMERGENCY for e in urgent):
            return "interrupted by an emergency"
        return None

    def _files(self, m: mf.Manifest, program: mf.ProgramEntry) -> list[tuple[str, str, list[mf.Item]]]:
        """(file, sha256, items) in play order: each item's file, or the slot's one MP3."""
        if program.single is not None and all(i.file is None for i in program.items):
            sha = next((f.sha256 for f in m.files if f.path == program.single), "")
            return [(program.single, sha, list(program.items))]
        return [(i.file or "", i.sha256, [i]) for i in program.items]

    def _items_not_played(
        self, m: mf.Manifest | None, program: mf.ProgramEntry | None, at: dt.datetime | None, why: str
    ) -> tuple[rc.PlayedItem, ...]:
        if m is None or program is None:
            return ()
        return tuple(
            rc.PlayedItem(rel or "?", i.sha256, at, None, False, why, i.bulletin_id, i.duration_ms)
            for rel, _, items in self._files(m, program)
            for i in items
        )

    def play(self, ev: schedule.Event) -> None:
        rid = rc.new_receipt_id()
        started = self.clock.now()
        self.journal.append(
            {"op": "start", "keys": list(ev.keys), "receipt": rid, "program": ev.program.id, "folder": ev.folder,
             "at": started.isoformat()},
            flush=False,  # flushed once the player runs: a slow disk does not delay the slot
        )  # fmt: skip
        self._unflushed = True
        log.info("playing %s%s", ev.program.id, f" ({ev.note})" if ev.note else "")
        self._current = ev
        self._last_check = 0.0
        self._stopped_by = None
        played: list[rc.PlayedItem] = []
        stop_reason: str | None = None
        try:
            for rel, sha, items in self._files(ev.manifest, ev.program):
                if stop_reason is not None:
                    played.extend(rc.PlayedItem(rel, i.sha256, None, None, False, stop_reason, i.bulletin_id,
                                                i.duration_ms) for i in items)  # fmt: skip
                    continue
                ok, why, start, end = self._play_file(rel, sha, sum(i.duration_ms for i in items))
                stop_reason = self._stopped_by  # an emergency, a cancel, the agent stopping: the rest is not played
                played.extend(
                    rc.PlayedItem(rel or "?", i.sha256, start, end, ok, why, i.bulletin_id, i.duration_ms)
                    for i in items
                )
        finally:
            self._current = None
            self._flush_start()
        self._write_receipt(rid, ev.program.id, tuple(played), note=ev.note, at=started)
        self.journal.append({"op": "end", "receipt": rid})
        first = next((i.start for i in played if i.start is not None), started)
        self.state.update(last_program=ev.program.id, last_played_at=first.isoformat())
        for item in played:
            if not item.completed:
                log.warning("%s: %s: %s", ev.program.id, item.file, item.reason)

    def _play_file(self, rel: str, sha: str, duration_ms: int) -> tuple[bool, str | None, dt.datetime, dt.datetime]:
        start = self.clock.now()
        path = safe_relative(self.media_root, rel)
        if path is None:
            return False, "unsafe path in the manifest; not played", start, start
        if not path.is_file():
            return False, "file missing on the device; not played", start, start
        if self._sha256(path) != sha:
            self.note_refused(f"{rel}: SHA-256 differs from the signed manifest; not played")
            return False, "file does not match the signed manifest (tampered or damaged); not played", start, start
        start = self.clock.now()
        ok, why = player.play(
            self.player,
            path,
            pid_file=self.pid_file,
            timeout_s=60.0 + 3 * duration_ms / 1000,
            should_stop=self._should_stop,
            tick=self._ping,
            started=self._flush_start,
        )
        return ok, why, start, self.clock.now()

    def _flush_start(self) -> None:
        if self._unflushed:
            self._unflushed = False
            self.journal.flush()

    def _sha256(self, path: Path) -> str:
        """The file's SHA-256; one read in the last two minutes is reused while its size and mtime stay."""
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        got = self._verified.get(key)
        if got is not None and time.monotonic() - got[1] < 120:
            return got[0]
        digest = sha256_file(path)
        if len(self._verified) > 100:
            self._verified.clear()
        self._verified[key] = (digest, time.monotonic())
        return digest

    def prepare(self, ev: schedule.Event) -> None:
        """Read the files of what is next before its time, so the slot starts on the second."""
        for rel, _, _ in self._files(ev.manifest, ev.program):
            path = safe_relative(self.media_root, rel)
            if path is not None and path.is_file():
                self._sha256(path)

    def _write_receipt(
        self, rid: str, program: str, items: tuple[rc.PlayedItem, ...], *, note: str, at: dt.datetime
    ) -> None:
        receipt = rc.Receipt(
            id=rid,
            endpoint=self.config.endpoint,
            commune=self.config.commune,
            source="sftp" if self.config.mode == "folder" else "pull",
            program=program,
            issued_at=self.clock.now(),
            items=items,
            note=note,
        )
        self.outbox.add(rc.sign(receipt, self.config.receipt_key))
        self.receipt_ready.set()
