"""Work units: the frozen, idempotent pieces the orchestrator hands to a ``Runner``.

A unit carries paths, keys and plain values — never a session, a settings object or an
open file — so any runner can execute it: a thread here, a Celery worker elsewhere.
Running a unit twice gives the same result: a render unit whose key is in the segment
store is reused, a package unit rewrites only what changed, a deliver unit sends only
what the endpoint lacks.

``RenderUnit``   one segment, keyed by what changes its sound
``PackageUnit``  one commune's programs in one folder, with a signed manifest per endpoint
``DeliverUnit``  one endpoint's folders

``to_wire``/``from_wire`` turn units and results into JSON-safe dicts and back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

from pipeline.models import Commune, Delivery, Endpoint, Program, Segment, Source


@dataclass(frozen=True, slots=True)
class RenderUnit:
    key: str
    kind: str  # speech | pause | clip | chime | recording
    language: str
    title: str
    where: str  # what to name in an error: script line, bulletin, language, file
    text: str = ""  # spoken form, for speech
    source: Path | None = None  # clip or recording file
    ms: int = 0  # pause
    bulletin_id: int | None = None
    origin: Source | None = None  # where the sound comes from (the engine is known once spoken)

    @property
    def what(self) -> str:
        return self.where


@dataclass(frozen=True, slots=True)
class PackageUnit:
    commune: Commune
    folder: str  # programs/<date> | emergency/<bulletin>
    programs: tuple[Program, ...]
    timezone: str
    valid_until: dt.datetime
    date: dt.date | None = None
    emergency_title: str | None = None  # emergency folders: the bulletin's title
    emergency_bulletin: int | None = None
    replay: tuple[dt.datetime, ...] = ()
    cancelled: bool = False  # an emergency's signed cancel: no programs, no replays

    @property
    def key(self) -> str:
        return f"package:{self.commune.code}:{self.folder}"

    @property
    def what(self) -> str:
        return self.commune.code


@dataclass(frozen=True, slots=True)
class DeliverUnit:
    endpoint: Endpoint
    folders: tuple[str, ...]
    label: str  # the date, or the emergency folder
    today: dt.date
    check_files: bool = False  # list and compare every file even when the device's manifest matches
    collect_receipts: bool = True  # read the device's as-run receipts on the same connection (not for emergencies)

    @property
    def key(self) -> str:
        return f"deliver:{self.endpoint.name}:{self.label}"

    @property
    def what(self) -> str:
        return self.endpoint.name


Unit = RenderUnit | PackageUnit | DeliverUnit


@dataclass(frozen=True, slots=True)
class Packaged:
    commune: str
    folder: str
    manifests: tuple[Path, ...]  # one per endpoint


@dataclass(frozen=True, slots=True)
class UnitResult:
    key: str
    kind: str  # render | package | deliver
    what: str  # the script line, commune or endpoint a failure is recorded against
    ok: bool
    error: str | None = None
    segment: Segment | None = None
    packaged: Packaged | None = None
    delivery: Delivery | None = None
    transient: bool = False  # the failure may pass on a retry


def kind_of(unit: Unit) -> str:
    return {RenderUnit: "render", PackageUnit: "package", DeliverUnit: "deliver"}[type(unit)]


UNIT_TYPES: dict[str, type[Any]] = {"render": RenderUnit, "package": PackageUnit, "deliver": DeliverUnit}


# --- the wire form: JSON-safe dicts -------------------------------------------------

T = TypeVar("T")


def to_wire(value: Any) -> Any:
    """``value`` (a dataclass, tuple, path, date…) as JSON-safe data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_wire(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def from_wire(cls: type[T], data: Any) -> T:
    """The inverse of ``to_wire`` for the dataclass ``cls``."""
    return typing.cast(T, _decode(cls, data))


@functools.cache
def _fields(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    """A dataclass's fields and their resolved types, worked out once per class (``get_type_hints`` is slow)."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _decode(hint: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(options[0], data) if len(options) == 1 else data
    if origin is tuple:
        args = typing.get_args(hint)
        return tuple(_decode(args[0], v) for v in data)
    if origin is dict or hint is Any:
        return data
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint(**{name: _decode(field_hint, data[name]) for name, field_hint in _fields(hint) if name in data})
    if hint is Path:
        return Path(data)
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if hint is dt.date:
        return dt.date.fromisoformat(data)
    if hint is dt.time:
        return dt.time.fromisoformat(data)
    return data
