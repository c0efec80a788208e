"""Dates and times: 21/3/2023, ngày 01/01/2024, 30-4-1975, tháng 8/2024, 15/12, 7h30, 07:30.

A date reads "ngày D tháng M năm Y"; a "ngày" already written before it is kept, never
doubled. Months are "tháng một … tháng mười hai", April "tháng tư", in both variants.
A match that is not a real date (45/13) is left for the number rules ("bốn mươi lăm trên …").
"""

from __future__ import annotations

import re
from typing import Final

from pipeline.textnorm.numbers import read_int, read_month

# Patterns start with a digit (a plain set the regex engine scans for fast); the check that
# the number is not glued to a word comes right after it, and the words before a date
# ("ngày", "tháng", "quý") are looked at only when a date has been found.
_END: Final = r"(?![\w/]|[.,\-][0-9])"
_START: Final = r"([0-9])(?<![\w/.,\-][0-9])"

# 30-4-1975 | 2-9 (a date only after "ngày")
DASH_RE: Final = re.compile(rf"{_START}([0-9]?)-([0-9]{{1,2}})(?:-([0-9]{{4}}))?{_END}")
# 21/3/2023, 21.3.2023 | 8/2024 | 15/12
SLASH_RE: Final = re.compile(
    rf"{_START}([0-9]?)(?:([/.])([0-9]{{1,2}})\3([0-9]{{4}})|/([0-9]{{4}})|/([0-9]{{1,2}})){_END}"
)
# 7h30, 7h, 7g30, 19h00 | 07:30, 07:30:15
TIME_RE: Final = re.compile(
    r"([0-9])(?<![\w.,/:][0-9])([0-9]?)"
    r"(?: ?(?:h|g(?=[0-9]))([0-9]{2})?(?: ?(?:phút|ph|p|')(?!\w))?(?!\w)"
    r"|:([0-9]{2})(?::([0-9]{2}))?(?![\w:]|[.,][0-9]))"
)
_NGAY_BEFORE: Final = tuple(f"{w} " for x in ("ngày", "mùng", "mồng") for w in (x, x.capitalize(), x.upper()))
_NO_NGAY_BEFORE: Final = ("đường ", "Đường ", "phố ", "Phố ")  # đường 3/2 is a street
_SO_BEFORE: Final = ("số ", "Số ", "SỐ ")
#: "5/5 xã", "100/100 hộ": a fraction of something counted, not a date.
_COUNTED: Final = frozenset(
    [
        "xã",
        "thôn",
        "bản",
        "hộ",
        "người",
        "khẩu",
        "trường",
        "lớp",
        "em",
        "cháu",
        "học",
        "cơ",
        "đơn",
        "tiêu",
        "chỉ",
        "điểm",
        "phiếu",
        "lượt",
        "tổ",
        "huyện",
        "tỉnh",
        "phường",
        "làng",
        "xóm",
        "cán",
        "đảng",
        "công",
        "hợp",
        "doanh",
        "câu",
    ]
)
_NEXT_WORD_RE: Final = re.compile(r" ([^\W\d_]+)")
_QUY_BEFORE: Final = ("quý ", "Quý ", "QUÝ ")
_MONTH_BEFORE: Final = ("tháng ", "Tháng ", "THÁNG ")


def read_date(day: int | None, month: int, year: int | None, variant: str) -> str:
    """ "D tháng M năm Y" (the word "ngày" before it is the caller's)."""
    words = [read_int(day, variant)] if day is not None else []
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


def _ngay(text: str, start: int) -> str:
    """The word "ngày " unless the text already says it (or "mùng", or names a street)."""
    return "" if text.endswith(_NGAY_BEFORE + _NO_NGAY_BEFORE, 0, start) else "ngày "


def _counted(text: str, end: int) -> bool:
    """True when a counted noun follows: "5/5 xã" is five of five communes."""
    m = _NEXT_WORD_RE.match(text, end)
    return m is not None and m.group(1).lower() in _COUNTED


def dash_dates(text: str, variant: str) -> str:
    """30-4-1975 and "ngày 2-9"; run before ranges so their dashes are not "đến"."""

    def one(m: re.Match[str]) -> str:
        d, mo, year = int(m.group(1) + m.group(2)), int(m.group(3)), m.group(4)
        ngay = _ngay(text, m.start())
        if not _valid(d, mo) or (year is None and ngay):
            return m.group(0)  # "3-5" without "ngày" is a range
        return ngay + read_date(d, mo, int(year) if year else None, variant)

    return DASH_RE.sub(one, text) if "-" in text else text


def slash_dates(text: str, variant: str) -> str:
    """21/3/2023, 21.3.2023, 15/12, tháng 8/2024, quý 3/2025."""

    def one(m: re.Match[str]) -> str:
        first = int(m.group(1) + m.group(2))
        _, _, _, month, year, year_only, month_only = m.groups()
        if year is not None:  # d/m/yyyy
            if not _valid(first, int(month)):
                return m.group(0)
            return _ngay(text, m.start()) + read_date(first, int(month), int(year), variant)
        if year_only is not None:  # m/yyyy
            y = read_int(int(year_only), variant)
            if text.endswith(_QUY_BEFORE + _SO_BEFORE, 0, m.start()):
                return f"{read_int(first, variant)} năm {y}"
            if not 1 <= first <= 12:
                return m.group(0)
            said = text.endswith(_MONTH_BEFORE, 0, m.start())
            return ("" if said else "tháng ") + f"{read_month(first, variant)} năm {y}"
        ngay = _ngay(text, m.start())
        if not _valid(first, int(month_only)) or (ngay and _counted(text, m.end())):  # d/m
            return m.group(0)
        return ngay + read_date(first, int(month_only), None, variant)

    return SLASH_RE.sub(one, text) if "/" in text or "." in text else text


def times(text: str, variant: str) -> str:
    """7h30 → "bảy giờ ba mươi phút", 19h00 → "mười chín giờ", 07:30 likewise."""

    def one(m: re.Match[str]) -> str:
        h = int(m.group(1) + m.group(2))
        _, _, h_minutes, c_minutes, c_seconds = m.groups()
        mi = int(h_minutes or c_minutes or 0)
        sec = int(c_seconds or 0)
        if h > 24 or mi > 59 or sec > 59:
            return m.group(0)
        return read_time(h, mi, sec, variant)

    return TIME_RE.sub(one, text)
