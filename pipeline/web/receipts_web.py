"""The operator page's buttons as receipts: "Đã phát" and "Báo sự cố" become ``loa.receipt/1``."""

from __future__ import annotations

import datetime as dt

from pipeline.broadcast import receipts as rc
from pipeline.manifest import ProgramEntry
from pipeline.store import receipts as receipt_store
from pipeline.web.outbox import commune_view, folder_manifests
from pipeline.web.state import WebState


def _program_entry(state: WebState, code: str, program_id: str) -> ProgramEntry | None:
    parts = program_id.split("/")
    if len(parts) != 3 or parts[0] != code:
        return None
    folder = f"emergency/{parts[2]}" if parts[1] == "emergency" else f"programs/{parts[1]}"
    manifest = commune_view(folder_manifests(state.settings, code, folder))
    return next((p for p in manifest.programs if p.id == program_id), None) if manifest else None


def record_operator_receipt(state: WebState, *, code: str, program_id: str, user: str, kind: str, note: str) -> str:
    """Build, sign (with the commune's web key) and store the receipt of a button press; its id."""
    receipt = rc.from_operator(
        _program_entry(state, code, program_id),
        program_id=program_id,
        commune=code,
        user=user,
        kind=kind,
        note=note,
        at=dt.datetime.now(state.settings.tz).replace(microsecond=0),
    )
    secret = rc.load_receipt_secret(state.settings.data_dir)
    signed = rc.sign(receipt, rc.endpoint_key(secret, receipt.endpoint))
    rc.verify(signed, rc.endpoint_key(secret, signed.endpoint))  # the same check every receipt passes
    receipt_store.save_receipt(state.db, signed, tz=state.settings.tz)
    return signed.id
