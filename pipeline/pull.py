"""``loa pull``: the commune side of the pull API, for a commune PC run from cron.

It asks the server who its token belongs to, fetches the signed manifests of today and
tomorrow (and of the emergency bulletins in force) and checks each against the
deployment's public key it was given (``--key``): an unsigned, tampered, expired or
other-endpoint manifest is refused, and the last good program stays in place. Then it
downloads only the files it lacks into ``<dir>/<path>.part`` (resuming a broken
download with a Range request), checks each file's SHA-256 against the signed
manifest, renames it into place, and writes the signature and then the manifest last,
so that a player reading ``<dir>`` never sees half a program.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from pipeline import manifest as mf
from pipeline import signing
from pipeline.errors import DeliveryError, TransientDeliveryError, UsageError
from pipeline.files import sha256_file, write_atomic
from pipeline.signing import PublicKey

log = logging.getLogger(__name__)
CHUNK = 1 << 16


@dataclass
class PullReport:
    endpoint: str = ""
    folders: list[str] = field(default_factory=list)  # manifests written or already current
    not_built: list[str] = field(default_factory=list)  # dates the server has nothing for yet
    refused: list[str] = field(default_factory=list)  # "<folder>: why" — kept the last good one
    fetched: int = 0
    skipped: int = 0
    resumed: int = 0
    bytes: int = 0  # body bytes received


def _local_path(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") or part.startswith(".") for part in p.parts):
        raise DeliveryError(f"the server sent an unsafe path {rel!r}; refusing it")
    return root.joinpath(*p.parts)


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

    def signed(self, endpoint: str, folder: str) -> tuple[bytes, bytes | None] | None:
        """The raw manifest of ``folder`` and its signature (None if unsigned); None if not built."""
        raw = self._small(endpoint, f"{folder}/{mf.FILE}")
        if raw is None:
            return None
        return raw, self._small(endpoint, f"{folder}/{mf.SIG_FILE}")

    def _small(self, endpoint: str, rel: str) -> bytes | None:
        response = self._get(f"/api/v1/endpoints/{endpoint}/files/{rel}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DeliveryError(f"{self.server}: {rel}: HTTP {response.status_code}")
        return response.content

    def emergencies(self, endpoint: str) -> list[dict[str, Any]]:
        response = self._get(f"/api/v1/endpoints/{endpoint}/emergencies")
        if response.status_code != 200:
            raise DeliveryError(f"{self.server}: emergencies: HTTP {response.status_code}")
        data: list[dict[str, Any]] = response.json()
        return data

    def fetch(self, endpoint: str, entry: mf.FileEntry, root: Path, report: PullReport) -> None:
        """Bring one file of a manifest into place unless it is already there."""
        rel = entry.path
        dest = _local_path(root, rel)
        size, sha = entry.bytes, entry.sha256
        if dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == sha:
            report.skipped += 1
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        for attempt in (1, 2):
            self._download(endpoint, rel, part, size, report)
            if sha256_file(part) == sha:
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


def checked(
    raw: bytes, signature: bytes | None, *, endpoint: str, folder: str, key: PublicKey, now: dt.datetime
) -> mf.Manifest:
    """The manifest if it is signed by ``key``, for ``endpoint`` and ``folder``, and in force."""
    if signature is None:
        raise DeliveryError(f"{folder}: the manifest is unsigned; refused")
    if not signing.verify(key, raw, signature):
        raise DeliveryError(f"{folder}: the signature does not match the deployment key (tampered?); refused")
    manifest = mf.parse(raw, where=folder)
    if manifest.endpoint != endpoint or manifest.folder != folder:
        raise DeliveryError(f"{folder}: the manifest is for {manifest.endpoint} {manifest.folder}; refused")
    if manifest.expired(now):
        raise DeliveryError(f"{folder}: expired at {manifest.valid_until.isoformat()}; refused")
    return manifest


def sync_folder(
    client: PullClient,
    endpoint: str,
    folder: str,
    signed: tuple[bytes, bytes | None],
    root: Path,
    report: PullReport,
    *,
    key: PublicKey,
    now: dt.datetime,
) -> None:
    """Fetch one folder if its manifest checks out; otherwise keep what is there and say why."""
    raw, signature = signed
    try:
        manifest = checked(raw, signature, endpoint=endpoint, folder=folder, key=key, now=now)
    except (DeliveryError, mf.ManifestError) as exc:
        log.warning("%s", exc)
        report.refused.append(str(exc))
        return
    try:
        for entry in manifest.files:
            client.fetch(endpoint, entry, root, report)
    except TransientDeliveryError:
        raise  # the link: run again later to resume
    except DeliveryError as exc:  # a file that does not match its signed manifest
        log.warning("%s", exc)
        report.refused.append(f"{folder}: {exc}")
        return
    assert signature is not None
    write_atomic(_local_path(root, f"{folder}/{mf.SIG_FILE}"), signature)
    write_atomic(_local_path(root, f"{folder}/{mf.FILE}"), raw)  # the manifest goes last
    report.folders.append(folder)


def pull(
    server: str,
    token: str,
    to: Path,
    *,
    key: PublicKey,
    dates: Sequence[dt.date] = (),
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> PullReport:
    """Fetch what is missing for ``dates`` (default: the server's today and tomorrow) into ``to``.

    Only programs signed with ``key`` (the deployment's public key) are taken.
    """
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
        now = dt.datetime.now(dt.UTC)
        folders = [str(item["folder"]) for item in client.emergencies(endpoint)]
        folders += [f"programs/{day.isoformat()}" for day in dates]
        for folder in folders:
            signed = client.signed(endpoint, folder)
            if signed is None:
                report.not_built.append(folder.removeprefix("programs/"))
                continue
            sync_folder(client, endpoint, folder, signed, to, report, key=key, now=now)
    finally:
        client.close()
    return report
