"""Reading a commune's outbox for the operator page and the pull API, confined to its folder."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from pipeline.config import Settings

MANIFEST = "manifest.json"
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


def read_manifest(root: Path, folder: str) -> dict[str, Any] | None:
    path = confined(root, f"{folder}/{MANIFEST}")
    if path is None:
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def day_manifest(settings: Settings, code: str, day: dt.date) -> dict[str, Any] | None:
    return read_manifest(commune_root(settings, code), f"programs/{day.isoformat()}")


def active_emergencies(settings: Settings, code: str, now: dt.datetime) -> list[tuple[str, dict[str, Any]]]:
    """(folder, manifest) of the commune's emergency bulletins that have not expired, newest first."""
    root = commune_root(settings, code)
    out: list[tuple[str, dict[str, Any]]] = []
    base = root / "emergency"
    if not base.is_dir():
        return out
    for sub in base.iterdir():
        folder = f"emergency/{sub.name}"
        manifest = read_manifest(root, folder)
        if manifest is None:
            continue
        try:
            expires = dt.datetime.fromisoformat(str(manifest.get("expires")))
        except ValueError:
            continue
        if expires >= now:
            out.append((folder, manifest))
    out.sort(key=lambda fm: str(fm[1].get("bulletin", "")), reverse=True)
    return out


def sha_of(manifest: dict[str, Any] | None, rel: str) -> str | None:
    """The sha256 the manifest gives for ``rel`` (relative to the commune's root)."""
    if not manifest:
        return None
    for entry in manifest.get("files", []):
        if entry.get("path") == rel:
            return str(entry.get("sha256"))
    return None
