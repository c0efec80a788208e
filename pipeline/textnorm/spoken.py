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
from pipeline.textnorm.units import UNIT_ALTERNATION, read_unit

# A number as written: 12.345.678 / 3,5 / 1.234,5 / 4.0 (negatives were read before)
# A unit right after the number is read with it: 50.000đ, 3,5 km, 15%.
NUMBER_RE: Final = re.compile(rf"([0-9]+(?:\.[0-9]+)*(?:,[0-9]+)?)(?: ?({UNIT_ALTERNATION})(?!\w))?")
_THOUSANDS_RE: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")
_ORDINAL_BEFORE: Final = ("thứ ", "Thứ ", "THỨ ")
_MONTH_BEFORE: Final = ("tháng ", "Tháng ", "THÁNG ")

_ROMAN_CONTEXT: Final = (
    "lần thứ|thứ|khóa|khoá|quý|kỳ|kì|nhiệm kỳ|đại hội|hội nghị|chương|phần|mục|tập|thế kỷ|thế kỉ"
    "|giai đoạn|đợt|vòng|loại|cấp|hạng|phụ lục|vùng|khu vực|bậc|nhóm"
)
# A Roman numeral, read only after a word that takes one ("khóa XV", "quý III/2025")
# or as a heading at the start of a line ("II. NỘI DUNG"). Only I, V and X (1–39):
# "hạng C", "loại D" are letters, not 100 and 500.
ROMAN_RE: Final = re.compile(r"[IVX](?<!\w[IVX])[IVX]*(?:/((?:19|20)[0-9][0-9]))?(?!\w)")
_ROMAN_BEFORE_RE: Final = re.compile(rf"(?i:\b({_ROMAN_CONTEXT})) $")
_HEADING_AFTER_RE: Final = re.compile(r"[.)] ")
# Runs after the numbers: "F0" is then "F không", "QL4D" is "QL bốn D".
_ROMAN_ONLY_RE: Final = re.compile(r"[IVX]{2,}")
CAPS_RE: Final = re.compile(rf"{UPPER_CLASS}(?<!\w.){UPPER_CLASS}*(?!\w)")


def _pad(text: str, start: int, end: int, spoken: str) -> str:
    if start > 0 and text[start - 1].isalpha():
        spoken = " " + spoken
    if end < len(text) and text[end].isalpha():
        spoken += " "
    return spoken


def numbers(text: str, variant: str) -> str:
    """Every number left after dates, times, phones and references, with its unit."""

    def one(m: re.Match[str]) -> str:
        spoken = _number(m.group(1), m.start())
        if m.group(2):
            spoken += " " + read_unit(m.group(2), variant)
        return _pad(text, m.start(), m.end(), spoken)

    def _number(written: str, start: int) -> str:
        whole, _, frac = written.partition(",")
        ordinal = text.endswith(_ORDINAL_BEFORE, 0, start)
        month = not ordinal and text.endswith(_MONTH_BEFORE, 0, start)
        if "." in whole:
            if _THOUSANDS_RE.fullmatch(whole):
                whole = whole.replace(".", "")
            else:  # 4.0, mục 2.1: read the dots
                spoken = " chấm ".join(read_integer_string(p, variant) for p in whole.split("."))
                return spoken + (" phẩy " + read_digits(frac) if frac else "")
        if frac:
            return read_decimal(whole, frac, variant)
        if ordinal and len(whole) <= 4:
            return read_ordinal(int(whole), variant)
        if month and len(whole) <= 2:
            return read_month(int(whole), variant)
        return read_integer_string(whole, variant)

    return NUMBER_RE.sub(one, text)


def romans(text: str, variant: str) -> str:
    """ "khóa XV" → "khóa mười lăm", "lần thứ XIII" → "lần thứ mười ba", "quý III/2025"."""

    def one(m: re.Match[str]) -> str:
        roman, year = m.group(0).partition("/")[0], m.group(1)
        value = roman_to_int(roman)
        if value is None:
            return m.group(0)
        start = m.start()
        before = _ROMAN_BEFORE_RE.search(text, max(0, start - 14), start)
        if before:
            ordinal = before.group(1).lower().endswith("thứ")
            spoken = read_ordinal(value, variant) if ordinal else read_int(value, variant)
        elif (start == 0 or text[start - 1] == "\n") and _HEADING_AFTER_RE.match(text, m.end()):
            spoken = read_int(value, variant)
        else:
            return m.group(0)
        if year:
            spoken += f" năm {read_int(int(year), variant)}"
        return spoken

    return ROMAN_RE.sub(one, text)


def capitals(text: str, lexicon: Lexicon, variant: str) -> str:
    """Tokens in capitals that no lexicon entry matched (run after the numbers).

    A syllable ("THÔNG", "TÝ") is the word in lowercase; a lone vowel ("A", "Y" in names)
    stays; anything else is looked up in the abbreviations (for "QL" of "QL4D") or spelled
    ("HTX" → "hát tê ích", "F0" → "ép không").
    """

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if len(token) == 1:
            return token if is_syllable(token) else spell(token)
        if token in lexicon.abbreviations:
            return lexicon.abbreviations[token]
        value = roman_to_int(token) if _ROMAN_ONLY_RE.fullmatch(token) else None
        if value is not None:  # "III", "XV" out of context are still numbers, not "iii"
            return read_int(value, variant)
        if token in lexicon.abbreviations:
            return lexicon.abbreviations[token]
        return token.lower() if is_syllable(token) else spell(token)

    return CAPS_RE.sub(one, text)
