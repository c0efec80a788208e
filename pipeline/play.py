"""``loa pull --play``: play a pulled program with a real player and report what aired.

The player is a command line (default ``mpv --ao=null --ao-null-untimed --no-video``
for tests and headless checks; a commune PC sets ``--player "mpv --no-video"``). Each
item of the program is checked against the manifest's SHA-256, then played; its start,
end and outcome become one item of a ``loa.receipt/1`` receipt, signed with the
endpoint's receipt key and written to ``<dir>/reports/<id>.json``. ``upload_receipts``
then sends every unsent receipt to the server and moves it to ``reports/sent/``; a
receipt the server already has (a retry after a lost answer) counts as sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import httpx
from loa_protocol.errors import LinkError, ServerError, TokenRefused

from pipeline import manifest as mf
from pipeline.broadcast import receipts as rc
from pipeline.errors import DeliveryError, TransientDeliveryError, UsageError
from pipeline.signing import PublicKey

log = logging.getLogger(__name__)
DEFAULT_PLAYER = "mpv --ao=null --ao-null-untimed --no-video --really-quiet --no-config"
REPORTS = "reports"
Clock = Callable[[], dt.datetime]


@dataclass
class PlayReport:
    receipts: list[str] = field(default_factory=list)  # receipt ids written
    played: int = 0
    failed: int = 0
    uploaded: int = 0
    upload_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # folders not played: unsigned, tampered, damaged


def player_command(text: str) -> list[str]:
    argv = shlex.split(text)
    if not argv:
        raise UsageError("--player is empty; give a command such as 'mpv --no-video'")
    return argv


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def play_file(path: Path, *, player: Sequence[str], timeout_s: float) -> tuple[bool, str | None]:
    """Run the player on one file; (completed, why not)."""
    try:
        done = subprocess.run(
            [*player, str(path)], capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError:
        return False, f"player {player[0]!r} not found"
    except subprocess.TimeoutExpired:
        return False, f"player did not finish within {timeout_s:.0f} s"
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return False, f"player exited {done.returncode}: {tail[0][:200]}".rstrip(": ")
    return True, None


def select_program(manifest: mf.Manifest, *, slot: str | None, now: dt.datetime) -> mf.ProgramEntry | None:
    """The program of ``slot``; without a slot, the latest that has started by ``now``, else the first."""
    programs = list(manifest.programs)
    if slot is not None:
        return next((p for p in programs if p.slot == slot), None)
    started = [p for p in programs if p.start <= now]
    return (started[-1] if started else programs[0]) if programs else None


def _safe_path(root: Path, rel: str) -> Path | None:
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return root.joinpath(*parts)


def _check_and_play(
    root: Path, rel: str, sha: str, *, player: Sequence[str], duration_ms: int
) -> tuple[bool, str | None]:
    path = _safe_path(root, rel)
    if path is None:
        return False, "unsafe path in the manifest; not played"
    if not path.is_file():
        return False, "file missing on the device"
    if _sha256(path) != sha:
        return False, "file does not match the manifest's SHA-256"
    return play_file(path, player=player, timeout_s=60.0 + 3 * duration_ms / 1000)


def play_program(
    root: Path,
    manifest: mf.Manifest,
    program: mf.ProgramEntry,
    *,
    player: Sequence[str],
    clock: Clock,
) -> rc.Receipt:
    """Play ``program`` of ``manifest`` from ``root``: each item's file, or the slot's one MP3; the unsigned receipt.

    On a single-file endpoint the whole MP3 plays once and every item gets its outcome.
    """
    items: list[rc.PlayedItem] = []
    if program.single is not None and all(i.file is None for i in program.items):
        sha = next((f.sha256 for f in manifest.files if f.path == program.single), "")
        start = clock()
        ok, why = _check_and_play(root, program.single, sha, player=player, duration_ms=program.duration_ms)
        end = clock()
        for i in program.items:
            items.append(rc.PlayedItem(program.single, i.sha256, start, end, ok, why, i.bulletin_id, i.duration_ms))
    else:
        for i in program.items:
            rel = i.file or ""
            start = clock()
            ok, why = _check_and_play(root, rel, i.sha256, player=player, duration_ms=i.duration_ms)
            items.append(rc.PlayedItem(rel or "?", i.sha256, start, clock(), ok, why, i.bulletin_id, i.duration_ms))
    for item in items:
        if not item.completed:
            log.warning("%s: %s: %s", program.id, item.file, item.reason)
    return rc.Receipt(
        id=rc.new_receipt_id(),
        endpoint=manifest.endpoint,
        commune=manifest.commune,
        source="pull",
        program=program.id,
        issued_at=clock(),
        items=tuple(items),
    )


def write_receipt(root: Path, receipt: rc.Receipt) -> Path:
    """Write a signed receipt to ``<root>/reports/<id>.json`` (temp name, then rename)."""
    out = root / REPORTS / f"{receipt.id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(rc.dumps(receipt))
    os.replace(tmp, out)
    return out


def receipt_key(http: httpx.Client, endpoint: str) -> bytes:
    """This endpoint's receipt key, from the server (the bearer token is the credential)."""
    try:
        response = http.get(f"/api/v1/endpoints/{endpoint}/receipt-key")
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"receipt key of {endpoint}: {exc}; try again later") from exc
    if response.status_code != 200:
        raise DeliveryError(f"receipt key of {endpoint}: HTTP {response.status_code}")
    return bytes.fromhex(str(response.json()["key"]))


def upload_receipts(http: httpx.Client, endpoint: str, root: Path, report: PlayReport) -> None:
    """Send every receipt in ``<root>/reports/`` and move it to ``reports/sent/`` once the server has it."""
    folder = root / REPORTS
    sent = folder / "sent"
    for path in sorted(folder.glob("*.json")):
        data = path.read_bytes()
        try:
            response = http.post(
                f"/api/v1/endpoints/{endpoint}/receipts", content=data, headers={"content-type": "application/json"}
            )
        except httpx.TransportError as exc:
            report.upload_errors.append(f"{path.name}: {exc.__class__.__name__}; kept for the next run")
            continue
        if response.status_code in (201, 409):  # 409: the server already has it
            sent.mkdir(parents=True, exist_ok=True)
            os.replace(path, sent / path.name)
            report.uploaded += response.status_code == 201
        else:
            detail = response.text[:200]
            report.upload_errors.append(f"{path.name}: HTTP {response.status_code} {detail}")


def replay_tag(manifest: mf.Manifest, now: dt.datetime) -> str:
    """Which showing of an emergency is due: "first", or the latest replay time that has come.

    A device plays each showing once; if several replay times passed while it was off, it
    plays the latest only.
    """
    due = [t for t in (manifest.emergency.replay if manifest.emergency else ()) if t <= now]
    return max(due).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") if due else "first"


def _load(root: Path, folder: str, *, public_key: PublicKey | None, now: dt.datetime) -> mf.Manifest:
    """The folder's manifest: signature, expiry and files checked when the deployment key is given."""
    if public_key is not None:
        return mf.verify_folder(root, folder, public_key=public_key, now=now)
    return mf.read(root / folder / mf.FILE)


def play_pulled(
    server: str,
    token: str,
    root: Path,
    *,
    public_key: PublicKey | None = None,
    slot: str | None = None,
    player: Sequence[str] = tuple(shlex.split(DEFAULT_PLAYER)),
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PlayReport:
    """After ``pull``: play today's program (and unplayed emergencies), write receipts, upload them.

    An emergency plays once when it first arrives, then again at each replay time of its
    manifest that has come (a marker per time under ``reports/played/``).

    With ``public_key`` (the deployment's, as ``loa pull --key`` takes it) a folder plays
    only if its signed manifest and every file check out; a refused one is named.
    """
    from pipeline.pull import PullClient

    client = PullClient(server, token, transport=transport)
    report = PlayReport()
    try:
        me = client.whoami()
        endpoint, tz = str(me["endpoint"]), ZoneInfo(str(me["timezone"]))
        now_of: Clock = clock or (lambda: dt.datetime.now(tz).replace(microsecond=0))
        key = receipt_key(client.http, endpoint)
        chosen: list[tuple[mf.Manifest, mf.ProgramEntry, Path | None]] = []
        played_marks = root / REPORTS / "played"
        folders = [f"emergency/{p.parent.name}" for p in sorted((root / "emergency").glob(f"*/{mf.FILE}"))]
        today = now_of().date()
        day_folder = f"programs/{today.isoformat()}"
        if (root / day_folder / mf.FILE).is_file():
            folders.append(day_folder)
        elif slot is not None:
            raise UsageError(f"{root / day_folder}: no program for {today} here; run `loa pull` first")
        for folder in folders:
            emergency = folder.startswith("emergency/")
            try:
                manifest = _load(root, folder, public_key=public_key, now=now_of())
            except mf.ManifestError as exc:
                if not (emergency and "expired" in str(exc)):
                    report.refused.append(f"{folder}: {exc}")
                continue
            if emergency:
                marker = played_marks / f"{folder.replace('/', '-')}-{replay_tag(manifest, now_of())}"
                if not marker.exists():
                    chosen.extend((manifest, p, marker) for p in manifest.programs)
            elif (program := select_program(manifest, slot=slot, now=now_of())) is not None:
                chosen.append((manifest, program, None))
        for manifest, program, mark in chosen:
            receipt = play_program(root, manifest, program, player=player, clock=now_of)
            if receipt.endpoint != endpoint:
                report.refused.append(f"{program.id}: the manifest is for {receipt.endpoint}, not {endpoint}")
                continue
            write_receipt(root, rc.sign(receipt, key))
            report.receipts.append(receipt.id)
            report.played += sum(i.completed for i in receipt.items)
            report.failed += sum(not i.completed for i in receipt.items)
            if mark is not None:
                mark.parent.mkdir(parents=True, exist_ok=True)
                mark.touch()
        upload_receipts(client.http, endpoint, root, report)
    except TokenRefused as exc:
        raise UsageError(str(exc), code="pull.token_refused") from exc
    except LinkError as exc:
        raise TransientDeliveryError(str(exc)) from exc
    except ServerError as exc:
        raise DeliveryError(str(exc)) from exc
    finally:
        client.close()
    return report
