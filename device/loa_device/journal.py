"""The play journal: what the agent started and finished playing, survived by a power cut.

One JSON object per line: ``start`` is written before the player starts (the kernel
keeps it through a SIGKILL) and flushed to disk just after (a power cut in between falls
in the first milliseconds of the play, and a disk slow to flush does not delay the slot);
``end`` is appended and flushed after the signed receipt is written. A line cut by a power
cut is skipped when read. At start-up, a ``start`` with no ``end`` is a play the power
cut interrupted: its receipt is written then (not completed, with the reason), so no
play goes unreported and none is reported twice (the receipt id is chosen at ``start``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from loa_protocol.files import write_atomic

log = logging.getLogger(__name__)
COMPACT_AT = 512 * 1024
KEEP_LINES = 2000


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.records = self._read()
        self.played: set[str] = {k for r in self.records if r.get("op") == "start" for k in r.get("keys", [])}

    def _read(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s: skipping a line cut short (power cut?)", self.path)
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def append(self, record: dict[str, Any], *, flush: bool = True) -> None:
        """Append ``record``; with ``flush`` wait until it is on the disk (else call ``flush()`` soon)."""
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    os.write(fd, b"\n")  # after a cut line: start clean
                os.write(fd, data)
                if flush:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self.records.append(record)
            if record.get("op") == "start":
                self.played.update(record.get("keys", []))
            if self.path.stat().st_size > COMPACT_AT:
                self._compact()

    def flush(self) -> None:
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def _compact(self) -> None:
        """Keep the latest lines (and every unfinished start), atomically."""
        ended = {r.get("receipt") for r in self.records if r.get("op") == "end"}
        keep = self.records[-KEEP_LINES:]
        keep_ids = {id(r) for r in keep}
        unfinished = [
            r
            for r in self.records
            if r.get("op") == "start" and r.get("receipt") not in ended and id(r) not in keep_ids
        ]
        self.records = unfinished + keep
        data = b"".join((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in self.records)
        write_atomic(self.path, data, mode=0o600)

    def unfinished(self) -> list[dict[str, Any]]:
        with self._lock:
            ended = {r.get("receipt") for r in self.records if r.get("op") == "end"}
            return [r for r in self.records if r.get("op") == "start" and r.get("receipt") not in ended]
