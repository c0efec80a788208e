"""``loa pull``: the commune side of the pull API, for a commune PC run from cron.

It asks the server who its token belongs to, fetches the manifests of today and
tomorrow (and the emergency bulletins in force), downloads only the files it lacks
into ``<dir>/<path>.part`` (resuming a broken download with a Range request), checks
each file's SHA-256, renames it into place, and writes each manifest last, so that a
player reading ``<dir>`` never sees half a program.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from pipeline.errors import DeliveryError, TransientDeliveryError, UsageError

log = logging.getLogger(__name__)
CHUNK = 1 << 16


@dataclass
class PullReport:
    endpoint: str = ""
    folders: list[str] = field(default_factory=list)  # manifests written or already current
    not_built: list[str] = field(default_factory=list)  # dates the server has nothing for yet
    fetched: int = 0
    skipped: int = 0
    resumed: int = 0
    bytes: int = 0  # body bytes received


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _local_path(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") or part.startswith(".") for part in p.parts):
        raise DeliveryError(f"the server sent an unsafe path {rel!r}; refusing it")
    return root.joinpath(*p.parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class PullClient:
    def __init__(
        self, server: str, token: str, *, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None
    ):
        self.server = server.rstrip("/")
        self.http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "loa-pull"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _get(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.get(url, **kwargs)
        except httpx.TransportError as exc:
            raise TransientDeliveryError(
                f"{self.server}{url}: {exc.__class__.__name__}: {exc}; try again later"
            ) from exc
        if response.status_code == 401:
            raise UsageError(f"{self.server}: the token was refused; ask for a new one (`loa token create ENDPOINT`)")
        return response

    def whoami(self) -> dict[str, Any]:
        response = self._get("/api/v1/me")
        if response.status_code != 200:
            raise DeliveryError(f"{self.server}/api/v1/me: HTTP {response.status_code}; is this a Loa server?")
        data: dict[str, Any] = response.json()
        return data

    def manifest(self, endpoint: str, day: dt.date) -> bytes | None:
        response = self._get(f"/api/v1/endpoints/{endpoint}/programs", params={"date": day.isoformat()})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DeliveryError(f"{self.server}: manifest of {day}: HTTP {response.status_code}")
        return response.content

    def emergencies(self, endpoint: str) -> list[dict[str, Any]]:
        response = self._get(f"/api/v1/endpoints/{endpoint}/emergencies")
        if response.status_code != 200:
            raise DeliveryError(f"{self.server}: emergencies: HTTP {response.status_code}")
        data: list[dict[str, Any]] = response.json()
        return data

    def fetch(self, endpoint: str, entry: dict[str, Any], root: Path, report: PullReport) -> None:
        """Bring one file of a manifest into place unless it is already there."""
        rel = str(entry["path"])
        dest = _local_path(root, rel)
        size, sha = int(entry["bytes"]), str(entry["sha256"])
        if dest.is_file() and dest.stat().st_size == size and _sha256(dest) == sha:
            report.skipped += 1
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        for attempt in (1, 2):
            self._download(endpoint, rel, part, size, report)
            if _sha256(part) == sha:
                os.replace(part, dest)
                report.fetched += 1
                return
            part.unlink(missing_ok=True)  # a stale or damaged partial file: start over once
            log.warning("%s: checksum mismatch (attempt %d)", rel, attempt)
        raise DeliveryError(f"{self.server}: {rel}: the SHA-256 does not match the manifest after two downloads")

    def _download(self, endpoint: str, rel: str, part: Path, size: int, report: PullReport) -> None:
        have = part.stat().st_size if part.is_file() else 0
        if have >= size:
            part.unlink(missing_ok=True)
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = f"/api/v1/endpoints/{endpoint}/files/{rel}"
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 206 and have:
                    mode = "ab"
                    report.resumed += 1
                elif response.status_code == 200:
                    mode = "wb"
                elif response.status_code == 401:
                    raise UsageError(f"{self.server}: the token was refused while fetching {rel}")
                else:
                    raise DeliveryError(f"{self.server}: {rel}: HTTP {response.status_code}")
                with part.open(mode) as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        report.bytes += len(chunk)
        except httpx.TransportError as exc:
            raise TransientDeliveryError(
                f"{self.server}: {rel}: {exc.__class__.__name__}: {exc}; run again to resume"
            ) from exc


def sync_manifest(client: PullClient, endpoint: str, folder: str, raw: bytes, root: Path, report: PullReport) -> None:
    manifest = json.loads(raw)
    for entry in manifest.get("files", []):
        client.fetch(endpoint, entry, root, report)
    target = _local_path(root, f"{folder}/manifest.json")
    if not (target.is_file() and target.read_bytes() == raw):
        _write_atomic(target, raw)  # the manifest goes last
    report.folders.append(folder)


def pull(
    server: str,
    token: str,
    to: Path,
    *,
    dates: Sequence[dt.date] = (),
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> PullReport:
    """Fetch what is missing for ``dates`` (default: the server's today and tomorrow) into ``to``."""
    client = PullClient(server, token, timeout_s=timeout_s, transport=transport)
    report = PullReport()
    try:
        me = client.whoami()
        endpoint = str(me["endpoint"])
        report.endpoint = endpoint
        if not dates:
            today = dt.date.fromisoformat(str(me["today"]))
            dates = (today, today + dt.timedelta(days=1))
        to.mkdir(parents=True, exist_ok=True)
        for item in client.emergencies(endpoint):
            folder = str(item["folder"])
            raw = json.dumps(item["manifest"], ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
            sync_manifest(client, endpoint, folder, raw, to, report)
        for day in dates:
            raw_day = client.manifest(endpoint, day)
            if raw_day is None:
                report.not_built.append(day.isoformat())
                continue
            sync_manifest(client, endpoint, f"programs/{day.isoformat()}", raw_day, to, report)
    finally:
        client.close()
    return report
