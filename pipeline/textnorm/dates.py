"""Dates and times: 21/3/2023, ngày 01/01/2024, 30-4-1975, tháng 8/2024, 15/12, 7h30, 07:30.

A date reads "ngày D tháng M năm Y"; a "ngày" already written before it is kept, never
doubled. Months are "tháng một … tháng mười hai", April "tháng tư", in both variants.
A match that is not a real date (45/13) is left for the number rules ("bốn mươi lăm trên …").
"""

from __future__ import annotations

import re
from typing import Final

from pipeline.textnorm.numbers import read_int, read_month

_END: Final = r"(?![\w/]|[.,\-]\d)"
_DAY: Final = r"(?:(?i:(ngày|mùng|mồng))\s+)?"

DASH_DATE_RE: Final = re.compile(rf"(?<![\w/.,\-]){_DAY}(\d{{1,2}})-(\d{{1,2}})-(\d{{4}}){_END}")
NGAY_DASH_RE: Final = re.compile(rf"(?<![\w/.,\-])(?i:(ngày|mùng|mồng))\s+(\d{{1,2}})-(\d{{1,2}}){_END}")
SLASH_DATE_RE: Final = re.compile(rf"(?<![\w/.,]){_DAY}(\d{{1,2}})([/.])(\d{{1,2}})\3(\d{{4}}){_END}")
DAY_MONTH_RE: Final = re.compile(rf"(?<![\w/.,]){_DAY}(\d{{1,2}})/(\d{{1,2}}){_END}")
MONTH_YEAR_RE: Final = re.compile(rf"(?<![\w/.,])(?:(?i:(tháng|quý))\s+)?(\d{{1,2}})/(\d{{4}}){_END}")
TIME_RE: Final = re.compile(
    r"(?<![\w.,/:])(\d{1,2})\s?(?:h|g(?=\d))(\d{2})?(?:\s?(?:phút|ph|p|')(?!\w))?(?!\w)"
)
COLON_TIME_RE: Final = re.compile(r"(?<![\w.,/:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\w:]|[.,]\d)")


def read_date(day: int | None, month: int, year: int | None, variant: str, *, ngay: str = "ngày") -> str:
    words = [ngay, read_int(day, variant)] if day is not None else []
    words += ["tháng", read_month(month, variant)]
    if year is not None:
        words += ["năm", read_int(year, variant)]
    return " ".join(words)


def _valid(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def read_time(hour: int, minute: int, second: int, variant: str) -> str:
    words = [read_int(hour, variant), "giờ"]
    if minute:
        words += [read_int(minute, variant), "phút"]
    if second:
        words += [read_int(second, variant), "giây"]
    return " ".join(words)


def dash_dates(text: str, variant: str) -> str:
    """30-4-1975 and "ngày 2-9"; run before ranges so their dashes are not "đến"."""

    def full(m: re.Match[str]) -> str:
        ngay, d, mo, y = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        if not _valid(d, mo):
            return m.group(0)
        return read_date(d, mo, y, variant, ngay=ngay or "ngày")

    def short(m: re.Match[str]) -> str:
        ngay, d, mo = m.group(1), int(m.group(2)), int(m.group(3))
        if not _valid(d, mo):
            return m.group(0)
        return read_date(d, mo, None, variant, ngay=ngay)

    return NGAY_DASH_RE.sub(short, DASH_DATE_RE.sub(full, text))


def slash_dates(text: str, variant: str) -> str:
    """21/3/2023, 21.3.2023, 15/12, tháng 8/2024, quý 3/2025."""

    def full(m: re.Match[str]) -> str:
        ngay, d, mo, y = m.group(1), int(m.group(2)), int(m.group(4)), int(m.group(5))
        if not _valid(d, mo):
            return m.group(0)
        return read_date(d, mo, y, variant, ngay=ngay or "ngày")

    def day_month(m: re.Match[str]) -> str:
        ngay, d, mo = m.group(1), int(m.group(2)), int(m.group(3))
        if not _valid(d, mo):
            return m.group(0)
        return read_date(d, mo, None, variant, ngay=ngay or "ngày")

    def month_year(m: re.Match[str]) -> str:
        ctx, mo, y = m.group(1), int(m.group(2)), int(m.group(3))
        if ctx and ctx.lower() == "quý":
            return f"{ctx} {read_int(mo, variant)} năm {read_int(y, variant)}"
        if not 1 <= mo <= 12:
            return m.group(0)
        return f"{ctx or 'tháng'} {read_month(mo, variant)} năm {read_int(y, variant)}"

    text = SLASH_DATE_RE.sub(full, text)
    text = MONTH_YEAR_RE.sub(month_year, text)
    return DAY_MONTH_RE.sub(day_month, text)


def times(text: str, variant: str) -> str:
    """7h30 → "bảy giờ ba mươi phút", 19h00 → "mười chín giờ", 07:30 likewise."""

    def hm(m: re.Match[str]) -> str:
        h, mi = int(m.group(1)), int(m.group(2) or 0)
        if h > 24 or mi > 59:
            return m.group(0)
        return read_time(h, mi, 0, variant)

    def colon(m: re.Match[str]) -> str:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 24 or mi > 59 or s > 59:
            return m.group(0)
        return read_time(h, mi, s, variant)

    return COLON_TIME_RE.sub(colon, TIME_RE.sub(hm, text))
