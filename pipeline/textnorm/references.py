"""Document references (407/QĐ-TTg) and telephone numbers (0214 3840 123, hotline 1022)."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from pipeline.textnorm.letters import is_syllable, spell
from pipeline.textnorm.lexicon import Lexicon
from pipeline.textnorm.numbers import read_digits, read_int

# Patterns start with a plain character set (no look-behind first) so that the regex engine
# can skip quickly to candidates; the "not glued to a word" checks come right after.

# 407/QĐ-TTg, 158/KH-UBND, 12/2023/NĐ-CP, 1234/UBND-VX
DOC_REF_RE: Final = re.compile(
    r"([0-9])(?<![\w/.,][0-9])([0-9]{0,5})(?:/((?:19|20)[0-9][0-9]))?"
    r"/([A-ZĐ][^\W_]*(?:[-–&][A-ZĐ][^\W_]*)*)(?![\w/])"
)
_CODE_SPLIT_RE: Final = re.compile(r"[-–]")
_SCHEME_RE: Final = re.compile(r"^https?://")
_CODE_PART_RE: Final = re.compile(r"[^\W\d_]+|[0-9]+")

# 0214 3840 123, 0912.345.678, (0214) 3840123, +84 912 345 678
PHONE_RE: Final = re.compile(
    r"(\+(?<![\w.,/+]\+)84|\((?<![\w.,/+]\()0[0-9]{2,3}\)|0(?<![\w.,/+]0)[0-9]{2,3})"
    r"((?:[ .\-]?[0-9]{2,4}){1,4})(?![\w]|[.,][0-9])"
)
# 1800 1091, 19001234: service numbers, always digit by digit
SERVICE_RE: Final = re.compile(r"1(?<![\w.,]1)([89]00)[ .]?([0-9]{3,4})(?![\w]|[.,][0-9])")
# short numbers after a word that announces a telephone number: "gọi 112", "đường dây nóng 1022"
SHORT_NUMBER_RE: Final = re.compile(r"[0-9](?<![\w.,][0-9])[0-9]{2,4}(?!\w|[.,][0-9]| ?[0-9])")
HOTLINE_BEFORE_RE: Final = re.compile(
    r"(?i:\b(?:gọi|đường dây nóng|tổng đài|hotline|điện thoại|sđt|đt|quay số|bấm số|nhắn tin))"
    r"(?:\s*[:(])?\s*(?:ngay\s+)?(?:(?:đến|tới|cho)\s+)?(?:số\s+)?"
    r"(?:[0-9]{3,5}\s*(?:,|hoặc)\s*)*$"  # "gọi 113 hoặc 115": the second one too
)
_HOTLINE_WORDS: Final = (
    "gọi",
    "đường dây nóng",
    "tổng đài",
    "hotline",
    "điện thoại",
    "sđt",
    "đt",
    "quay",
    "bấm",
    "nhắn",
)
# laocai.gov.vn, https://dichvucong.gov.vn/p/home, ubnd@laocai.gov.vn
ADDRESS_RE: Final = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)]"
    r"|[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"
    r"|\b[\w\-]+(?:\.[\w\-]+)*\.(?:vn|com|net|org|gov|edu|info)\b(?:/[^\s<>\"]*[^\s<>\".,;:!?)])?"
)
_ADDRESS_SPLIT_RE: Final = re.compile(r"([./@_\-:?=&]+)")
_ADDRESS_MARKS: Final = MappingProxyType(
    {".": "chấm", "/": "gạch chéo", "@": "a còng", "_": "gạch dưới", "-": "gạch ngang"}
)
_ADDRESS_HINTS: Final = ("@", "://", "www.", ".vn", ".com", ".net", ".org", ".gov", ".edu", ".info")
_SEP_RE: Final = re.compile(r"[ .\-()]+")


def read_code(code: str, lexicon: Lexicon, variant: str) -> str:
    """One document code: known parts expand ("QĐ" → "quyết định"), others are spelled."""
    words: list[str] = []
    for part in _CODE_SPLIT_RE.split(code):
        if part in lexicon.codes:
            words.append(lexicon.codes[part])
        elif part in lexicon.abbreviations:
            words.append(lexicon.abbreviations[part])
        else:
            for piece in _CODE_PART_RE.findall(part.replace("&", " và ")):
                if piece.isdigit():
                    words.append(read_int(int(piece), variant))
                elif piece == "và":
                    words.append(piece)
                else:
                    words.append(spell(piece))
    return " ".join(words)


def doc_refs(text: str, lexicon: Lexicon, variant: str) -> str:
    """ "407/QĐ-TTg" → "bốn trăm linh bảy quyết định thủ tướng";
    "12/2023/NĐ-CP" → "mười hai năm hai nghìn … nghị định chính phủ"."""

    def one(m: re.Match[str]) -> str:
        first, rest, year, code = m.groups()
        words = [read_int(int(first + rest), variant)]
        if year:
            words += ["năm", read_int(int(year), variant)]
        words.append(read_code(code, lexicon, variant))
        return " ".join(words)

    return DOC_REF_RE.sub(one, text)


def _chunks(digits: str) -> list[str]:
    """An unbroken run of digits in groups of three, the last taking a lone remainder."""
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return groups


def _read_groups(groups: list[str]) -> str:
    spoken = []
    for group in groups:
        spoken += [read_digits(g) for g in (_chunks(group) if len(group) > 4 else [group]) if g]
    return ", ".join(spoken)


def phones(text: str) -> str:
    """Telephone numbers digit by digit, a short pause (comma) between written groups."""

    def one(m: re.Match[str]) -> str:
        prefix, rest = m.groups()
        digits = sum(c.isdigit() for c in m.group(0))
        groups = [g for g in _SEP_RE.split(rest) if g]
        if prefix == "+84":
            if digits not in (11, 12):
                return m.group(0)
            return "cộng tám bốn, " + _read_groups(groups)
        if digits not in (10, 11):
            return m.group(0)
        return _read_groups([prefix.strip("()"), *groups])

    def short(m: re.Match[str]) -> str:
        if HOTLINE_BEFORE_RE.search(text, max(0, m.start() - 60), m.start()):
            return read_digits(m.group(0))
        return m.group(0)

    text = SERVICE_RE.sub(lambda m: _read_groups(["1" + m.group(1), m.group(2)]), text)
    text = PHONE_RE.sub(one, text)
    lowered = text.lower()
    if any(word in lowered for word in _HOTLINE_WORDS):
        text = SHORT_NUMBER_RE.sub(short, text)
    return text


def _read_address_part(part: str) -> str:
    if part.isdigit():
        return read_digits(part)
    if is_syllable(part) or len(part) > 4:
        return part.lower()
    return spell(part)


def addresses(text: str) -> str:
    """Web and e-mail addresses, piece by piece: "laocai.gov.vn" → "laocai chấm giê o vê chấm vê en nờ".

    The scheme (https://) is dropped; short pieces that are not syllables are spelled.
    """
    if not any(mark in text for mark in _ADDRESS_HINTS):
        return text

    def one(m: re.Match[str]) -> str:
        address = _SCHEME_RE.sub("", m.group(0))
        words: list[str] = []
        for piece in _ADDRESS_SPLIT_RE.split(address):
            if not piece:
                continue
            if _ADDRESS_SPLIT_RE.fullmatch(piece):
                words += [_ADDRESS_MARKS[c] for c in piece if c in _ADDRESS_MARKS]
            else:
                words.append(_read_address_part(piece))
        return " ".join(words)

    return ADDRESS_RE.sub(one, text)
