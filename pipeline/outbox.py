"""A commune's outbox as built: the endpoints' manifests of a folder, read back (no web, no transport).

The operator page, the pull API and the domain (operators' reports) read built programs here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline import manifest as mf
from pipeline.config import Settings
from pipeline.manifest import Manifest, ProgramEntry
from pipeline.package import MANIFESTS

_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def commune_root(settings: Settings, code: str) -> Path:
    return settings.outbox_dir / code


def confined_dir(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it is a directory inside ``root`` (same rules as ``confined``)."""
    parts = rel.split("/")
    if any(not _PART_RE.match(p) or p in (".", "..") for p in parts):
        return None
    path = root.joinpath(*parts)
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(root.resolve(strict=True)) or not resolved.is_dir():
            return None
    except OSError:
        return None
    return path


def folder_manifests(settings: Settings, code: str, folder: str) -> dict[str, Manifest]:
    """The endpoints' manifests of one folder of the commune's outbox, by endpoint name."""
    base = confined_dir(commune_root(settings, code), f"{folder}/{MANIFESTS}")
    out: dict[str, Manifest] = {}
    if base is None:
        return out
    for path in sorted(base.glob("*.json")):
        try:
            out[path.stem] = mf.read(path)
        except mf.ManifestError:
            continue
    return out


def commune_view(manifests: dict[str, Manifest]) -> Manifest | None:
    """The manifest to show a commune's operator: a playlist endpoint's (it names every item's file)."""
    ordered = sorted(manifests.values(), key=lambda m: (m.format != "playlist", m.endpoint))
    return ordered[0] if ordered else None


def program_entry(settings: Settings, code: str, program_id: str) -> ProgramEntry | None:
    """The built program ``program_id`` (``code/YYYY-MM-DD/slot`` or ``code/emergency/N``) of commune ``code``."""
    parts = program_id.split("/")
    if len(parts) != 3 or parts[0] != code:
        return None
    folder = f"emergency/{parts[2]}" if parts[1] == "emergency" else f"programs/{parts[1]}"
    manifest = commune_view(folder_manifests(settings, code, folder))
    return next((p for p in manifest.programs if p.id == program_id), None) if manifest else None
