"""Deliver: the outbox → endpoints, sending only what each endpoint lacks.

For every endpoint and every manifest to deliver (``programs/<date>`` or
``emergency/<bulletin>``): list what the endpoint has (``media/`` in one request, its
copy of the manifest), upload the missing files (each to a temporary name, size
checked, renamed into place), then write the manifest last, so a device never sees a
half program. A playlist endpoint gets ``media/`` and the ``.m3u`` files, a single-file
endpoint the one ``.mp3`` per slot; both get the manifest. Transient errors are retried
with exponential backoff and jitter; permanent ones fail the endpoint at once. Endpoints
are served in parallel and one endpoint's failure never stops the others. Afterwards old
programs (``deliver.retention_days``) and media no remaining program uses are removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import DeliveryError, TransientDeliveryError
from pipeline.models import Delivery, Deployment, Endpoint
from pipeline.store.db import utcnow
from pipeline.transports import Transport, open_transport

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
READ_BACK_LIMIT = 256 * 1024
Sleep = Callable[[float], None]
OnDone = Callable[[Delivery], None]


@dataclass
class _Tally:
    sent: int = 0
    skipped: int = 0
    bytes: int = 0


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"{path}: cannot read the manifest ({exc}); run `loa build` again") from exc
    return data


def _wanted(manifest: dict[str, Any], endpoint: Endpoint) -> list[dict[str, Any]]:
    return [f for f in manifest["files"] if f.get("format", endpoint.format) == endpoint.format]


def sync_folder(t: Transport, endpoint: Endpoint, root: Path, folder: str, tally: _Tally) -> None:
    """Bring ``folder`` (with its media) on the endpoint up to the outbox's copy."""
    local_manifest = root / folder / MANIFEST
    manifest_bytes = local_manifest.read_bytes()
    manifest = _load_manifest(local_manifest)
    remote_raw = t.read_bytes(f"{folder}/{MANIFEST}")
    remote_sha: dict[str, str] = {}
    if remote_raw:
        try:
            remote_sha = {f["path"]: f["sha256"] for f in json.loads(remote_raw)["files"]}
        except (ValueError, KeyError, TypeError):
            remote_sha = {}  # a damaged manifest on the device: resend what it describes
    listings: dict[str, dict[str, int]] = {}
    for entry in _wanted(manifest, endpoint):
        rel: str = entry["path"]
        parent, _, name = rel.rpartition("/")
        if parent not in listings:
            listings[parent] = t.list_files(parent)
        have = listings[parent].get(name)
        if have == entry["bytes"] and _same_content(t, root, rel, entry, remote_sha):
            tally.skipped += 1
            continue
        tally.bytes += t.put_file(root / rel, rel)
        tally.sent += 1
        listings[parent][name] = entry["bytes"]
    if remote_raw == manifest_bytes:
        tally.skipped += 1
    else:
        tally.bytes += t.put_bytes(manifest_bytes, f"{folder}/{MANIFEST}")
        tally.sent += 1


def _same_content(t: Transport, root: Path, rel: str, entry: dict[str, Any], remote_sha: dict[str, str]) -> bool:
    """Whether the endpoint's file of the right size also has the right content.

    Media are content-addressed (the name is the hash). Other files are known by the
    endpoint's own manifest; without it (a run cut before the manifest), a small file is
    read back and compared, a large one is sent again.
    """
    if rel.startswith("media/") or remote_sha.get(rel) == entry["sha256"]:
        return True
    if entry["bytes"] <= READ_BACK_LIMIT:
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
                expired = raw is not None and _emergency_expired(raw, today)
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
        try:
            used.update(f["path"] for f in json.loads(raw)["files"])
        except (ValueError, KeyError, TypeError):
            return removed  # cannot tell what is used: remove no media
    for name in t.list_files("media"):
        if f"media/{name}" not in used:
            t.remove(f"media/{name}")
            removed.append(f"media/{name}")
    return removed


def _emergency_expired(raw: bytes, today: dt.date) -> bool:
    try:
        return dt.date.fromisoformat(json.loads(raw)["expires"][:10]) < today
    except (ValueError, KeyError, TypeError):
        return False


def deliver_endpoint(
    endpoint: Endpoint,
    folders: Sequence[str],
    *,
    label: str,
    settings: Settings,
    today: dt.date,
    sleep: Sleep = time.sleep,
) -> Delivery:
    """Deliver ``folders`` of the endpoint's commune; retry transient failures."""
    root = settings.outbox_dir / endpoint.commune
    missing = [f for f in folders if not (root / f / MANIFEST).is_file()]
    if missing:
        message = f"{endpoint.name}: nothing built for {', '.join(missing)}; run `loa build` first"
        return _result(endpoint, label, "failed", 0, _Tally(), time.monotonic(), message)
    with endpoint_lock(settings.data_dir, endpoint.name):
        return _deliver_locked(endpoint, folders, root=root, label=label, settings=settings, today=today, sleep=sleep)


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
) -> Delivery:
    cfg = settings.deliver
    tally = _Tally()
    started = time.monotonic()
    error: DeliveryError | None = None
    attempt = 0
    for attempt in range(1, cfg.retries + 2):
        try:
            with open_transport(endpoint, settings=cfg, create_root=endpoint.transport == "local") as t:
                t.remove_temps("media")
                for folder in folders:
                    sync_folder(t, endpoint, root, folder, tally)
                apply_retention(t, keep_from=today - dt.timedelta(days=cfg.retention_days), today=today)
            return _result(endpoint, label, "delivered", attempt, tally, started, None)
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
            error = DeliveryError(f"{endpoint.name}: reading the outbox: {exc}; run `loa build` again")
            break
    message = str(error)
    if isinstance(error, TransientDeliveryError):
        message = message.removesuffix("; will retry") + f"; gave up after {attempt} attempts (a later push retries)"
    return _result(endpoint, label, "failed", attempt, tally, started, message)


def _result(
    endpoint: Endpoint,
    label: str,
    status: str,
    attempts: int,
    tally: _Tally,
    started: float,
    error: str | None,
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
    )


def push_folders(
    targets: Sequence[tuple[Endpoint, Sequence[str]]],
    *,
    label: str,
    settings: Settings,
    today: dt.date,
    on_done: OnDone | None = None,
    sleep: Sleep = time.sleep,
) -> list[Delivery]:
    """Deliver to every endpoint in parallel (``deliver.parallel`` at once)."""

    def one(target: tuple[Endpoint, Sequence[str]]) -> Delivery:
        endpoint, folders = target
        try:
            d = deliver_endpoint(endpoint, folders, label=label, settings=settings, today=today, sleep=sleep)
        except Exception as exc:  # a bug must not stop the other endpoints; it is reported
            log.exception("%s: unexpected failure", endpoint.name)
            d = _result(
                endpoint,
                label,
                "failed",
                1,
                _Tally(),
                time.monotonic(),
                f"{endpoint.name}: unexpected {exc.__class__.__name__}: {exc}",
            )
        if on_done:
            on_done(d)
        return d

    workers = max(1, min(settings.deliver.parallel, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        return list(pool.map(one, targets))


def day_targets(
    deployment: Deployment, day: dt.date, *, endpoint: str | None = None
) -> list[tuple[Endpoint, Sequence[str]]]:
    endpoints = deployment.endpoints()
    if endpoint is not None:
        endpoints = tuple(e for e in endpoints if e.name == endpoint)
    return [(e, [f"programs/{day.isoformat()}"]) for e in endpoints]
