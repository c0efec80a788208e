"""The one owner of the consultation export: CSV (answers) and XLSX (summary + answers).

Format ``loa.consultation-export/1``: the CSV starts with a ``# loa.consultation-export/1``
line, then a header row and one row per counted answer (hidden answers and merged
duplicates are left out, as they are from the counts). The XLSX has a sheet "Tổng hợp"
(the counts per question, commune, language and channel) and a sheet "Ý kiến" (the same
rows as the CSV). Phone numbers are in full only when ``phones`` says so, masked otherwise.
"""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from pipeline.feedback.consultation import CHANNEL_VI, YESNO_VI, Summary, counted, mask_phone
from pipeline.models import LANGUAGES, Answer, Consultation, Deployment

FORMAT = "loa.consultation-export/1"


def answer_rows(
    c: Consultation, answers: list[Answer], deployment: Deployment, *, timezone: str, phones: bool
) -> list[list[str]]:
    zone = ZoneInfo(timezone)
    names = {x.code: x.name for x in deployment.communes}
    header = ["id", "thời gian", "kênh", "xã", "ngôn ngữ", "số người", "chủ đề"]
    header += [f"câu {i}" for i in range(1, len(c.spec.questions) + 1)]
    header += [f"ý chính câu {i}" for i in range(1, len(c.spec.questions) + 1)]
    header += ["họ tên", "điện thoại", "đồng ý xử lý dữ liệu"]
    rows = [header]
    for a in counted(answers):
        values = [
            YESNO_VI.get(v, v) if q.kind == "yesno" else v for q, v in zip(c.spec.questions, a.values, strict=False)
        ]
        notes = list(a.notes) + [""] * (len(c.spec.questions) - len(a.notes))
        rows.append(
            [
                str(a.id),
                a.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if a.created_at else "",
                CHANNEL_VI.get(a.channel, a.channel),
                names.get(a.commune, a.commune),
                LANGUAGES.get(a.language, a.language),
                str(a.people),
                a.topic,
                *values,
                *notes[: len(c.spec.questions)],
                a.name,
                a.phone if phones else mask_phone(a.phone) if a.phone else "",
                "có" if a.consent else "không",
            ]
        )
    return rows


def summary_rows(c: Consultation, s: Summary) -> list[list[str | int]]:
    rows: list[list[str | int]] = [
        ["Mã", c.spec.code],
        ["Chính sách", c.policy],
        ["Cơ quan soạn thảo", c.spec.agency],
        ["Thời gian lấy ý kiến", f"{c.spec.opens:%d/%m/%Y} – {c.spec.closes:%d/%m/%Y}"],
        ["Số ý kiến", s.answers],
        ["Số người", s.people],
        [],
    ]
    for qs in s.questions:
        rows.append([f"Câu {qs.number}", qs.question.text])
        rows += [[label, n] for label, n in qs.counts]
        rows.append(["Không trả lời", qs.unanswered])
        rows.append([])
    for title, pairs in (("Theo xã", s.by_commune), ("Theo ngôn ngữ", s.by_language), ("Theo kênh", s.by_channel)):
        rows.append([title])
        rows += [[k, n] for k, n in pairs]
        rows.append([])
    return rows


def _safe(cell: str | int) -> str | int:
    """Text that a spreadsheet would take for a formula is quoted (CSV/formula injection)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    out.write(f"# {FORMAT}\n")
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([_safe(x) for x in row])
    return out.getvalue()


def to_xlsx(summary: list[list[str | int]], answers: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Tổng hợp"
    for row in summary:
        ws.append([_safe(x) for x in row])
    ws2 = wb.create_sheet("Ý kiến")
    for arow in answers:
        ws2.append([_safe(x) for x in arow])
    wb.properties.title = FORMAT
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
