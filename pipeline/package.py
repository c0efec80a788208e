"""Package: programs → the outbox, laid out as they will land on an endpoint.

Per commune: ``outbox/<code>/media/<key>.mp3`` (hard links into the segment cache),
``programs/<date>/<slot>.m3u``, ``programs/<date>/<slot>.mp3`` when the commune has a
single-file endpoint, and ``programs/<date>/manifest.json`` written last. Emergency
bulletins go under ``emergency/<bulletin>/`` in the same shape. Files whose content
has not changed are not rewritten, so a re-run leaves the outbox as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.master import join_program
from pipeline.models import Commune, Program, Segment

MANIFEST_SCHEMA = "loa.manifest/1"
SLOT_TITLES = {"morning": "buổi sáng", "noon": "buổi trưa", "evening": "buổi chiều", "night": "buổi tối"}


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; say whether it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return True


def link_media(seg: Segment, media_dir: Path) -> Path:
    """Put the segment in the commune's media/ as a hard link (a copy across file systems)."""
    dst = media_dir / f"{seg.key}.mp3"
    if dst.exists() and dst.stat().st_size == seg.bytes:
        return dst
    media_dir.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.link(seg.path, tmp)
    except OSError:
        shutil.copyfile(seg.path, tmp)
    os.replace(tmp, dst)
    return dst


def program_title(commune: Commune, program: Program) -> str:
    if program.kind == "emergency":
        return f"Thông báo khẩn — xã {commune.name}"
    return f"Xã {commune.name} — {SLOT_TITLES.get(program.slot, program.slot)} {program.date:%d/%m/%Y}"


def m3u_text(commune: Commune, program: Program, rel_media: str) -> str:
    lines = ["#EXTM3U", f"#PLAYLIST:{program_title(commune, program)}"]
    for seg in program.items:
        lines.append(f"#EXTINF:{round(seg.duration_ms / 1000)},{seg.title}")
        lines.append(f"{rel_media}/{seg.key}.mp3")
    return "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_entry(root: Path, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "path": path.relative_to(root).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
    } | extra


def package_programs(
    commune: Commune,
    programs: Sequence[Program],
    *,
    folder: str,
    settings: Settings,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``programs`` of one commune under ``outbox/<code>/<folder>/``; return the manifest path.

    ``folder`` is ``programs/<date>`` or ``emergency/<bulletin>``.
    """
    root = settings.outbox_dir / commune.code
    media_dir = root / "media"
    out_dir = root / folder
    single = any(e.format == "single" for e in commune.endpoints)
    rel_media = os.path.relpath(media_dir, out_dir)
    files: list[dict[str, Any]] = []
    described: list[dict[str, Any]] = []
    seen: set[str] = set()
    for program in programs:
        for seg in program.items:
            link = link_media(seg, media_dir)
            if seg.key not in seen:
                seen.add(seg.key)
                files.append(
                    {
                        "path": link.relative_to(root).as_posix(),
                        "bytes": seg.bytes,
                        "sha256": seg.sha256,
                        "format": "playlist",
                    }
                )
        playlist = out_dir / f"{program.slot}.m3u"
        write_atomic(playlist, m3u_text(commune, program, rel_media).encode("utf-8"))
        files.append(_file_entry(root, playlist, format="playlist"))
        single_entry = None
        if single and program.items:
            single_entry = _single_file(commune, program, out_dir / f"{program.slot}.mp3", root, settings)
            files.append(single_entry)
        described.append(_describe(program, playlist.relative_to(root).as_posix(), single_entry))
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "commune": {"code": commune.code, "name": commune.name},
        **(extra or {}),
        "programs": described,
        "files": files,
        "totals": {
            "programs": len(described),
            "items": sum(len(p.items) for p in programs),
            "duration_ms": sum(p.duration_ms for p in programs),
            "bytes": sum(f["bytes"] for f in files),
        },
    }
    path = out_dir / "manifest.json"
    write_atomic(path, (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode("utf-8"))
    return path


def _single_file(commune: Commune, program: Program, dst: Path, root: Path, settings: Settings) -> dict[str, Any]:
    """Join the program into one MP3 unless the same parts were already joined."""
    parts_key = hashlib.sha256(" ".join(s.key for s in program.items).encode()).hexdigest()
    state = root / ".state" / f"{dst.relative_to(root).as_posix().replace('/', '__')}.parts"
    if not (dst.exists() and state.exists() and state.read_text() == parts_key):
        join_program(
            [s.path for s in program.items],
            dst,
            title=program_title(commune, program),
            album=f"{commune.name} — {program.date:%d/%m/%Y} — {program.slot}",
            settings=settings,
        )
        write_atomic(state, parts_key.encode())
    return _file_entry(root, dst, format="single", duration_ms=program.duration_ms)


def _describe(program: Program, playlist: str, single: dict[str, Any] | None) -> dict[str, Any]:
    start: dt.datetime = program.start
    return {
        "id": program.id,
        "kind": program.kind,
        "slot": program.slot,
        "start": start.isoformat(),
        "priority": program.priority,
        "valid_until": program.valid_until.isoformat(),
        "duration_ms": program.duration_ms,
        "playlist": playlist,
        "single": single["path"] if single else None,
        "missing": list(program.missing),
        "items": [
            {
                "file": f"media/{s.key}.mp3",
                "title": s.title,
                "kind": s.kind,
                "sha256": s.sha256,
                "bytes": s.bytes,
                "duration_ms": s.duration_ms,
                "language": s.language,
                "bulletin_id": s.bulletin_id,
                "loudness_lufs": s.loudness_lufs,
            }
            for s in program.items
        ],
    }
