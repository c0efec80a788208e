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
from pipeline.textrules import shown

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
    """The decision if it is allowed, else a ``BulletinError`` whose code says what to fix.

    The English message is the command line's; pages show the Vietnamese of the code
    (``decision.*`` in ``pipeline/messages.py``).
    """
    where = f"bulletin {b.id}"

    def refuse(message: str, code: str, **fields: object) -> BulletinError:
        return BulletinError(f"{where}: {message}", code=code, bulletin=b.id, **fields)

    if tier_of(b.priority) != "normal":
        raise refuse(
            "only normal bulletins are the commune's to decide; priority and emergency ones air",
            code="decision.not_normal",
        )
    if not targets(b, commune):
        raise refuse(f"not sent to the commune {commune.name}", code="decision.not_targeted", commune_name=commune.name)
    if b.status != "approved":
        raise refuse("not approved, or no longer airing; nothing to decide yet", code="decision.not_approved")
    if b.valid_until < today:
        raise refuse(
            f"valid until {b.valid_until}, which has passed",
            code="decision.expired",
            valid_until=f"{b.valid_until:%d/%m/%Y}",
        )
    if decision not in DECISIONS:
        raise refuse(
            f"decision {decision!r} is not one of {', '.join(DECISIONS)}",
            code="decision.unknown",
            value=shown(decision),
        )
    reason = unicodedata.normalize("NFC", reason).strip()
    if len(reason) > MAX_REASON_CHARS:
        raise refuse(
            f"the reason has more than {MAX_REASON_CHARS} characters; shorten it",
            code="decision.reason.too_long",
            field="reason",
            limit=MAX_REASON_CHARS,
        )
    if decision == "declined" and not reason:
        raise refuse("a declined bulletin needs a reason", code="decision.reason.missing", field="reason")
    if decision == "deferred":
        if until is None:
            raise refuse("a deferral needs the day it airs instead", code="decision.until.missing", field="until")
        if until <= today:
            raise refuse(
                f"the day of a deferral must be after today ({today})",
                code="decision.until.past",
                field="until",
                today=f"{today:%d/%m/%Y}",
            )
        if until > b.valid_until:
            raise refuse(
                f"valid until {b.valid_until}; choose an earlier day or decline it",
                code="decision.until.after_validity",
                field="until",
                valid_until=f"{b.valid_until:%d/%m/%Y}",
            )
    else:
        until = None
    assert b.id is not None
    return Decision(b.id, commune.code, decision, until, reason, by)


def awaiting(bulletins: Sequence[Bulletin], commune: Commune, today: dt.date) -> list[Bulletin]:
    """The normal bulletins a commune may decide on today, oldest first."""
    return [b for b in bulletins if decidable(b, commune, today)]
