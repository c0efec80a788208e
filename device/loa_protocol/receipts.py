"""As-run receipts: what a device (or an operator) played. The one reader and writer of ``loa.receipt/1``.

A receipt is a JSON document (schema: ``schemas/receipt-1.schema.json``)::

    {"schema": "loa.receipt/1", "id": "<32 hex>", "endpoint": "y-ty-loa", "commune": "02641",
     "source": "pull" | "sftp" | "web", "program": "02641/2026-12-01/morning",
     "issued_at": "2026-12-01T05:41:07+07:00", "note": "",
     "items": [{"file": "media/<key>.mp3", "sha256": "…", "bulletin_id": 3,
                "start": "…", "end": "…", "completed": true, "reason": null}],
     "mac": "<64 hex>"}

Authentication: ``mac`` is HMAC-SHA256 over the canonical form of every other field
(JSON, keys sorted, no spaces, UTF-8, NFC) with the endpoint's **receipt key**. That key
is derived on the server from one deployment secret (``<data_dir>/receipt_key``, 32
random bytes, made on first use) as ``HMAC-SHA256(secret, "loa.receipt/1|" + endpoint)``,
so the server stores no per-device secret and a key of one endpoint says nothing of
another's. A pull device fetches its key with its bearer token
(``GET /api/v1/endpoints/{name}/receipt-key``); an SFTP device is given it once with
``loa receipts key ENDPOINT``. ``id`` is a random nonce: the store keeps every id it has
accepted and refuses a second receipt with the same id (a replay).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from loa_protocol.errors import ForgedReceiptError, ReceiptError, ReplayedReceiptError

SCHEMA = "loa.receipt/1"
SOURCES = ("pull", "sftp", "web")
MAX_BYTES = 256 * 1024  # a receipt is small; anything larger is refused unread
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_LABEL = b"loa.receipt/1|"
_FIELDS = frozenset({"schema", "id", "endpoint", "commune", "source", "program", "issued_at", "note", "items", "mac"})
__all__ = ["MAX_BYTES", "SCHEMA", "SOURCES", "ForgedReceiptError", "PlayedItem", "Receipt", "ReceiptError"]
__all__ += ["ReplayedReceiptError", "canonical", "dumps", "endpoint_key", "load_and_verify", "mac_of"]
__all__ += ["new_receipt_id", "parse", "sign", "to_document", "verify"]


@dataclass(frozen=True)
class PlayedItem:
    file: str  # path relative to the endpoint's root, e.g. media/<key>.mp3
    sha256: str
    start: dt.datetime | None
    end: dt.datetime | None
    completed: bool
    reason: str | None = None  # why not completed (or the operator's note)
    bulletin_id: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class Receipt:
    id: str
    endpoint: str
    commune: str
    source: str  # one of SOURCES
    program: str  # program id "<commune>/<date>/<slot>" or "<commune>/emergency/<bulletin>"
    issued_at: dt.datetime
    items: tuple[PlayedItem, ...]
    note: str = ""
    mac: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # reserved; not signed by this version

    @property
    def completed(self) -> bool:
        return bool(self.items) and all(i.completed for i in self.items)


# --- keys -----------------------------------------------------------------------


def endpoint_key(secret: bytes, endpoint: str) -> bytes:
    """The receipt key of ``endpoint``: HMAC-SHA256(secret, "loa.receipt/1|" + endpoint)."""
    return hmac.new(secret, _KEY_LABEL + endpoint.encode("utf-8"), hashlib.sha256).digest()


def new_receipt_id() -> str:
    return secrets.token_hex(16)


# --- the document ---------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ReceiptError(f"receipt time {value!r} has no time zone")
    return value.isoformat()


def to_document(r: Receipt) -> dict[str, Any]:
    """The receipt as its JSON object (``mac`` included when set)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "id": r.id,
        "endpoint": r.endpoint,
        "commune": r.commune,
        "source": r.source,
        "program": r.program,
        "issued_at": _time(r.issued_at),
        "note": _nfc(r.note),
        "items": [
            {
                "file": i.file,
                "sha256": i.sha256,
                "bulletin_id": i.bulletin_id,
                "duration_ms": i.duration_ms,
                "start": _time(i.start),
                "end": _time(i.end),
                "completed": i.completed,
                "reason": None if i.reason is None else _nfc(i.reason),
            }
            for i in r.items
        ],
    }
    if r.mac:
        doc["mac"] = r.mac
    return doc


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the MAC covers: every field but ``mac``, sorted keys, no spaces, UTF-8, NFC."""
    body = {k: v for k, v in doc.items() if k != "mac"}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _nfc(text).encode("utf-8")


def mac_of(doc: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()


def sign(r: Receipt, key: bytes) -> Receipt:
    """The receipt with its ``mac`` set for ``key`` (the endpoint's receipt key)."""
    from dataclasses import replace

    unsigned = replace(r, mac="")
    return replace(r, mac=mac_of(to_document(unsigned), key))


def dumps(r: Receipt) -> bytes:
    """The receipt file's bytes (pretty JSON, UTF-8, newline-terminated)."""
    return (json.dumps(to_document(r), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _parse_time(value: Any, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReceiptError(f"{where}: expected an ISO 8601 time with zone")
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError as exc:
        raise ReceiptError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise ReceiptError(f"{where}: {value!r} has no time zone (add +07:00 or Z)")
    return parsed


def _need(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ReceiptError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
    return value


def parse(data: bytes | dict[str, Any], *, where: str = "receipt") -> Receipt:
    """Read a receipt document (bytes or an already decoded object); ``ReceiptError`` names the field."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ReceiptError(f"{where}: {len(data)} bytes; a receipt is at most {MAX_BYTES}")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ReceiptError(f"{where}: not JSON in UTF-8 ({exc})") from exc
    else:
        doc = data
    if not isinstance(doc, dict):
        raise ReceiptError(f"{where}: expected a JSON object")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise ReceiptError(f"{where}: unknown field {unknown[0]!r}; {SCHEMA} has {', '.join(sorted(_FIELDS))}")
    if doc.get("schema") != SCHEMA:
        raise ReceiptError(f"{where}: field 'schema' is {doc.get('schema')!r}; expected {SCHEMA!r}")
    rid = _need(doc, "id", str, where)
    if not _ID_RE.match(rid):
        raise ReceiptError(f"{where}: field 'id' must be 32 lowercase hex digits (a random nonce)")
    mac = doc.get("mac", "")
    if not isinstance(mac, str) or (mac and not _HEX64_RE.match(mac)):
        raise ReceiptError(f"{where}: field 'mac' must be 64 lowercase hex digits (HMAC-SHA256)")
    source = _need(doc, "source", str, where)
    if source not in SOURCES:
        raise ReceiptError(f"{where}: field 'source' is {source!r}; use one of {', '.join(SOURCES)}")
    raw_items = _need(doc, "items", list, where)
    items = []
    for n, raw in enumerate(raw_items):
        at = f"{where}: items[{n}]"
        if not isinstance(raw, dict):
            raise ReceiptError(f"{at}: expected an object")
        sha = _need(raw, "sha256", str, at)
        if not _HEX64_RE.match(sha):
            raise ReceiptError(f"{at}: field 'sha256' must be 64 lowercase hex digits")
        bid, dur, reason = raw.get("bulletin_id"), raw.get("duration_ms"), raw.get("reason")
        for name, value in (("bulletin_id", bid), ("duration_ms", dur)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ReceiptError(f"{at}: field {name!r} must be a whole number or null")
        if reason is not None and not isinstance(reason, str):
            raise ReceiptError(f"{at}: field 'reason' must be text or null")
        items.append(
            PlayedItem(
                file=_need(raw, "file", str, at),
                sha256=sha,
                start=_parse_time(raw.get("start"), f"{at}.start"),
                end=_parse_time(raw.get("end"), f"{at}.end"),
                completed=_need(raw, "completed", bool, at),
                reason=reason,
                bulletin_id=bid,
                duration_ms=dur,
            )
        )
    note = doc.get("note", "")
    if not isinstance(note, str):
        raise ReceiptError(f"{where}: field 'note' must be text")
    issued = _parse_time(_need(doc, "issued_at", str, where), f"{where}: issued_at")
    assert issued is not None
    return Receipt(
        id=rid,
        endpoint=_need(doc, "endpoint", str, where),
        commune=_need(doc, "commune", str, where),
        source=source,
        program=_need(doc, "program", str, where),
        issued_at=issued,
        items=tuple(items),
        note=note,
        mac=mac,
        extra={"document": doc},
    )


def verify(r: Receipt, key: bytes, *, where: str = "receipt") -> None:
    """``ReceiptError`` unless ``r`` carries a valid MAC for ``key`` (constant-time compare)."""
    if not r.mac:
        raise ForgedReceiptError(
            f"{where}: unsigned; a receipt needs 'mac' (HMAC-SHA256 with the endpoint's receipt key)"
        )
    doc = r.extra.get("document") or to_document(r)
    if not hmac.compare_digest(mac_of(doc, key), r.mac):
        raise ForgedReceiptError(
            f"{where}: the MAC does not match; forged, altered, or signed with another endpoint's key "
            f"(give the device its key with `loa receipts key {r.endpoint}`)"
        )


def load_and_verify(
    data: bytes, *, secret: bytes, expect_endpoint: str | None = None, where: str = "receipt"
) -> Receipt:
    """Parse ``data`` and check it is the named endpoint's and signed with its key."""
    r = parse(data, where=where)
    if expect_endpoint is not None and r.endpoint != expect_endpoint:
        raise ForgedReceiptError(f"{where}: it names endpoint {r.endpoint!r}, but came from {expect_endpoint!r}")
    verify(r, endpoint_key(secret, r.endpoint), where=where)
    return r
