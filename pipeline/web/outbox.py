"""Reading a commune's outbox for the operator page and the pull API, confined to its folder."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pipeline import manifest as mf
from pipeline.config import Settings
from pipeline.manifest import Manifest
from pipeline.models import Endpoint
from pipeline.package import MANIFESTS, manifest_path

_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def commune_root(settings: Settings, code: str) -> Path:
    return settings.outbox_dir / code


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


_FOLDER_RE = re.compile(r"^(programs/\d{4}-\d{2}-\d{2}|emergency/\d{1,12})$")


def endpoint_manifest(settings: Settings, endpoint: Endpoint, folder: str) -> Path | None:
    """The outbox file holding ``endpoint``'s signed manifest of ``folder``, if built."""
    if not _FOLDER_RE.match(folder):
        return None
    path = manifest_path(settings.outbox_dir, endpoint.commune, folder, endpoint.name)
    return path if path.is_file() else None


def commune_view(manifests: dict[str, Manifest]) -> Manifest | None:
    """The manifest to show a commune's operator: a playlist endpoint's (it names every item's file)."""
    ordered = sorted(manifests.values(), key=lambda m: (m.format != "playlist", m.endpoint))
    return ordered[0] if ordered else None


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
