"""Numbers in running text, Roman numerals in context, and words written in capitals."""

from __future__ import annotations

import re
from typing import Final

from pipeline.textnorm.letters import UPPER_CLASS, is_syllable, spell
from pipeline.textnorm.lexicon import Lexicon
from pipeline.textnorm.numbers import (
    read_decimal,
    read_digits,
    read_int,
    read_integer_string,
    read_month,
    read_ordinal,
    roman_to_int,
)

# A number as written: 12.345.678 / 3,5 / 1.234,5 / 4.0 / -7
NUMBER_RE: Final = re.compile(r"(?:(?<![^\s(\[])([-−]))?(\d+(?:\.\d+)*)(?:,(\d+))?")
_THOUSANDS_RE: Final = re.compile(r"\d{1,3}(?:\.\d{3})+")
_BEFORE_RE: Final = re.compile(r"(?i:(thứ|tháng))\s+$")

_ROMAN_CONTEXT: Final = (
    "lần thứ|thứ|khóa|khoá|quý|kỳ|kì|nhiệm kỳ|đại hội|hội nghị|chương|phần|mục|tập|thế kỷ|thế kỉ"
    "|giai đoạn|đợt|vòng|loại|cấp|hạng|phụ lục"
)
ROMAN_RE: Final = re.compile(rf"(?<!\w)(?i:({_ROMAN_CONTEXT}))\s+([IVXLCDM]+)(?:/((?:19|20)\d\d))?(?!\w)")
# "II. NỘI DUNG" — a Roman numeral heading at the start of a line
ROMAN_HEADING_RE: Final = re.compile(r"(?m)^([IVXLCDM]+)(?=[.)]\s)")
CAPS_RE: Final = re.compile(rf"(?<!\w)(?=[\d]*{UPPER_CLASS})(?:{UPPER_CLASS}|\d)+(?!\w)")
_CAPS_PART_RE: Final = re.compile(rf"{UPPER_CLASS}+|\d+")


def _pad(text: str, start: int, end: int, spoken: str) -> str:
    if start > 0 and text[start - 1].isalpha():
        spoken = " " + spoken
    if end < len(text) and text[end].isalpha():
        spoken += " "
    return spoken


def numbers(text: str, variant: str) -> str:
    """Every number left after dates, times, phones and references have been read."""

    def one(m: re.Match[str]) -> str:
        sign, whole, frac = m.groups()
        before = _BEFORE_RE.search(text, max(0, m.start() - 8), m.start())
        if "." in whole:
            if _THOUSANDS_RE.fullmatch(whole):
                whole = whole.replace(".", "")
            else:  # 4.0, mục 2.1: read the dots
                spoken = " chấm ".join(read_integer_string(p, variant) for p in whole.split("."))
                if frac:
                    spoken += " phẩy " + read_digits(frac)
                return _pad(text, m.start(), m.end(), ("âm " if sign else "") + spoken)
        if frac is not None:
            spoken = read_decimal(whole, frac, variant)
        elif before and not sign and len(whole) <= 4:
            value = int(whole)
            spoken = read_ordinal(value, variant) if before.group(1).lower() == "thứ" else read_month(value)
        else:
            spoken = read_integer_string(whole, variant)
        if sign:
            spoken = "âm " + spoken
        return _pad(text, m.start(), m.end(), spoken)

    return NUMBER_RE.sub(one, text)


def romans(text: str, variant: str) -> str:
    """ "khóa XV" → "khóa mười lăm", "lần thứ XIII" → "lần thứ mười ba", "quý III/2025"."""

    def one(m: re.Match[str]) -> str:
        ctx, roman, year = m.groups()
        value = roman_to_int(roman)
        if value is None:
            return m.group(0)
        spoken = read_ordinal(value, variant) if ctx.lower().endswith("thứ") else read_int(value, variant)
        out = f"{ctx} {spoken}"
        if year:
            out += f" năm {read_int(int(year), variant)}"
        return out

    def heading(m: re.Match[str]) -> str:
        value = roman_to_int(m.group(1))
        return m.group(0) if value is None else read_int(value, variant)

    return ROMAN_HEADING_RE.sub(heading, ROMAN_RE.sub(one, text))


def capitals(text: str, lexicon: Lexicon, variant: str) -> str:
    """Tokens in capitals that no lexicon entry matched.

    A syllable ("THÔNG", "TÝ") is the word in lowercase; a lone vowel ("A", "Y" in names)
    stays; anything else is spelled ("HTX" → "hát tê ích"); digits inside are numbers ("F0").
    """

    def part(p: str) -> str:
        if p.isdigit():
            return read_integer_string(p, variant)
        if p in lexicon.abbreviations:
            return lexicon.abbreviations[p]
        return p.lower() if is_syllable(p) and len(p) > 1 else spell(p)

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if len(token) == 1 and is_syllable(token):
            return token
        return " ".join(part(p) for p in _CAPS_PART_RE.findall(token))

    return CAPS_RE.sub(one, text)
