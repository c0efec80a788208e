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
import json
import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from pipeline import receipts as rc
from pipeline.errors import DeliveryError, TransientDeliveryError, UsageError

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


def select_program(manifest: dict[str, Any], *, slot: str | None, now: dt.datetime) -> dict[str, Any] | None:
    """The program of ``slot``; without a slot, the latest that has started by ``now``, else the first."""
    programs = [p for p in manifest.get("programs", []) if isinstance(p, dict)]
    if slot is not None:
        return next((p for p in programs if p.get("slot") == slot), None)
    started = [p for p in programs if dt.datetime.fromisoformat(str(p["start"])) <= now]
    return (started[-1] if started else programs[0]) if programs else None


def play_program(
    root: Path,
    program: dict[str, Any],
    *,
    endpoint: str,
    commune: str,
    player: Sequence[str],
    clock: Clock,
) -> rc.Receipt:
    """Play every item of ``program`` (a manifest's program entry) from ``root``; the unsigned receipt."""
    items: list[rc.PlayedItem] = []
    for entry in program.get("items", []):
        rel, sha = str(entry["file"]), str(entry["sha256"])
        parts = PurePosixPath(rel).parts
        safe = bool(parts) and not rel.startswith("/") and not any(p in ("", ".", "..") for p in parts)
        path = root.joinpath(*parts) if safe else root / ".unsafe"
        start = clock()
        duration = entry.get("duration_ms")
        bulletin = entry.get("bulletin_id")
        why: str | None
        if not safe:
            ok, why = False, "unsafe path in the manifest; not played"
        elif not path.is_file():
            ok, why = False, "file missing on the device"
        elif _sha256(path) != sha:
            ok, why = False, "file does not match the manifest's SHA-256"
        else:
            limit = 60.0 + 3 * (int(duration or 0) / 1000)
            ok, why = play_file(path, player=player, timeout_s=limit)
        items.append(
            rc.PlayedItem(
                file=rel,
                sha256=sha,
                start=start,
                end=clock(),
                completed=ok,
                reason=why,
                bulletin_id=int(bulletin) if isinstance(bulletin, int) else None,
                duration_ms=int(duration) if isinstance(duration, int) else None,
            )
        )
        if not ok:
            log.warning("%s: %s: %s", program.get("id"), rel, why)
    return rc.Receipt(
        id=rc.new_receipt_id(),
        endpoint=endpoint,
        commune=commune,
        source="pull",
        program=str(program["id"]),
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


def play_pulled(
    server: str,
    token: str,
    root: Path,
    *,
    slot: str | None = None,
    player: Sequence[str] = tuple(shlex.split(DEFAULT_PLAYER)),
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PlayReport:
    """After ``pull``: play today's program (and unplayed emergencies), write receipts, upload them."""
    from pipeline.pull import PullClient

    client = PullClient(server, token, transport=transport)
    report = PlayReport()
    try:
        me = client.whoami()
        endpoint, commune, tz = str(me["endpoint"]), str(me["commune"]), ZoneInfo(str(me["timezone"]))
        now_of: Clock = clock or (lambda: dt.datetime.now(tz).replace(microsecond=0))
        key = receipt_key(client.http, endpoint)
        programs: list[tuple[dict[str, Any], Path | None]] = []
        played_marks = root / REPORTS / "played"
        for manifest_path in sorted((root / "emergency").glob("*/manifest.json")):
            mark: Path | None = played_marks / f"emergency-{manifest_path.parent.name}"
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if (
                mark is not None
                and not mark.exists()
                and (manifest.get("expires") is None or dt.datetime.fromisoformat(manifest["expires"]) >= now_of())
            ):
                programs.extend((p, mark) for p in manifest.get("programs", []))
        today = now_of().date()
        day_path = root / "programs" / today.isoformat() / "manifest.json"
        if day_path.is_file():
            chosen = select_program(json.loads(day_path.read_text(encoding="utf-8")), slot=slot, now=now_of())
            if chosen is not None:
                programs.append((chosen, None))
        elif slot is not None:
            raise UsageError(f"{day_path}: no program for {today} here; run `loa pull` first")
        for program, mark in programs:
            receipt = play_program(root, program, endpoint=endpoint, commune=commune, player=player, clock=now_of)
            write_receipt(root, rc.sign(receipt, key))
            report.receipts.append(receipt.id)
            report.played += sum(i.completed for i in receipt.items)
            report.failed += sum(not i.completed for i in receipt.items)
            if mark is not None:
                mark.parent.mkdir(parents=True, exist_ok=True)
                mark.touch()
        upload_receipts(client.http, endpoint, root, report)
    finally:
        client.close()
    return report
