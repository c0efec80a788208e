"""Collect as-run receipts that SFTP (or local-directory) devices leave in ``<remote_dir>/reports/``.

For each ``reports/*.json``: read it (at most ``receipts.MAX_BYTES``), check it is this
endpoint's and signed with its receipt key, store it, then remove it from the device
(or, with ``keep=True``, move it to ``reports/collected/``). A receipt that is refused —
malformed, forged, or a replay of a stored id with a different MAC — is moved to
``reports/rejected/`` so it is read once, and named in the report. A receipt already
stored with the same MAC (the device's copy survived an earlier collection cut short)
is simply cleared. ``loa receipts collect`` runs this; the push may call it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pipeline.broadcast import receipts as rc
from pipeline.config import DeliverSettings
from pipeline.errors import DeliveryError
from pipeline.models import Endpoint
from pipeline.store import Database
from pipeline.store import receipts as receipt_store
from pipeline.transports import Transport, open_transport

log = logging.getLogger(__name__)
REPORTS = "reports"


@dataclass
class CollectReport:
    endpoint: str
    collected: list[str] = field(default_factory=list)  # receipt ids stored now
    cleared: list[str] = field(default_factory=list)  # file names already stored before
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    error: str | None = None  # the endpoint could not be reached or read


def _settle(transport: Transport, name: str, *, to: str | None) -> None:
    rel = f"{REPORTS}/{name}"
    if to is None:
        transport.remove(rel)
    else:
        transport.move(rel, f"{REPORTS}/{to}/{name}")


def collect_receipts(
    transport: Transport, *, db: Database, secret: bytes, tz: ZoneInfo, keep: bool = False
) -> CollectReport:
    """List, fetch, verify and store the receipts in ``reports/`` of an open transport."""
    endpoint = transport.endpoint
    report = CollectReport(endpoint.name)
    for name, size in sorted(transport.list_files(REPORTS).items()):
        if not name.endswith(".json") or name.startswith("."):
            continue
        where = f"{endpoint.name}:{REPORTS}/{name}"
        try:
            if size > rc.MAX_BYTES:
                raise rc.ReceiptError(f"{where}: {size} bytes; a receipt is at most {rc.MAX_BYTES}")
            data = transport.read_bytes(f"{REPORTS}/{name}", limit=rc.MAX_BYTES)
            if data is None:
                continue  # gone since the listing
            receipt = rc.load_and_verify(data, secret=secret, expect_endpoint=endpoint.name, where=where)
            if receipt.commune != endpoint.commune or receipt.source != "sftp":
                raise rc.ForgedReceiptError(
                    f"{where}: names commune {receipt.commune} and source {receipt.source!r}; "
                    f"{endpoint.name} is in {endpoint.commune} and leaves source 'sftp'"
                )
            try:
                receipt_store.save_receipt(db, receipt, tz=tz)
            except rc.ReplayedReceiptError:
                if receipt_store.stored_mac(db, receipt.id) != receipt.mac:
                    raise
                report.cleared.append(name)
            else:
                report.collected.append(receipt.id)
        except rc.ReceiptError as exc:
            log.warning("%s", exc)
            report.refused.append((name, str(exc)))
            _settle(transport, name, to="rejected")
            continue
        _settle(transport, name, to="collected" if keep else None)
    return report


def collect_from_endpoints(
    endpoints: Sequence[Endpoint], *, db: Database, secret: bytes, tz: ZoneInfo, settings: DeliverSettings
) -> list[CollectReport]:
    """``collect_receipts`` on each endpoint in turn; one that cannot be reached is reported, not fatal."""
    reports = []
    for endpoint in endpoints:
        try:
            with open_transport(endpoint, settings=settings) as transport:
                reports.append(collect_receipts(transport, db=db, secret=secret, tz=tz))
        except DeliveryError as exc:
            reports.append(CollectReport(endpoint.name, error=str(exc)))
    return reports
