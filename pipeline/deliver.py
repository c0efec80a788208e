"""Deliver: one endpoint's folders from the outbox, sending only what it lacks.

For every folder to deliver (``programs/<date>`` or ``emergency/<bulletin>``): read the
endpoint's own signed manifest from the outbox, list what the endpoint has (``media/``
in one request, its copy of the manifest), upload the missing files the manifest names
(each to a temporary name, size checked, renamed into place), then the signature, then
the manifest last, so a device never sees a half program. Transient errors are retried
with exponential backoff and jitter; permanent ones fail the endpoint at once.
Afterwards old programs (``deliver.retention_days``) and media no remaining program
uses are removed. Which endpoints are served, and in parallel, is the orchestrator's
business (``pipeline.produce``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import manifest as mf
from pipeline.config import Settings
from pipeline.errors import DeliveryError, LoaError, TransientDeliveryError
from pipeline.models import Delivery, Deployment, Endpoint
from pipeline.package import manifest_path
from pipeline.signing import SIGNATURE_SUFFIX
from pipeline.store.db import utcnow
from pipeline.transports import Transport, open_transport

log = logging.getLogger(__name__)

MANIFEST = mf.FILE
SIGNATURE = mf.SIG_FILE
READ_BACK_LIMIT = 256 * 1024
Sleep = Callable[[float], None]
OnDone = Callable[[Delivery], None]
#: Run on the open connection once the folders are in place (e.g. collect the device's receipts).
AfterSync = Callable[[Transport], None]
#: A folder put in place on an endpoint: (folder, manifest bytes, signature bytes).
Synced = tuple[str, bytes, bytes]


@dataclass
class _Tally:
    sent: int = 0
    skipped: int = 0
    bytes: int = 0
    synced: list[Synced] = field(default_factory=list)


def held_state(synced: Sequence[Synced], *, today: dt.date, retention_days: int) -> str:
    """A digest of what an endpoint holds once ``synced`` folders are in place and retention ran.

    Recorded with each delivery; a later push whose outbox gives the same digest need not
    reconnect (``deliver.recheck_hours``). Signatures are deterministic, so an unchanged
    build gives the same digest.
    """
    h = hashlib.sha256(f"{today.isoformat()} {retention_days}".encode())
    for folder, manifest, signature in sorted(synced):
        h.update(b"\0" + folder.encode() + hashlib.sha256(manifest).digest() + hashlib.sha256(signature).digest())
    return h.hexdigest()


def outbox_state(
    outbox: Path, endpoint: Endpoint, folders: Sequence[str], *, today: dt.date, retention_days: int
) -> str | None:
    """The ``held_state`` the endpoint will have once ``folders`` are delivered; None when one is not built."""
    synced: list[Synced] = []
    for folder in folders:
        path = manifest_path(outbox, endpoint.commune, folder, endpoint.name)
        try:
            synced.append((folder, path.read_bytes(), path.with_name(path.name + SIGNATURE_SUFFIX).read_bytes()))
        except OSError:
            return None
    return held_state(synced, today=today, retention_days=retention_days)


def _local_manifest(outbox: Path, endpoint: Endpoint, folder: str) -> tuple[bytes, bytes, mf.Manifest]:
    path = manifest_path(outbox, endpoint.commune, folder, endpoint.name)
    try:
        raw = path.read_bytes()
        sig = path.with_name(path.name + ".sig").read_bytes()
    except OSError as exc:
        raise DeliveryError(
            f"{endpoint.name}: no signed manifest for {folder} in the outbox ({exc.strerror or exc}); run `loa build`",
            code="delivery.outbox",
            endpoint=endpoint.name,
        ) from exc
    try:
        return raw, sig, mf.parse(raw, where=str(path))
    except mf.ManifestError as exc:
        raise DeliveryError(
            f"{endpoint.name}: {exc}; run `loa build` again", code="delivery.outbox", endpoint=endpoint.name
        ) from exc


def sync_folder(
    t: Transport, endpoint: Endpoint, root: Path, folder: str, tally: _Tally, *, outbox: Path, trust_remote: bool = True
) -> None:
    """Bring ``folder`` (with its media) on the endpoint up to the outbox's copy.

    With ``trust_remote``, an endpoint whose manifest and signature already equal the
    outbox's is whole (the manifest lands last) and is not listed again: a warm night
    costs two small reads per endpoint. ``deliver.trust_remote_manifest = false`` checks
    every file every time (for devices whose files may be removed behind Loa's back).
    """
    manifest_bytes, signature, manifest = _local_manifest(outbox, endpoint, folder)
    tally.synced.append((folder, manifest_bytes, signature))
    remote_raw = t.read_bytes(f"{folder}/{MANIFEST}")
    same = remote_raw == manifest_bytes and t.read_bytes(f"{folder}/{SIGNATURE}", limit=1024) == signature
    if same and trust_remote:
        # The manifest lands last, after every file it names: the folder is whole. No listing.
        tally.skipped += len(manifest.files) + 2
        return
    remote_sha: dict[str, str] = {}
    if remote_raw:
        try:
            remote_sha = {f.path: f.sha256 for f in mf.parse(remote_raw).files}
        except mf.ManifestError:
            remote_sha = {}  # a damaged or round-one manifest on the device: resend what it describes
    listings: dict[str, dict[str, int]] = {}
    for entry in manifest.files:
        rel = entry.path
        parent, _, name = rel.rpartition("/")
        if parent not in listings:
            listings[parent] = t.list_files(parent)
        have = listings[parent].get(name)
        if have == entry.bytes and _same_content(t, root, entry, remote_sha):
            tally.skipped += 1
            continue
        tally.bytes += t.put_file(root / rel, rel)
        tally.sent += 1
        listings[parent][name] = entry.bytes
    if same:
        tally.skipped += 2
        return
    tally.bytes += t.put_bytes(signature, f"{folder}/{SIGNATURE}")  # the signature first…
    tally.bytes += t.put_bytes(manifest_bytes, f"{folder}/{MANIFEST}")  # …the manifest last
    tally.sent += 2


def _same_content(t: Transport, root: Path, entry: mf.FileEntry, remote_sha: dict[str, str]) -> bool:
    """Whether the endpoint's file of the right size also has the right content.

    Media are content-addressed (the name is the hash). Other files are known by the
    endpoint's own manifest; without it (a run cut before the manifest), a small file is
    read back and compared, a large one is sent again.
    """
    rel = entry.path
    if rel.startswith("media/") or remote_sha.get(rel) == entry.sha256:
        return True
    if entry.bytes <= READ_BACK_LIMIT:
        return t.read_bytes(rel, limit=READ_BACK_LIMIT) == (root / rel).read_bytes()
    return False


def apply_retention(t: Transport, *, keep_from: dt.date, today: dt.date) -> list[str]:
    """Remove programs older than ``keep_from``, expired emergencies, then unused media."""
    removed: list[str] = []
    keep_manifests: list[bytes] = []
    for area in ("programs", "emergency"):
        for name in t.list_dir(area):
            folder = f"{area}/{name}"
            raw = t.read_bytes(f"{folder}/{MANIFEST}")
            if area == "programs":
                try:
                    expired = dt.date.fromisoformat(name) < keep_from
                except ValueError:
                    continue  # not ours
            else:
                expires = mf.expiry(raw) if raw is not None else None
                expired = expires is not None and expires.date() < today
            if not expired:
                if raw is not None:
                    keep_manifests.append(raw)
                continue
            for file in t.list_dir(folder):
                t.remove(f"{folder}/{file}")
            t.remove_dir(folder)
            removed.append(folder)
    used: set[str] = set()
    for raw in keep_manifests:
        named = mf.files_named(raw)
        if named is None:
            return removed  # cannot tell what is used: remove no media
        used |= named
    for name in t.list_files("media"):
        if f"media/{name}" not in used:
            t.remove(f"media/{name}")
            removed.append(f"media/{name}")
    return removed


def deliver_endpoint(
    endpoint: Endpoint,
    folders: Sequence[str],
    *,
    label: str,
    settings: Settings,
    today: dt.date,
    sleep: Sleep = time.sleep,
    after_sync: AfterSync | None = None,
    check_files: bool = False,
) -> Delivery:
    """Deliver ``folders`` of the endpoint's commune; retry transient failures.

    ``after_sync`` runs on the same connection once everything is in place; its failure is
    logged and never fails the delivery. ``check_files`` lists and compares every file even
    when the device's signed manifest equals the outbox's (``loa push --recheck``).
    """
    root = settings.outbox_dir / endpoint.commune
    missing = [
        f for f in folders if not manifest_path(settings.outbox_dir, endpoint.commune, f, endpoint.name).is_file()
    ]
    if missing:
        message = f"{endpoint.name}: nothing built for {', '.join(missing)}; run `loa build` first"
        return _result(endpoint, label, "failed", 0, _Tally(), time.monotonic(), message)
    with endpoint_lock(settings.data_dir, endpoint.name):
        return _deliver_locked(
            endpoint,
            folders,
            root=root,
            label=label,
            settings=settings,
            today=today,
            sleep=sleep,
            after_sync=after_sync,
            trust_remote=settings.deliver.trust_remote_manifest and not check_files,
        )


@contextlib.contextmanager
def endpoint_lock(data_dir: Path, name: str) -> Iterator[None]:
    """One delivery at a time per endpoint, across processes (the nightly job, a dispatch,
    a retry): otherwise one's retention could remove media the other has just sent."""
    locks = data_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _deliver_locked(
    endpoint: Endpoint,
    folders: Sequence[str],
    *,
    root: Path,
    label: str,
    settings: Settings,
    today: dt.date,
    sleep: Sleep,
    after_sync: AfterSync | None,
    trust_remote: bool,
) -> Delivery:
    cfg = settings.deliver
    tally = _Tally()
    started = time.monotonic()
    error: DeliveryError | None = None
    attempt = 0
    for attempt in range(1, cfg.retries + 2):
        tally.synced.clear()
        try:
            with open_transport(endpoint, settings=cfg, create_root=endpoint.transport == "local") as t:
                t.remove_temps("media")
                for folder in folders:
                    sync_folder(
                        t,
                        endpoint,
                        root,
                        folder,
                        tally,
                        outbox=settings.outbox_dir,
                        trust_remote=trust_remote,
                    )
                apply_retention(t, keep_from=today - dt.timedelta(days=cfg.retention_days), today=today)
                if after_sync is not None:
                    try:
                        after_sync(t)
                    except (LoaError, OSError) as exc:
                        log.warning("%s: after delivery: %s", endpoint.name, exc)
            state = held_state(tally.synced, today=today, retention_days=cfg.retention_days)
            return _result(endpoint, label, "delivered", attempt, tally, started, None, state=state)
        except TransientDeliveryError as exc:
            error = exc
            if attempt > cfg.retries:
                break
            delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            log.warning("%s (attempt %d, retrying in %.1f s)", exc, attempt, delay)
            sleep(delay)
        except DeliveryError as exc:
            error = exc
            break
        except OSError as exc:  # the outbox itself: a file vanished or cannot be read
            error = DeliveryError(
                f"{endpoint.name}: reading the outbox: {exc}; run `loa build` again",
                code="delivery.outbox",
                endpoint=endpoint.name,
            )
            break
    message = str(error)
    transient = isinstance(error, TransientDeliveryError)
    if transient:
        message = message.removesuffix("; will retry") + f"; gave up after {attempt} attempts (a later push retries)"
    code, fields = (error.code, _plain(error.fields)) if error is not None else (None, {})
    return _result(
        endpoint, label, "failed", attempt, tally, started, message, transient=transient, code=code, fields=fields
    )


def _plain(fields: dict[str, object]) -> dict[str, object]:
    """An error's fields as the deliveries table keeps them (JSON): numbers and text."""
    return {k: v if isinstance(v, int | float | str) else str(v) for k, v in fields.items()}


def failed_delivery(endpoint: Endpoint, label: str, error: str) -> Delivery:
    """The record of a delivery that could not even start (a bug, a lost worker)."""
    return _result(endpoint, label, "failed", 1, _Tally(), time.monotonic(), error)


def _result(
    endpoint: Endpoint,
    label: str,
    status: str,
    attempts: int,
    tally: _Tally,
    started: float,
    error: str | None,
    *,
    state: str | None = None,
    transient: bool = False,
    code: str | None = None,
    fields: dict[str, object] | None = None,
) -> Delivery:
    return Delivery(
        endpoint=endpoint.name,
        commune=endpoint.commune,
        program=label,
        status=status,
        attempts=attempts,
        files_sent=tally.sent,
        files_skipped=tally.skipped,
        bytes_sent=tally.bytes,
        seconds=round(time.monotonic() - started, 3),
        error=error,
        finished_at=utcnow(),
        state=state,
        transient=transient,
        error_code=code,
        error_fields=fields or {},
    )


def day_targets(
    deployment: Deployment, day: dt.date, *, endpoint: str | None = None
) -> list[tuple[Endpoint, Sequence[str]]]:
    endpoints = deployment.endpoints()
    if endpoint is not None:
        endpoints = tuple(e for e in endpoints if e.name == endpoint)
    return [(e, [f"programs/{day.isoformat()}"]) for e in endpoints]
