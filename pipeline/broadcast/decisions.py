"""Operator decisions on normal-tier bulletins (thông thường: the commune decides).

A commune operator accepts a normal bulletin, defers it to a date, or declines it with a
reason, from the operator's page or the pull API. ``check_decision`` is the one rule both
use; its messages are Vietnamese because an operator reads them. The plan honours the
stored decisions (``pipeline.plan``): declined → not planned for that commune; deferred →
not before the date; accepted (or no decision) → planned as usual. Priority and emergency
bulletins are not the commune's to decide.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence

from pipeline.errors import BulletinError
from pipeline.models import DECISIONS, Bulletin, Commune, Decision, tier_of

MAX_REASON_CHARS = 500
#: Decisions keyed by (bulletin id, commune code), as the plan takes them.
Decisions = Mapping[tuple[int, str], Decision]


def targets(b: Bulletin, commune: Commune) -> bool:
    return "all" in b.targets or commune.code in b.targets or (commune.group is not None and commune.group in b.targets)


def decidable(b: Bulletin, commune: Commune, today: dt.date) -> bool:
    """Whether the commune may decide on ``b`` today: an approved normal bulletin for it, not expired."""
    return tier_of(b.priority) == "normal" and b.status == "approved" and b.valid_until >= today and targets(b, commune)


def check_decision(
    b: Bulletin,
    commune: Commune,
    decision: str,
    *,
    until: dt.date | None,
    reason: str,
    by: str,
    today: dt.date,
) -> Decision:
    """The decision if it is allowed, else a ``BulletinError`` in Vietnamese saying what to fix."""
    where = f"bản tin #{b.id}"
    if tier_of(b.priority) != "normal":
        raise BulletinError(
            f"{where}: chỉ bản tin thông thường mới do xã quyết định; bản tin ưu tiên và khẩn cấp phải phát"
        )
    if not targets(b, commune):
        raise BulletinError(f"{where}: bản tin này không gửi cho xã {commune.name}")
    if b.status != "approved":
        raise BulletinError(f"{where}: bản tin chưa được duyệt hoặc đã thôi phát; chưa thể quyết định")
    if b.valid_until < today:
        raise BulletinError(f"{where}: bản tin đã hết hiệu lực ngày {b.valid_until:%d/%m/%Y}")
    if decision not in DECISIONS:
        raise BulletinError(f"{where}: quyết định {decision!r} không hợp lệ; chọn nhận, hoãn hoặc từ chối")
    reason = unicodedata.normalize("NFC", reason).strip()
    if len(reason) > MAX_REASON_CHARS:
        raise BulletinError(f"{where}: lý do dài quá {MAX_REASON_CHARS} ký tự; hãy viết ngắn lại")
    if decision == "declined" and not reason:
        raise BulletinError(f"{where}: hãy ghi lý do từ chối")
    if decision == "deferred":
        if until is None:
            raise BulletinError(f"{where}: hãy chọn ngày phát (hoãn đến ngày nào)")
        if until <= today:
            raise BulletinError(f"{where}: ngày hoãn đến phải sau hôm nay ({today:%d/%m/%Y})")
        if until > b.valid_until:
            raise BulletinError(
                f"{where}: bản tin chỉ có hiệu lực đến {b.valid_until:%d/%m/%Y}; "
                "hãy chọn ngày sớm hơn hoặc từ chối bản tin"
            )
    else:
        until = None
    assert b.id is not None
    return Decision(b.id, commune.code, decision, until, reason, by)


def awaiting(bulletins: Sequence[Bulletin], commune: Commune, today: dt.date) -> list[Bulletin]:
    """The normal bulletins a commune may decide on today, oldest first."""
    return [b for b in bulletins if decidable(b, commune, today)]
