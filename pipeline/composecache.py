"""Composed programs kept by the digest of their inputs, so an unchanged program is not composed again.

A program's inputs are its plan (the commune, the date and its words, the slot, the bulletins
with their revisions, what the operators' decisions made of them), the recordings it may
use, and what is the same for every program of a deployment: the templates, the voice
catalogue and its clips, the lexicon, the engine chain and the audio settings
(``Producer.compose_inputs``). Their SHA-256 names a small JSON file holding the script's name,
what it is missing and its render units; ``Producer.compose_day`` reuses it instead of
composing. A changed input is a new digest: nothing is ever invalidated, old dates are
pruned.

    <data_dir>/cache/composed/<date>/<digest>.json   {"version": 1, "name", "missing", "units"}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.units import RenderUnit, from_wire, to_wire

log = logging.getLogger(__name__)

VERSION = 1
KEEP_DAYS = 3  # dates this far before the one composed are pruned


@dataclass(frozen=True, slots=True)
class CachedProgram:
    name: str
    missing: tuple[str, ...]
    units: tuple[RenderUnit, ...]


def digest(*parts: Any) -> str:
    """SHA-256 of ``parts`` as canonical JSON (dataclasses, paths and dates in their wire form)."""
    text = json.dumps(to_wire(list(parts)), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def files_digest(paths: list[Path]) -> str:
    """SHA-256 of the names and bytes of ``paths`` (those that exist), in the given order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path).encode("utf-8") + b"\0")
        if path.is_file():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


class ComposeCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, day: dt.date, key: str) -> Path:
        return self.root / day.isoformat() / f"{key}.json"

    def get(self, day: dt.date, key: str) -> CachedProgram | None:
        try:
            data = json.loads(self._path(day, key).read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                return None
            units = tuple(from_wire(RenderUnit, u) for u in data["units"])
            return CachedProgram(str(data["name"]), tuple(data["missing"]), units)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable: compose again
            log.warning("composed program %s of %s unreadable (%s); composing it again", key, day, exc)
            return None

    def put(self, day: dt.date, key: str, program: CachedProgram) -> None:
        path = self._path(day, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "name": program.name, "missing": list(program.missing)}
        data["units"] = [to_wire(u) for u in program.units]
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False)
            os.replace(tmp, path)
        except OSError as exc:  # a cache: composing again next time is the only cost
            log.warning("could not keep composed program %s: %s", key, exc)
            Path(tmp).unlink(missing_ok=True)

    def prune(self, day: dt.date) -> None:
        """Forget the dates more than ``KEEP_DAYS`` before ``day``."""
        if not self.root.is_dir():
            return
        oldest = day - dt.timedelta(days=KEEP_DAYS)
        for folder in self.root.iterdir():
            try:
                old = dt.date.fromisoformat(folder.name) < oldest
            except ValueError:
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)
