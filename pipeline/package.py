"""Package: one commune's programs → the outbox, laid out as they will land on an endpoint.

Per commune and folder (``programs/<date>`` or ``emergency/<bulletin>``):
``outbox/<code>/media/<key>.mp3`` (hard links into the segment store),
``<folder>/<slot>.m3u`` for playlist endpoints, ``<folder>/<slot>.mp3`` for single-file
endpoints, and, written last, one signed manifest per endpoint in
``<folder>/manifests/<endpoint>.json`` (+ ``.json.sig``), which delivery puts on the
endpoint as ``<folder>/manifest.json``. Files whose content has not changed are not
rewritten, so a re-run leaves the outbox as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline import manifest as mf
from pipeline import signing
from pipeline.audio.joined import joined_cache, joined_key, place
from pipeline.audio.types import Id3Tags
from pipeline.config import Settings
from pipeline.files import sha256_file, temp_beside, write_atomic
from pipeline.models import Commune, Endpoint, Program, Segment, Source
from pipeline.units import Packaged, PackageUnit

SLOT_TITLES = {"morning": "buổi sáng", "noon": "buổi trưa", "evening": "buổi chiều", "night": "buổi tối"}
MANIFESTS = "manifests"


def link_media(seg: Segment, media_dir: Path) -> Path:
    """Put the segment in the commune's media/ as a hard link (a copy across file systems)."""
    dst = media_dir / f"{seg.key}.mp3"
    try:
        if os.stat(dst).st_size == seg.bytes:
            return dst
    except FileNotFoundError:
        pass
    media_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dst)
    try:
        os.link(seg.path, tmp)
    except OSError:
        shutil.copyfile(seg.path, tmp)
    os.replace(tmp, dst)
    return dst


def program_title(commune: Commune, program: Program) -> str:
    return _title(commune, kind=program.kind, slot=program.slot, date=program.date)


def _title(commune: Commune, *, kind: str, slot: str, date: dt.date) -> str:
    if kind == "emergency":
        return f"Thông báo khẩn — xã {commune.name}"
    return f"Xã {commune.name} — {SLOT_TITLES.get(slot, slot)} {date:%d/%m/%Y}"


def program_tags(commune: Commune, *, kind: str, slot: str, date: dt.date) -> Id3Tags:
    """The tags of a program joined into one MP3: the single file and the operator's download
    carry the same, so one joined file (``pipeline.audio.joined``) serves both."""
    return Id3Tags(
        title=_title(commune, kind=kind, slot=slot, date=date),
        album=f"{commune.name} — {date:%d/%m/%Y} — {slot}",
        language="vi",
    )


def m3u_text(commune: Commune, program: Program, rel_media: str) -> str:
    lines = ["#EXTM3U", f"#PLAYLIST:{program_title(commune, program)}"]
    for seg in program.items:
        lines.append(f"#EXTINF:{round(seg.duration_ms / 1000)},{seg.title}")
        lines.append(f"{rel_media}/{seg.key}.mp3")
    return "\n".join(lines) + "\n"


def manifest_path(outbox: Path, commune: str, folder: str, endpoint: str) -> Path:
    """Where the outbox keeps ``endpoint``'s manifest of ``folder``; the signature is beside it."""
    return outbox / commune / folder / MANIFESTS / f"{endpoint}.json"


def package_commune(unit: PackageUnit, *, settings: Settings, key: Ed25519PrivateKey) -> Packaged:
    """Write ``unit``'s programs and a signed manifest per endpoint of its commune."""
    commune = unit.commune
    root = settings.outbox_dir / commune.code
    media_dir = root / "media"
    out_dir = root / unit.folder
    formats = {e.format for e in commune.endpoints}
    rel_media = os.path.relpath(media_dir, out_dir)
    playlists: dict[str, mf.FileEntry] = {}
    singles: dict[str, mf.FileEntry] = {}
    media: dict[str, mf.FileEntry] = {}
    for program in unit.programs:
        for seg in program.items:
            if "playlist" in formats and seg.key not in media:  # a segment aired twice is linked once
                link_media(seg, media_dir)
                media[seg.key] = mf.FileEntry(f"media/{seg.key}.mp3", seg.bytes, seg.sha256)
        if "playlist" in formats:
            playlist = out_dir / f"{program.slot}.m3u"
            write_atomic(playlist, m3u_text(commune, program, rel_media).encode("utf-8"))
            playlists[program.id] = _entry(root, playlist)
        if "single" in formats and program.items:
            singles[program.id] = _single_file(commune, program, out_dir / f"{program.slot}.mp3", root, settings)
    written: list[Path] = []
    for endpoint in commune.endpoints:
        manifest = _manifest(unit, endpoint, playlists, singles, media)
        path = manifest_path(settings.outbox_dir, commune.code, unit.folder, endpoint.name)
        data = manifest.to_bytes()
        # Ed25519 signatures are deterministic: an unchanged manifest rewrites nothing.
        write_atomic(path.with_name(path.name + signing.SIGNATURE_SUFFIX), signing.sign(key, data))
        write_atomic(path, data)  # the signature is in place first
        written.append(path)
    return Packaged(commune.code, unit.folder, tuple(written))


def _entry(root: Path, path: Path) -> mf.FileEntry:
    return mf.FileEntry(path.relative_to(root).as_posix(), path.stat().st_size, sha256_file(path))


def _manifest(
    unit: PackageUnit,
    endpoint: Endpoint,
    playlists: dict[str, mf.FileEntry],
    singles: dict[str, mf.FileEntry],
    media: dict[str, mf.FileEntry],
) -> mf.Manifest:
    playlist = endpoint.format == "playlist"
    files: dict[str, mf.FileEntry] = {}
    programs: list[mf.ProgramEntry] = []
    for program in unit.programs:
        items: list[mf.Item] = []
        offset = 0
        for seg in program.items:
            items.append(
                _item(seg, file=f"media/{seg.key}.mp3" if playlist else None, offset=None if playlist else offset)
            )
            offset += seg.duration_ms
            if playlist:
                files.setdefault(media[seg.key].path, media[seg.key])
        own = playlists.get(program.id) if playlist else singles.get(program.id)
        if own is not None:
            files[own.path] = own
        programs.append(
            mf.ProgramEntry(
                id=program.id,
                kind=program.kind,
                slot=program.slot,
                start=program.start,
                priority=program.priority,
                valid_until=program.valid_until,
                duration_ms=program.duration_ms,
                items=tuple(items),
                playlist=own.path if own and playlist else None,
                single=own.path if own and not playlist else None,
                missing=program.missing,
            )
        )
    emergency = None
    if unit.emergency_bulletin is not None:
        emergency = mf.Emergency(
            bulletin=unit.emergency_bulletin,
            title=unit.emergency_title or "",
            expires=unit.valid_until,
            replay=unit.replay,
            cancelled=unit.cancelled,
        )
    return mf.Manifest(
        endpoint=endpoint.name,
        format=endpoint.format,
        commune=unit.commune.code,
        commune_name=unit.commune.name,
        folder=unit.folder,
        date=unit.date,
        timezone=unit.timezone,
        valid_until=unit.valid_until,
        emergency=emergency,
        programs=tuple(programs),
        files=tuple(files.values()),
    )


def _item(seg: Segment, *, file: str | None, offset: int | None) -> mf.Item:
    return mf.Item(
        title=seg.title,
        kind=seg.kind,
        language=seg.language,
        duration_ms=seg.duration_ms,
        sha256=seg.sha256,
        bytes=seg.bytes,
        source=seg.source or Source("silence" if seg.kind == "pause" else seg.kind),
        bulletin_id=seg.bulletin_id,
        loudness_lufs=seg.loudness_lufs,
        file=file,
        offset_ms=offset,
    )


def _single_file(commune: Commune, program: Program, dst: Path, root: Path, settings: Settings) -> mf.FileEntry:
    """The program as one MP3 (from the joined cache), unless the same join is in place already."""
    tags = program_tags(commune, kind=program.kind, slot=program.slot, date=program.date)
    sha = [s.sha256 for s in program.items]
    key = joined_key(sha, tags)
    state = root / ".state" / f"{dst.relative_to(root).as_posix().replace('/', '__')}.parts"
    if not (dst.exists() and state.exists() and state.read_text() == key):
        place(joined_cache(settings).join([s.path for s in program.items], part_sha256=sha, tags=tags), dst)
        write_atomic(state, key.encode())
    return _entry(root, dst)


def day_valid_until(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """A day's programs are good until the end of that day, deployment time."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
