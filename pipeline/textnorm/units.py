"""Money, measures and percentages after a number, ranges, and the slash of "đồng/hộ"."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

#: Written unit → spoken unit. Only recognised right after a number ("50.000đ", "3 km").
UNITS: Final = MappingProxyType(
    {
        "km/h": "ki lô mét trên giờ",
        "m/s": "mét trên giây",
        "km2": "ki lô mét vuông",
        "km": "ki lô mét",
        "m2": "mét vuông",
        "m3": "mét khối",
        "cm": "xen ti mét",
        "mm": "mi li mét",
        "m": "mét",
        "ha": "héc ta",
        "kg": "ki lô gam",
        "mg": "mi li gam",
        "g": "gam",
        "ml": "mi li lít",
        "mg/l": "mi li gam trên lít",
        "l": "lít",
        "°C": "độ xê",
        "oC": "độ xê",
        "°": "độ",
        "%": "phần trăm",
        "‰": "phần nghìn",
        "kWh": "ki lô oát giờ",
        "kW": "ki lô oát",
        "MW": "mê ga oát",
        "đ": "đồng",
        "đồng": "đồng",
        "VNĐ": "đồng",
        "VND": "đồng",
        "vnđ": "đồng",
        "USD": "đô la mỹ",
        "tr": "triệu",
        "k": "nghìn",
    }
)


def _grouped(words: list[str]) -> str:
    """An alternation grouped by first character, longest first within a group."""
    groups: dict[str, list[str]] = {}
    for w in sorted(words, key=len, reverse=True):
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "|".join(re.escape(f) + "(?:" + "|".join(alts) + ")" for f, alts in groups.items())


UNIT_ALTERNATION: Final = _grouped(list(UNITS))
#: After "/" these words mean "per": 1.500.000 đồng/hộ → "đồng mỗi hộ".
PER_WORDS: Final = frozenset(
    [
        "hộ",
        "người",
        "khẩu",
        "tháng",
        "năm",
        "ngày",
        "tuần",
        "giờ",
        "phút",
        "lượt",
        "suất",
        "con",
        "ha",
        "héc",
        "kg",
        "ki",
        "tấn",
        "lần",
        "buổi",
        "xã",
        "thôn",
        "bản",
        "tổ",
        "em",
        "cháu",
        "trẻ",
        "học",
        "ca",
        "sào",
        "mẫu",
        "lít",
        "chiếc",
        "cái",
        "bao",
        "gói",
        "thửa",
        "lao",
        "cơ",
        "mét",
    ]
)
# starts with the slash itself (a literal is found fast); the word before is looked up after
_SLASH_WORDS_RE: Final = re.compile(r"/(?:(?<=[^\W_]/)|(?<=[^\W_] /)) ?([^\W_]+)(?!\w)")
_LEFT_WORD_RE: Final = re.compile(r"([^\W_]+) ?$")
RANGE_RE: Final = re.compile(r"([0-9%]h?) ?[-–—] ?(?=[0-9])")
FRACTION_RE: Final = re.compile(r"/(?<=[0-9]/)(?=[0-9])")
NEGATIVE_RE: Final = re.compile(r"[-−](?<![^\s(\[][-−])(?=[0-9])")


def read_unit(written: str, variant: str) -> str:
    """The spoken unit: "đ" → "đồng", "‰" → "phần nghìn" / "phần ngàn"."""
    spoken = UNITS[written]
    return spoken.replace("nghìn", "ngàn") if variant == "south" else spoken


def slashes(text: str, variant: str) -> str:
    """A slash between words: "đồng/hộ" → "đồng mỗi hộ", "đồng/ha" → "đồng mỗi héc ta",
    "sở/ngành" → "sở, ngành", "đồng/người/tháng" → "đồng mỗi người mỗi tháng"."""

    def one(m: re.Match[str]) -> str:
        word = m.group(1)
        before = _LEFT_WORD_RE.search(text, max(0, m.start() - 12), m.start())
        left = before.group(1).lstrip("0123456789") if before else ""
        if f"{left}/{word}" in UNITS:  # km/h, mg/l: read with their number
            return m.group(0)
        if word in UNITS:
            return f" mỗi {read_unit(word, variant)}"
        return (" mỗi " if word.lower() in PER_WORDS else ", ") + word

    return _SLASH_WORDS_RE.sub(one, text) if "/" in text else text


def ranges(text: str) -> str:
    """ "3 - 5", "2022-2027", "7h30 - 11h" → "… đến …" (dates with dashes go first)."""
    if "-" not in text and "–" not in text and "—" not in text:
        return text
    return RANGE_RE.sub(lambda m: m.group(1) + " đến ", text)


def fractions(text: str) -> str:
    """A slash left between two numbers once dates are read: "50/100" → "50 trên 100"."""
    return FRACTION_RE.sub(" trên ", text) if "/" in text else text


def negatives(text: str) -> str:
    """A minus sign before a number, after a space or "(": "-5°C" → "âm 5°C"."""
    if "-" not in text and "−" not in text:
        return text
    return NEGATIVE_RE.sub("âm ", text)
