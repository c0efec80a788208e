"""The pull API's client: what a commune's player asks of the server, with its bearer token.

Every call maps the server's answer onto the protocol's errors: no answer at all is a
``LinkError`` (retry later), 401 a ``TokenRefused``, anything else unexpected a
``ServerError``. ``sync_folder`` brings one signed folder into a local root: the
manifest is checked first (signature, endpoint, folder, expiry), then only the files
missing are downloaded into ``<path>.part`` (resumed with a Range request), each checked
against its SHA-256 and renamed into place; the signature and then the manifest are
written last, so a player reading the root never sees half a program.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loa_protocol import manifest as mf
from loa_protocol import signature
from loa_protocol.errors import EnrollmentRefused, LinkError, ManifestError, ServerError, TokenRefused
from loa_protocol.files import safe_relative, sha256_file, write_atomic
from loa_protocol.signature import PublicKey

log = logging.getLogger(__name__)
CHUNK = 1 << 16
API = "/api/v1"


@dataclass
class PullReport:
    endpoint: str = ""
    folders: list[str] = field(default_factory=list)  # manifests written or already current
    not_built: list[str] = field(default_factory=list)  # folders the server has nothing for yet
    refused: list[str] = field(default_factory=list)  # "<folder>: why" — kept the last good one
    fetched: int = 0
    skipped: int = 0
    resumed: int = 0
    bytes: int = 0  # body bytes received


@dataclass(frozen=True)
class ServerTime:
    now: dt.datetime  # the server's clock, at the middle of the request
    offset_s: float  # server minus local: add it to the local clock to get the server's time
    round_trip_s: float


def local_path(root: Path, rel: str) -> Path:
    path = safe_relative(root, rel)
    if path is None:
        raise ServerError(f"the server sent an unsafe path {rel!r}; refusing it", code="server.unsafe_path", path=rel)
    return path


class PullClient:
    """One server, one token. ``transport`` is for tests (httpx's MockTransport, ASGI)."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "loa-protocol",
        verify_tls: bool | str = True,
    ) -> None:
        self.server = server.rstrip("/")
        headers = {"User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: bool | ssl.SSLContext = (
            verify_tls if isinstance(verify_tls, bool) else ssl.create_default_context(cafile=verify_tls)
        )  # a path: the deployment's own CA (PEM)
        self.http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout_s, transport=transport, verify=verify
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PullClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise LinkError(
                f"{self.server}{url}: {exc.__class__.__name__}: {exc}; try again later",
                server=self.server,
                url=url,
            ) from exc
        if response.status_code == 401:
            raise TokenRefused(
                f"{self.server}: the token was refused; ask for a new one (`loa token create ENDPOINT`)",
                server=self.server,
            )
        return response

    def _json(self, response: httpx.Response, what: str) -> Any:
        if response.status_code != 200:
            raise ServerError(f"{self.server}: {what}: HTTP {response.status_code}", status=response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(f"{self.server}: {what}: not JSON; is this a Loa server?") from exc

    # --- who and when -----------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        response = self.request("GET", f"{API}/me")
        if response.status_code != 200:
            raise ServerError(f"{self.server}{API}/me: HTTP {response.status_code}; is this a Loa server?")
        data: dict[str, Any] = response.json()
        return data

    def server_time(self, local_now: dt.datetime) -> ServerTime:
        """The server's clock against ``local_now`` (the device's, taken just before asking).

        ``GET /api/v1/time`` gives it to the millisecond; a server without it is read from
        the HTTP ``Date`` header (to the second).
        """
        started = dt.datetime.now(dt.timezone.utc)
        response = self.request("GET", f"{API}/time")
        rtt = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
        server_now: dt.datetime | None = None
        if response.status_code == 200:
            try:
                server_now = mf._aware(str(response.json()["now"]))
            except (ValueError, KeyError, TypeError):
                server_now = None
        if server_now is None and response.headers.get("date"):
            server_now = email.utils.parsedate_to_datetime(response.headers["date"])
        if server_now is None:
            raise ServerError(f"{self.server}: no time in the answer (HTTP {response.status_code})")
        mid_local = local_now + dt.timedelta(seconds=rtt / 2)
        return ServerTime(server_now, (server_now - mid_local).total_seconds(), rtt)

    # --- manifests and files ----------------------------------------------------

    def signed(self, endpoint: str, folder: str) -> tuple[bytes, bytes | None] | None:
        """The raw manifest of ``folder`` and its signature (None if unsigned); None if not built."""
        raw = self.small(endpoint, f"{folder}/{mf.FILE}")
        if raw is None:
            return None
        return raw, self.small(endpoint, f"{folder}/{mf.SIG_FILE}")

    def small(self, endpoint: str, rel: str) -> bytes | None:
        response = self.request("GET", f"{API}/endpoints/{endpoint}/files/{rel}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServerError(f"{self.server}: {rel}: HTTP {response.status_code}")
        return response.content

    def emergencies(self, endpoint: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json(
            self.request("GET", f"{API}/endpoints/{endpoint}/emergencies"), "emergencies"
        )
        return data

    def events(self, endpoint: str, *, since: str = "", wait_s: float = 25.0) -> dict[str, Any]:
        """Long-poll: the emergencies in force as soon as they differ from version ``since``.

        The server answers at once when they differ, else after ``wait_s`` with the same
        version. The answer: ``{"version": "…", "emergencies": [{"folder", "bulletin", …}]}``.
        """
        response = self.request(
            "GET",
            f"{API}/endpoints/{endpoint}/events",
            params={"since": since, "wait": int(wait_s)},
            timeout=wait_s + 30.0,
        )
        data: dict[str, Any] = self._json(response, "events")
        return data

    def fetch(self, endpoint: str, entry: mf.FileEntry, root: Path, report: PullReport) -> None:
        """Bring one file of a manifest into place unless it is already there."""
        rel = entry.path
        dest = local_path(root, rel)
        size, sha = entry.bytes, entry.sha256
        if dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == sha:
            report.skipped += 1
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        for attempt in (1, 2):
            self._download(endpoint, rel, part, size, report)
            if sha256_file(part) == sha:
                with part.open("rb+") as f:
                    os.fsync(f.fileno())
                os.replace(part, dest)
                report.fetched += 1
                return
            part.unlink()  # a stale or damaged partial file: start over once
            log.warning("%s: checksum mismatch (attempt %d)", rel, attempt)
        raise ServerError(
            f"{self.server}: {rel}: the SHA-256 does not match the manifest after two downloads",
            code="server.checksum",
            path=rel,
        )

    def _download(self, endpoint: str, rel: str, part: Path, size: int, report: PullReport) -> None:
        have = part.stat().st_size if part.is_file() else 0
        if have >= size:
            part.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = f"{API}/endpoints/{endpoint}/files/{rel}"
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 206 and have:
                    mode = "ab"
                    report.resumed += 1
                elif response.status_code == 200:
                    mode = "wb"
                elif response.status_code == 401:
                    raise TokenRefused(f"{self.server}: the token was refused while fetching {rel}")
                else:
                    raise ServerError(f"{self.server}: {rel}: HTTP {response.status_code}")
                with part.open(mode) as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        report.bytes += len(chunk)
        except httpx.TransportError as exc:
            raise LinkError(f"{self.server}: {rel}: {exc.__class__.__name__}: {exc}; run again to resume") from exc

    # --- receipts, heartbeat, enrollment ----------------------------------------

    def receipt_key(self, endpoint: str) -> bytes:
        """This endpoint's receipt key (the bearer token is the credential)."""
        data = self._json(self.request("GET", f"{API}/endpoints/{endpoint}/receipt-key"), "receipt key")
        return bytes.fromhex(str(data["key"]))

    def upload_receipt(self, endpoint: str, data: bytes) -> bool:
        """Send one receipt; True if the server stored it now, False if it had it already (409)."""
        response = self.request(
            "POST",
            f"{API}/endpoints/{endpoint}/receipts",
            content=data,
            headers={"content-type": "application/json"},
        )
        if response.status_code in (201, 409):
            return response.status_code == 201
        raise ServerError(f"{self.server}: receipt: HTTP {response.status_code} {response.text[:200]}")

    def heartbeat(self, endpoint: str, doc: dict[str, Any]) -> None:
        """Say the device is alive: version, free space, clock offset, last program played."""
        self.heartbeat_answer(endpoint, doc)

    def heartbeat_answer(self, endpoint: str, doc: dict[str, Any]) -> dict[str, Any]:
        """``heartbeat``, with the server's answer: ``{"ok", "rotate", "now"}``."""
        response = self.request("POST", f"{API}/endpoints/{endpoint}/heartbeat", json=doc)
        data: dict[str, Any] = self._json(response, "heartbeat")
        return data

    def rotate_token(self, endpoint: str) -> str:
        """A new token; the one in use stays valid until ``confirm_token`` is called with the new one."""
        data = self._json(self.request("POST", f"{API}/endpoints/{endpoint}/token"), "token")
        return str(data["token"])

    def confirm_token(self, endpoint: str) -> int:
        """Called with the new token: the server revokes the old ones; how many."""
        data = self._json(self.request("POST", f"{API}/endpoints/{endpoint}/token/confirm"), "token confirm")
        return int(data["revoked"])

    def enroll(self, code: str, *, device: dict[str, Any] | None = None) -> dict[str, Any]:
        """Trade a one-time enrollment code for the endpoint's token, public key and receipt key."""
        response = self.request("POST", f"{API}/enroll", json={"code": code, "device": device or {}})
        if response.status_code in (400, 403, 404, 409, 410, 422, 429):
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = ""
            raise EnrollmentRefused(detail or f"HTTP {response.status_code}", status=response.status_code)
        data: dict[str, Any] = self._json(response, "enroll")
        return data


# --- a folder, checked and synced -------------------------------------------------


def checked(
    raw: bytes, sig: bytes | None, *, endpoint: str, folder: str, key: PublicKey, now: dt.datetime
) -> mf.Manifest:
    """The manifest if it is signed by ``key``, for ``endpoint`` and ``folder``, and in force."""
    if sig is None:
        raise ManifestError(f"{folder}: the manifest is unsigned; refused", code="manifest.unsigned", folder=folder)
    if not signature.verify(key, raw, sig):
        raise ManifestError(
            f"{folder}: the signature does not match the deployment key (tampered?); refused",
            code="manifest.bad_signature",
            folder=folder,
        )
    manifest = mf.parse(raw, where=folder)
    if manifest.endpoint != endpoint or manifest.folder != folder:
        raise ManifestError(
            f"{folder}: the manifest is for {manifest.endpoint} {manifest.folder}; refused",
            code="manifest.other_endpoint",
            folder=folder,
        )
    if manifest.expired(now):
        raise ManifestError(
            f"{folder}: expired at {manifest.valid_until.isoformat()}; refused", code="manifest.expired", folder=folder
        )
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
) -> mf.Manifest | None:
    """Fetch one folder if its manifest checks out; otherwise keep what is there and say why.

    ``LinkError`` and ``TokenRefused`` go up (run again later to resume); a refused
    manifest or a file that does not match it is named in ``report.refused``.
    """
    raw, sig = signed
    try:
        manifest = checked(raw, sig, endpoint=endpoint, folder=folder, key=key, now=now)
    except ManifestError as exc:
        log.warning("%s", exc)
        report.refused.append(str(exc))
        return None
    try:
        for entry in manifest.files:
            client.fetch(endpoint, entry, root, report)
    except (LinkError, TokenRefused):
        raise
    except ServerError as exc:  # a file that does not match its signed manifest
        log.warning("%s", exc)
        report.refused.append(f"{folder}: {exc}")
        return None
    assert sig is not None
    write_atomic(local_path(root, f"{folder}/{mf.SIG_FILE}"), sig)
    write_atomic(local_path(root, f"{folder}/{mf.FILE}"), raw)  # the manifest goes last
    report.folders.append(folder)
    return manifest
