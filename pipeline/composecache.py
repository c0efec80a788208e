"""Composed programs kept by the digest of their inputs, so an unchanged program is not composed again.

A program's inputs are its plan (the commune, the date and its words, the slot, the bulletins
with their revisions, what the operators' decisions made of them), the recordings it may
use, and what is the same for every program of a deployment: the templates, the voice
catalogue and its clips, the lexicon, the engine chain and the audio settings
(``Producer.compose_inputs``). Their SHA-256 (``Digests``) names a small JSON file holding the
script's name, what it is missing and the keys of its render units; the units themselves are
kept once per key, since a province's programs share most of them (a bulletin's segments,
the chimes). ``Producer.compose_day`` reuses them instead of composing. A changed input is a
new digest: nothing is ever invalidated, old dates are pruned. A program whose file or one
of whose units cannot be read is composed again.

    <data_dir>/cache/composed/<date>/<digest>.json          {"version": 2, "name", "missing", "keys"}
    <data_dir>/cache/composed/<date>/units/<unit key>.json  a render unit, as ``units.to_wire`` writes it
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from pipeline.models import Bulletin, Commune
from pipeline.units import RenderUnit, from_wire, to_wire

log = logging.getLogger(__name__)

VERSION = 2
KEEP_DAYS = 3  # dates this far before the one composed are pruned


@dataclass(frozen=True, slots=True)
class CachedProgram:
    name: str
    missing: tuple[str, ...]
    keys: tuple[str, ...]  # its render units' keys, in the script's order


def digest(*parts: Any) -> str:
    """SHA-256 of ``parts`` as canonical JSON (dataclasses, paths and dates in their wire form)."""
    return _sha256(to_wire(list(parts)))


def _sha256(wire: Any) -> str:
    text = json.dumps(wire, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Digests:
    """``digest`` for many programs at once: a part they share (a bulletin with its body, a
    commune with its endpoints, a slot) is turned into its wire form once (frozen dataclasses
    do not change), and a bulletin or a commune stands in by its own digest."""

    SHARED = (Bulletin, Commune)

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, Any]] = {}  # id → (the object, kept alive; its wire form)
        self._names: dict[type, tuple[str, ...] | None] = {}  # a dataclass's field names; None: not one

    def __call__(self, *parts: Any) -> str:
        return _sha256([self._wire(p) for p in parts])

    def _wire(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind in _SCALARS:
            return value
        if kind is tuple or kind is list:
            return [self._wire(v) for v in value]
        try:
            names = self._names[kind]
        except KeyError:  # first of its type: asking dataclasses once per type is most of the saving
            plain = not is_dataclass(value) or isinstance(value, type | tuple | list)
            names = self._names[kind] = None if plain else tuple(f.name for f in fields(value))
        if names is None:
            return [self._wire(v) for v in value] if isinstance(value, tuple | list) else to_wire(value)
        hit = self._memo.get(id(value))
        if hit is None or hit[0] is not value:
            wire: Any = {name: self._wire(getattr(value, name)) for name in names}
            if isinstance(value, self.SHARED):  # neither holds the other: this is ``digest(value)``
                wire = _sha256([wire])
            hit = self._memo[id(value)] = (value, wire)
        return hit[1]


_SCALARS = frozenset({str, int, float, bool})


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

    def _unit_path(self, day: dt.date, key: str) -> Path:
        return self.root / day.isoformat() / "units" / f"{key}.json"

    def get(self, day: dt.date, key: str) -> CachedProgram | None:
        try:
            data = json.loads(self._path(day, key).read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                return None
            return CachedProgram(str(data["name"]), tuple(data["missing"]), tuple(map(str, data["keys"])))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable: compose again
            log.warning("composed program %s of %s unreadable (%s); composing it again", key, day, exc)
            return None

    def units(self, day: dt.date, keys: Iterable[str], known: Mapping[str, RenderUnit]) -> dict[str, RenderUnit] | None:
        """The render units of ``keys`` that ``known`` lacks, as kept; None when one is not kept."""
        found: dict[str, RenderUnit] = {}
        for key in keys:
            if key in known or key in found:
                continue
            try:
                found[key] = from_wire(RenderUnit, json.loads(self._unit_path(day, key).read_text(encoding="utf-8")))
            except FileNotFoundError:
                return None
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("composed unit %s of %s unreadable (%s); composing again", key, day, exc)
                return None
        return found

    def put(self, day: dt.date, key: str, program: CachedProgram, units: Iterable[RenderUnit]) -> None:
        """Keep ``program`` and those of its ``units`` not kept yet (the program last: it names them)."""
        for unit in units:
            path = self._unit_path(day, unit.key)
            if not path.exists():
                self._write(path, to_wire(unit))
        data = {"version": VERSION, "name": program.name, "missing": list(program.missing), "keys": list(program.keys)}
        self._write(self._path(day, key), data)

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False)
            os.replace(tmp, path)
        except OSError as exc:  # a cache: composing again next time is the only cost
            log.warning("could not keep composed %s: %s", path.name, exc)
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
