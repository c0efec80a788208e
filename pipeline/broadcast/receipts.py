"""As-run receipts on the server: the deployment secret, the operator's receipts.

The format ``loa.receipt/1`` (reader, writer, MAC) is the protocol's:
``loa_protocol.receipts``, re-exported here so the server has one name for it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from loa_protocol.receipts import (
    MAX_BYTES,
    SCHEMA,
    SOURCES,
    ForgedReceiptError,
    PlayedItem,
    Receipt,
    ReceiptError,
    ReplayedReceiptError,
    canonical,
    dumps,
    endpoint_key,
    load_and_verify,
    mac_of,
    new_receipt_id,
    parse,
    sign,
    to_document,
    verify,
)

from pipeline.files import local_secret

if TYPE_CHECKING:
    from pipeline.manifest import ProgramEntry

__all__ = ["MAX_BYTES", "SCHEMA", "SCHEMA_FILE", "SOURCES", "ForgedReceiptError", "PlayedItem", "Receipt"]
__all__ += ["ReceiptError", "ReplayedReceiptError", "canonical", "dumps", "endpoint_key", "from_operator"]
__all__ += ["load_and_verify", "load_receipt_secret", "mac_of", "new_receipt_id", "parse", "sign", "to_document"]
__all__ += ["verify", "web_endpoint"]
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "receipt-1.schema.json"
_HEX64 = frozenset("0123456789abcdef")


def load_receipt_secret(data_dir: Path) -> bytes:
    """``data_dir/receipt_key``: the deployment secret receipt keys derive from (0600, made once)."""
    return local_secret(data_dir / "receipt_key")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _hex64(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX64


def web_endpoint(commune: str) -> str:
    """The pseudo-endpoint of a commune's operator page (its receipts are signed by the server)."""
    return f"web:{commune}"


def from_operator(
    program: ProgramEntry | None,
    *,
    program_id: str,
    commune: str,
    user: str,
    kind: str,
    note: str,
    at: dt.datetime,
) -> Receipt:
    """The receipt for an operator's "Đã phát" (played) or "Báo sự cố" (problem) button.

    ``program`` is the manifest's entry for ``program_id`` (None if it cannot be found:
    the receipt then has no items and reconciles as nothing played).
    """
    played = kind == "played"
    items = tuple(
        PlayedItem(
            file=i.file or (program.single if program and program.single else "?"),
            sha256=i.sha256,
            start=None,
            end=at,
            completed=played,
            reason=None if played else note,
            bulletin_id=i.bulletin_id,
            duration_ms=i.duration_ms,
        )
        for i in (program.items if program else ())
        if _hex64(i.sha256)
    )
    return Receipt(
        id=new_receipt_id(),
        endpoint=web_endpoint(commune),
        commune=commune,
        source="web",
        program=program_id,
        issued_at=at,
        items=items,
        note=_nfc(f"{user}: {note}" if note else user),
    )
