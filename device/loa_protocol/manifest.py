"""The manifest, ``loa.manifest/2``: the one reader and writer of ``manifest.json``.

One manifest per endpoint and folder (``programs/<date>`` or ``emergency/<bulletin>``)
names exactly the files that endpoint receives — a playlist endpoint its ``.m3u`` files
and their segments under ``media/``, a single-file endpoint one ``.mp3`` per slot — with
their sizes and SHA-256, and says for every item where its sound came from. It is
signed (``manifest.json.sig``, see ``loa_protocol.signature``) and carries ``valid_until``.
The JSON Schema is ``schemas/manifest-2.schema.json``; docs/manifest.md describes it.

Manifests of schema ``loa.manifest/1`` (round one) are never written; ``files_named``
still reads their file list, so retention keeps the media an old program on a device
uses until that program ages out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loa_protocol.errors import ManifestError
from loa_protocol.files import sha256_file

if TYPE_CHECKING:
    from loa_protocol.signature import PublicKey

SCHEMA = "loa.manifest/2"
FILE = "manifest.json"
SIG_FILE = "manifest.json.sig"
FORMATS = ("playlist", "single")


__all__ = ["FILE", "FORMATS", "SCHEMA", "SIG_FILE", "Emergency", "FileEntry", "Item", "Manifest", "ManifestError"]
__all__ += ["ProgramEntry", "Source", "check_file", "expiry", "files_named", "parse", "read", "verify_folder"]


@dataclass(frozen=True)
class Source:
    """Where a segment's sound came from: a person's voice, a machine's, or silence."""

    type: str  # tts | recording | clip | chime | silence
    engine: str | None = None  # tts: the engine that spoke
    voice: str | None = None  # tts: the engine's settings (voice, rate…)
    recording: int | None = None  # recording id
    language: str | None = None
    clip: str | None = None  # catalog key, e.g. "hmn/greeting", "chime/open"
    placeholder: bool = False  # a machine-made stand-in for a clip nobody has recorded yet

    @property
    def human(self) -> bool:
        return self.type == "recording" or (self.type == "clip" and not self.placeholder)


@dataclass(frozen=True)
class Item:
    title: str
    kind: str  # cue kind: speech | pause | clip | chime | recording
    language: str
    duration_ms: int
    sha256: str
    bytes: int
    source: Source
    bulletin_id: int | None = None
    loudness_lufs: float | None = None
    file: str | None = None  # playlist endpoints: media/<key>.mp3
    offset_ms: int | None = None  # single-file endpoints: where the item starts in the slot's MP3


@dataclass(frozen=True)
class ProgramEntry:
    id: str
    kind: str  # program | emergency
    slot: str
    start: dt.datetime
    priority: str
    valid_until: dt.date
    duration_ms: int
    items: tuple[Item, ...]
    playlist: str | None = None
    single: str | None = None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the endpoint's root
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Emergency:
    bulletin: int
    title: str
    expires: dt.datetime
    play: str = "now"
    replay: tuple[dt.datetime, ...] = ()  # when a device plays it again, offline or not
    cancelled: bool = False  # withdrawn, cancelled or superseded: play nothing more of it


@dataclass(frozen=True)
class Manifest:
    endpoint: str
    format: str  # playlist | single
    commune: str
    commune_name: str
    folder: str  # programs/<date> | emergency/<bulletin>
    timezone: str
    valid_until: dt.datetime
    programs: tuple[ProgramEntry, ...]
    files: tuple[FileEntry, ...]
    date: dt.date | None = None
    emergency: Emergency | None = None
    schema: str = field(default=SCHEMA)

    @property
    def duration_ms(self) -> int:
        return sum(p.duration_ms for p in self.programs)

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.valid_until

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON: a third smaller than indented on a slow link, and made by the C encoder."""
        return (json.dumps(_dump(self), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# --- writing --------------------------------------------------------------------


def _dump_source(s: Source) -> dict[str, Any]:
    out: dict[str, Any] = {"type": s.type}
    for key in ("engine", "voice", "recording", "language", "clip"):
        value = getattr(s, key)
        if value is not None:
            out[key] = value
    out["placeholder"] = s.placeholder
    out["human"] = s.human
    return out


def _dump_item(i: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": i.title,
        "kind": i.kind,
        "language": i.language,
        "duration_ms": i.duration_ms,
        "sha256": i.sha256,
        "bytes": i.bytes,
        "bulletin_id": i.bulletin_id,
        "loudness_lufs": i.loudness_lufs,
        "source": _dump_source(i.source),
    }
    if i.file is not None:
        out["file"] = i.file
    if i.offset_ms is not None:
        out["offset_ms"] = i.offset_ms
    return out


def _dump(m: Manifest) -> dict[str, Any]:
    return {
        "schema": m.schema,
        "endpoint": {"name": m.endpoint, "format": m.format},
        "commune": {"code": m.commune, "name": m.commune_name},
        "folder": m.folder,
        "date": m.date.isoformat() if m.date else None,
        "timezone": m.timezone,
        "valid_until": m.valid_until.isoformat(),
        "emergency": None
        if m.emergency is None
        else {
            "bulletin": m.emergency.bulletin,
            "title": m.emergency.title,
            "play": m.emergency.play,
            "expires": m.emergency.expires.isoformat(),
            "replay": [t.isoformat() for t in m.emergency.replay],
            "cancelled": m.emergency.cancelled,
        },
        "programs": [
            {
                "id": p.id,
                "kind": p.kind,
                "slot": p.slot,
                "start": p.start.isoformat(),
                "priority": p.priority,
                "valid_until": p.valid_until.isoformat(),
                "duration_ms": p.duration_ms,
                "playlist": p.playlist,
                "single": p.single,
                "missing": list(p.missing),
                "items": [_dump_item(i) for i in p.items],
            }
            for p in m.programs
        ],
        "files": [{"path": f.path, "bytes": f.bytes, "sha256": f.sha256} for f in m.files],
        "totals": {
            "programs": len(m.programs),
            "items": sum(len(p.items) for p in m.programs),
            "duration_ms": m.duration_ms,
            "bytes": sum(f.bytes for f in m.files),
        },
    }


# --- reading --------------------------------------------------------------------


def parse(raw: bytes, *, where: str = "manifest") -> Manifest:
    """The manifest in ``raw``; ``ManifestError`` naming ``where`` and the field at fault."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: not a JSON object")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ManifestError(f"{where}: schema is {schema!r}, not {SCHEMA!r}; rebuild it with this version of Loa")
    try:
        return _load(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: malformed {SCHEMA} manifest ({exc.__class__.__name__}: {exc})") from exc


def _load_source(d: dict[str, Any]) -> Source:
    return Source(
        type=str(d["type"]),
        engine=d.get("engine"),
        voice=d.get("voice"),
        recording=d.get("recording"),
        language=d.get("language"),
        clip=d.get("clip"),
        placeholder=bool(d.get("placeholder", False)),
    )


def _load(d: dict[str, Any]) -> Manifest:
    em = d.get("emergency")
    return Manifest(
        endpoint=str(d["endpoint"]["name"]),
        format=str(d["endpoint"]["format"]),
        commune=str(d["commune"]["code"]),
        commune_name=str(d["commune"]["name"]),
        folder=str(d["folder"]),
        date=dt.date.fromisoformat(d["date"]) if d.get("date") else None,
        timezone=str(d["timezone"]),
        valid_until=_aware(d["valid_until"]),
        emergency=None
        if em is None
        else Emergency(
            bulletin=int(em["bulletin"]),
            title=str(em["title"]),
            play=str(em.get("play", "now")),
            expires=_aware(em["expires"]),
            replay=tuple(_aware(t) for t in em.get("replay", [])),
            cancelled=bool(em.get("cancelled", False)),
        ),
        programs=tuple(
            ProgramEntry(
                id=str(p["id"]),
                kind=str(p["kind"]),
                slot=str(p["slot"]),
                start=_aware(p["start"]),
                priority=str(p["priority"]),
                valid_until=dt.date.fromisoformat(p["valid_until"]),
                duration_ms=int(p["duration_ms"]),
                playlist=p.get("playlist"),
                single=p.get("single"),
                missing=tuple(p.get("missing", [])),
                items=tuple(
                    Item(
                        title=str(i["title"]),
                        kind=str(i["kind"]),
                        language=str(i["language"]),
                        duration_ms=int(i["duration_ms"]),
                        sha256=str(i["sha256"]),
                        bytes=int(i["bytes"]),
                        source=_load_source(i["source"]),
                        bulletin_id=i.get("bulletin_id"),
                        loudness_lufs=i.get("loudness_lufs"),
                        file=i.get("file"),
                        offset_ms=i.get("offset_ms"),
                    )
                    for i in p["items"]
                ),
            )
            for p in d["programs"]
        ),
        files=tuple(FileEntry(str(f["path"]), int(f["bytes"]), str(f["sha256"])) for f in d["files"]),
    )


def _aware(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if t.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return t


def read(path: Path) -> Manifest:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse(raw, where=str(path))


def files_named(raw: bytes) -> set[str] | None:
    """The file paths a manifest of any schema (v1 or v2) names; None if it cannot be read.

    For retention only: which media an endpoint's programs still use.
    """
    try:
        data = json.loads(raw)
        return {str(f["path"]) for f in data["files"]}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def expiry(raw: bytes) -> dt.datetime | None:
    """When a manifest of any schema stops being valid (v1 emergencies: ``expires``); None if unknown."""
    try:
        data = json.loads(raw)
        value = data.get("valid_until") if data.get("schema") == SCHEMA else data.get("expires")
        return _aware(str(value)) if value else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return None


# --- checking a folder ----------------------------------------------------------


def verify_folder(root: Path, folder: str, *, public_key: PublicKey, now: dt.datetime) -> Manifest:
    """Check ``root/folder``'s manifest: signature, expiry, every file's size and SHA-256.

    ``root`` is the endpoint's root (where ``media/`` is); ``public_key`` a
    ``signature.PublicKey``. Raises ``ManifestError`` naming the first thing wrong.
    """
    from loa_protocol import signature as signing

    path = root / folder / FILE
    sig_path = root / folder / SIG_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: no manifest ({exc.strerror or exc})") from exc
    try:
        signature = sig_path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{sig_path}: no signature; the program is unsigned") from exc
    if not signing.verify(public_key, raw, signature):
        raise ManifestError(f"{path}: the signature does not match (tampered, or signed with another key)")
    manifest = parse(raw, where=str(path))
    if manifest.expired(now):
        raise ManifestError(f"{path}: expired at {manifest.valid_until.isoformat()}")
    for entry in manifest.files:
        check_file(root, entry)
    return manifest


def check_file(root: Path, entry: FileEntry) -> None:
    """``ManifestError`` unless ``root/entry.path`` has the size and SHA-256 the manifest gives."""
    target = root / entry.path
    try:
        size = target.stat().st_size
    except OSError as exc:
        raise ManifestError(f"{target}: missing ({exc.strerror or exc})") from exc
    if size != entry.bytes:
        raise ManifestError(f"{target}: {size} bytes, the manifest says {entry.bytes}")
    if sha256_file(target) != entry.sha256:
        raise ManifestError(f"{target}: SHA-256 differs from the manifest (changed or damaged)")
