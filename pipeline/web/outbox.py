"""Reading a commune's outbox for the operator page and the pull API, confined to its folder.

The readers the domain shares (a folder's manifests, the commune's view) are ``pipeline.outbox``."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pipeline.config import Settings
from pipeline.manifest import Manifest
from pipeline.models import Endpoint
from pipeline.outbox import commune_root, commune_view, confined_dir, folder_manifests
from pipeline.package import manifest_path

_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def confined(root: Path, rel: str) -> Path | None:
    """``root/rel`` if ``rel`` is a plain relative path to a file under ``root``; else None.

    No absolute paths, no ``..``, no hidden names, no symlink escaping the root.
    """
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(not _PART_RE.match(p) or p in (".", "..") for p in parts):
        return None
    path = root.joinpath(*parts)
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(root.resolve(strict=True)) or not resolved.is_file():
            return None
    except OSError:
        return None
    return path


_FOLDER_RE = re.compile(r"^(programs/\d{4}-\d{2}-\d{2}|emergency/\d{1,12})$")


def endpoint_manifest(settings: Settings, endpoint: Endpoint, folder: str) -> Path | None:
    """The outbox file holding ``endpoint``'s signed manifest of ``folder``, if built."""
    if not _FOLDER_RE.match(folder):
        return None
    path = manifest_path(settings.outbox_dir, endpoint.commune, folder, endpoint.name)
    return path if path.is_file() else None


def day_manifest(settings: Settings, code: str, day: dt.date) -> Manifest | None:
    return commune_view(folder_manifests(settings, code, f"programs/{day.isoformat()}"))


def single_file(manifests: dict[str, Manifest], slot: str) -> str | None:
    """The slot's single-file MP3 (relative to the commune's root), when one was built."""
    for m in manifests.values():
        for p in m.programs:
            if p.slot == slot and p.single:
                return p.single
    return None


def active_emergencies(settings: Settings, code: str, now: dt.datetime) -> list[tuple[str, Manifest]]:
    """(folder, manifest) of the commune's emergency bulletins that have not expired, newest first."""
    out: list[tuple[str, Manifest]] = []
    base = commune_root(settings, code) / "emergency"
    if not base.is_dir():
        return out
    for sub in base.iterdir():
        folder = f"emergency/{sub.name}"
        manifest = commune_view(folder_manifests(settings, code, folder))
        if manifest is not None and manifest.emergency is not None and not manifest.expired(now):
            out.append((folder, manifest))
    out.sort(key=lambda fm: fm[1].emergency.bulletin if fm[1].emergency else 0, reverse=True)
    return out


__all__ = [
    "active_emergencies",
    "commune_root",
    "commune_view",
    "confined",
    "confined_dir",
    "day_manifest",
    "endpoint_manifest",
    "folder_manifests",
    "single_file",
]
