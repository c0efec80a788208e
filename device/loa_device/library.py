"""The agent's local copy of its signed programs: the last good manifest of each folder.

Each accepted folder is one file ``<state>/manifests/<folder>.json`` holding the
manifest's exact bytes and its signature, written atomically: a power cut leaves the
old pair or the new, never a new manifest with an old signature. A manifest is accepted
only if it is signed with the deployment's key, names this endpoint and folder, has not
expired, and every file it names is in place with its SHA-256; otherwise the last good
one stays. What is loaded is checked again (signature) so a copy changed on the card is
refused, not played.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from loa_protocol import manifest as mf
from loa_protocol import signature
from loa_protocol.client import checked
from loa_protocol.errors import ManifestError
from loa_protocol.files import write_atomic
from loa_protocol.signature import PublicKey

log = logging.getLogger(__name__)
KEEP_AFTER_EXPIRY = dt.timedelta(days=2)


@dataclass(frozen=True)
class Accepted:
    folder: str
    raw: bytes
    signature: bytes
    manifest: mf.Manifest


def _name(folder: str) -> str:
    return folder.replace("/", "_") + ".json"


class Library:
    def __init__(self, state: Path, *, key: PublicKey, endpoint: str) -> None:
        self.dir = state / "manifests"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._cache: dict[str, Accepted] | None = None
        self.generation = 0  # changes at every accepted manifest

    def accept(self, folder: str, raw: bytes, sig: bytes | None, *, now: dt.datetime) -> mf.Manifest:
        """Check and keep a folder's manifest; ``ManifestError`` (and the old one stays) if refused.

        The caller has put the files in place first (they are checked when played).
        """
        manifest = checked(raw, sig, endpoint=self.endpoint, folder=folder, key=self.key, now=now)
        assert sig is not None
        doc = {
            "folder": folder,
            "manifest": base64.b64encode(raw).decode(),
            "signature": base64.b64encode(sig).decode(),
        }
        write_atomic(self.dir / _name(folder), json.dumps(doc).encode())
        with self._lock:
            if self._cache is not None:
                self._cache[folder] = Accepted(folder, raw, sig, manifest)
            self.generation += 1
        log.info("accepted %s (signed, %d files)", folder, len(manifest.files))
        return manifest

    def raw_of(self, folder: str) -> bytes | None:
        got = self.all().get(folder)
        return got.raw if got else None

    def all(self) -> dict[str, Accepted]:
        """Every accepted folder, read once and then kept in memory."""
        with self._lock:
            if self._cache is None:
                self._cache = self._read()
            return dict(self._cache)

    def _read(self) -> dict[str, Accepted]:
        out: dict[str, Accepted] = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                raw, sig = base64.b64decode(doc["manifest"]), base64.b64decode(doc["signature"])
                folder = str(doc["folder"])
                if not signature.verify(self.key, raw, sig):
                    raise ManifestError(f"{path}: the signature does not match (changed on this device?)")
                manifest = mf.parse(raw, where=str(path))
                if manifest.endpoint != self.endpoint or manifest.folder != folder:
                    raise ManifestError(f"{path}: not this endpoint's {folder}")
            except (OSError, ValueError, KeyError, TypeError, ManifestError) as exc:
                log.error("refusing the local copy %s: %s", path.name, exc)
                continue
            out[folder] = Accepted(folder, raw, sig, manifest)
        return out

    def in_force(self, now: dt.datetime) -> list[mf.Manifest]:
        return [a.manifest for a in self.all().values() if not a.manifest.expired(now)]

    def prune(self, now: dt.datetime) -> set[str]:
        """Forget manifests expired two days ago; the files the others still name (relative paths)."""
        keep: set[str] = set()
        for folder, acc in self.all().items():
            if acc.manifest.valid_until + KEEP_AFTER_EXPIRY < now:
                (self.dir / _name(folder)).unlink()
                with self._lock:
                    if self._cache is not None:
                        self._cache.pop(folder, None)
                log.info("forgot %s (expired %s)", folder, acc.manifest.valid_until.isoformat())
            else:
                keep.update(f.path for f in acc.manifest.files)
        return keep
