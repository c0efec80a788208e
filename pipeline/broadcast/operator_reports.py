"""Operators' reports: "Đã phát" (played) and "Báo sự cố" (problem) from the commune's page.

One rule for every door: a report is accepted only for a program that exists (a slot of the
commune that runs that day, built into its outbox, or one of its emergency bulletins), of the
operator's own commune, whose slot has started. ``reportable`` says when the page shows the
buttons; ``check_report`` refuses the rest with a code (``report.*``, Vietnamese in
``pipeline.messages``); ``record_report`` stores the report and its signed ``loa.receipt/1``.
"""

from __future__ import annotations

import datetime as dt

from pipeline.broadcast import receipts as rc
from pipeline.config import Settings
from pipeline.errors import NotFoundError, UsageError
from pipeline.manifest import ProgramEntry
from pipeline.models import Commune
from pipeline.outbox import program_entry
from pipeline.store import receipts as receipt_store
from pipeline.store import users as user_store
from pipeline.store.db import Database
from pipeline.store.users import REPORT_KINDS, User

MAX_NOTE_CHARS = 2000
MAX_PROGRAM_CHARS = 200


class ReportRefused(UsageError):
    """An operator's report that cannot be accepted (nothing was stored)."""

    code = "report.refused"


class NoSuchProgram(NotFoundError):
    """The report names a program or slot that does not exist for the commune."""

    code = "report.no_program"


def reportable(program: ProgramEntry, now: dt.datetime) -> bool:
    """Whether ``program``'s slot has started at ``now``: only then may it be reported."""
    return program.start <= now


def check_report(settings: Settings, commune: Commune, *, program_id: str, kind: str, now: dt.datetime) -> ProgramEntry:
    """The built program an operator of ``commune`` may report at ``now``; else a refusal with its code."""
    if kind not in REPORT_KINDS:
        raise ReportRefused(f"report: unknown kind {kind!r}", code="report.kind", kind=kind)
    program_id = program_id[:MAX_PROGRAM_CHARS]
    parts = program_id.split("/")
    if len(parts) != 3 or parts[0] != commune.code:
        raise ReportRefused(
            f"report: {program_id!r} is not a program of commune {commune.code}",
            code="report.other_commune",
            program=program_id,
        )
    _, day_text, slot_name = parts
    local_now = now.astimezone(settings.tz)
    if day_text != "emergency":
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            raise NoSuchProgram(
                f"report: {program_id!r}: no such day", code="report.no_slot", slot=slot_name, date=day_text
            ) from None
        slot = next((s for s in commune.slots if s.name == slot_name and s.runs_on(day)), None)
        if slot is None:
            raise NoSuchProgram(
                f"report: commune {commune.code} has no slot {slot_name!r} on {day}",
                code="report.no_slot",
                slot=slot_name,
                date=f"{day:%d/%m/%Y}",
            )
        start = dt.datetime.combine(day, slot.start, tzinfo=settings.tz)
        if day > local_now.date():
            raise ReportRefused(
                f"report: {program_id} starts at {start.isoformat()}, not yet",
                code="report.not_started",
                program=program_id,
                start=f"{start:%H:%M} ngày {start:%d/%m/%Y}",
            )
    program = program_entry(settings, commune.code, program_id)
    if program is None:
        raise NoSuchProgram(f"report: {program_id}: no such program was built", code="report.no_program")
    if not reportable(program, now):
        start = program.start.astimezone(settings.tz)
        raise ReportRefused(
            f"report: {program_id} starts at {start.isoformat()}, not yet",
            code="report.not_started",
            program=program_id,
            start=f"{start:%H:%M} ngày {start:%d/%m/%Y}",
        )
    return program


def record_report(
    db: Database,
    settings: Settings,
    commune: Commune,
    *,
    user: User,
    program_id: str,
    kind: str,
    note: str,
    now: dt.datetime,
) -> str:
    """Check, then store the report and its receipt (signed with the commune's web key); the receipt's id."""
    program = check_report(settings, commune, program_id=program_id, kind=kind, now=now)
    note = note[:MAX_NOTE_CHARS].strip()
    if kind == "problem" and not note:
        note = "(không ghi chú)"
    receipt = rc.from_operator(
        program,
        program_id=program.id,
        commune=commune.code,
        user=user.name,
        kind=kind,
        note=note,
        at=now.astimezone(settings.tz).replace(microsecond=0),
    )
    secret = rc.load_receipt_secret(settings.data_dir)
    signed = rc.sign(receipt, rc.endpoint_key(secret, receipt.endpoint))
    rc.verify(signed, rc.endpoint_key(secret, signed.endpoint))  # the same check every receipt passes
    user_store.add_play_report(db, user=user, commune=commune.code, program=program.id, kind=kind, note=note)
    receipt_store.save_receipt(db, signed, tz=settings.tz)
    return signed.id
