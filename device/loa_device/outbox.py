"""Signed receipts waiting for the link: ``<state>/receipts/pending/<id>.json``, then ``sent/``.

A receipt is written atomically before the play is marked finished in the journal; it
moves to ``sent/`` only after the server has it (201, or 409: it had it already, a retry
after a lost answer), so each arrives once. Sent receipts are kept 30 days.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from loa_protocol import receipts as rc
from loa_protocol.files import fsync_dir, write_atomic

KEEP_SENT_S = 30 * 86400


class Outbox:
    def __init__(self, state: Path) -> None:
        self.pending_dir = state / "receipts" / "pending"
        self.sent_dir = state / "receipts" / "sent"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.sent_dir.mkdir(parents=True, exist_ok=True)

    def add(self, receipt: rc.Receipt) -> Path:
        path = self.pending_dir / f"{receipt.id}.json"
        write_atomic(path, rc.dumps(receipt), mode=0o600)
        return path

    def has(self, receipt_id: str) -> bool:
        name = f"{receipt_id}.json"
        return (self.pending_dir / name).exists() or (self.sent_dir / name).exists()

    def pending(self) -> list[Path]:
        return sorted(self.pending_dir.glob("*.json"))

    def mark_sent(self, path: Path) -> None:
        os.replace(path, self.sent_dir / path.name)
        fsync_dir(self.sent_dir)

    def prune(self) -> None:
        cutoff = time.time() - KEEP_SENT_S
        for path in self.sent_dir.glob("*.json"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
